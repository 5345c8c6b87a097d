namespace NativeQuant.Optim;

/// <summary>Per-parameter optimizer state (torch's optimizer.state[p]): the step count and the moment buffers.
/// 8-bit state holds one byte per element plus one absmax float per 256-element block.</summary>
internal sealed class ParamState : IDisposable
{
    public const string Exp = "state1", ExpAbsmax = "absmax1", ExpSq = "state2", ExpSqAbsmax = "absmax2";

    public ParamState(long elements, bool twoStates, bool eightBit, Pager? pager)
    {
        Elements = elements;
        EightBit = eightBit;
        long stateBytes = eightBit ? elements : elements * sizeof(float);
        long absmaxBytes = Blocks(elements) * sizeof(float);
        State1 = StateBuffer.Create(stateBytes, pager);
        if (eightBit) Absmax1 = StateBuffer.Create(absmaxBytes, pager);
        if (twoStates)
        {
            State2 = StateBuffer.Create(stateBytes, pager);
            if (eightBit) Absmax2 = StateBuffer.Create(absmaxBytes, pager);
        }
    }

    public long Elements { get; }
    public bool EightBit { get; }
    /// <summary>Updates applied to this parameter so far (the kernel's 1-based step is Step + 1 next time).</summary>
    public long Step { get; set; }
    public StateBuffer State1 { get; }
    public StateBuffer? Absmax1 { get; }
    public StateBuffer? State2 { get; }
    public StateBuffer? Absmax2 { get; }

    public static long Blocks(long elements) => (elements + NativeOptimizer.BlockSize - 1) / NativeOptimizer.BlockSize;

    /// <summary>The buffers by state-dict name (absent ones omitted).</summary>
    public IEnumerable<(string Name, StateBuffer Buffer)> Buffers()
    {
        yield return (Exp, State1);
        if (Absmax1 != null) yield return (ExpAbsmax, Absmax1);
        if (State2 != null) yield return (ExpSq, State2);
        if (Absmax2 != null) yield return (ExpSqAbsmax, Absmax2);
    }

    public void Dispose()
    {
        foreach (var (_, b) in Buffers()) b.Dispose();
    }
}
