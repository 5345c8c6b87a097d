using NativeQuant.Interop;
using NativeQuant.NN;

namespace NativeQuant.Optim;

/// <summary>
/// An optimizer over the native kernels (bitsandbytes' Optimizer2State/Optimizer1State): AdamW or Lion, 32-bit or
/// 8-bit blockwise state, resident or paged. State is created for a parameter at its first update; parameters
/// with fewer than <see cref="MinEightBitElements"/> elements keep 32-bit state even in 8-bit optimizers. Each
/// <see cref="Step"/> first computes the global gradient norm: a non-finite one throws
/// <see cref="NonFiniteGradientException"/> before anything is updated; with <see cref="MaxGradNorm"/> set the
/// gradients are scaled down to it through the kernels' gnorm_scale (the gradients themselves are not modified).
/// </summary>
public abstract unsafe class NativeOptimizer : IDisposable
{
    public const int BlockSize = (int)NqOptimizerConstants.Blocksize;
    public const int MinEightBitElements = (int)NqOptimizerConstants.MinSize;
    /// <summary>Resident budget of a paged optimizer's state unless told otherwise.</summary>
    public const long DefaultPagedBudgetBytes = 16L << 20;

    private readonly NqOptimizerKind _kind;
    private readonly Dictionary<Parameter, ParamState> _state = new(ReferenceEqualityComparer.Instance);
    private readonly Pager? _pager;
    private readonly NativeBuffer? _codes; // signed map (256 floats) then unsigned map
    private bool _disposed;

    protected NativeOptimizer(NqOptimizerKind kind, bool eightBit, bool paged, IReadOnlyList<ParamGroup> groups,
                              long pagedBudgetBytes, string? pagerDirectory)
    {
        if (groups.Count == 0) throw new ArgumentException("an optimizer needs at least one parameter group", nameof(groups));
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var g in groups)
            foreach (var p in g.Parameters)
                if (!seen.Add(p)) throw new ArgumentException($"parameter {p} appears in more than one group (or twice)", nameof(groups));
        _kind = kind;
        EightBit = eightBit;
        ParamGroups = groups;
        if (paged) _pager = new Pager(pagedBudgetBytes, pagerDirectory ?? Path.GetTempPath());
        if (eightBit)
        {
            _codes = new NativeBuffer(2 * 256 * sizeof(float));
            float* codes = (float*)_codes.Pointer;
            Nq.Check(NativeMethods.nq_dynamic_map_create(1, codes));
            Nq.Check(NativeMethods.nq_dynamic_map_create(0, codes + 256));
        }
    }

    public IReadOnlyList<ParamGroup> ParamGroups { get; }
    public bool EightBit { get; }
    public bool IsPaged => _pager != null;
    /// <summary>Global-norm clipping threshold applied inside every <see cref="Step"/> (null: no clipping).</summary>
    public double? MaxGradNorm { get; set; }
    /// <summary>Steps taken (the count schedulers and checkpoints use).</summary>
    public long StepCount { get; private set; }
    /// <summary>Global gradient norm measured by the last <see cref="Step"/>, before clipping.</summary>
    public double LastGradNorm { get; private set; }

    private IEnumerable<Parameter> AllParameters() => ParamGroups.SelectMany(g => g.Parameters);

    /// <summary>Applies one update to every parameter that has a gradient.</summary>
    public void Step()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        double norm = GradNorm.Compute(AllParameters());
        if (!double.IsFinite(norm)) throw new NonFiniteGradientException(StepCount + 1, norm);
        LastGradNorm = norm;
        float scale = MaxGradNorm is { } max ? GradNorm.ClipScale(norm, max) : 1f;
        foreach (var group in ParamGroups)
            foreach (var p in group.Parameters)
                if (p.Grad != null) Update(group, p, scale);
        StepCount++;
    }

    private void Update(ParamGroup group, Parameter p, float gnormScale)
    {
        if (!_state.TryGetValue(p, out var s)) _state[p] = s = CreateState(p.NumElements);
        s.Step++;
        var hp = new NqOptimizerParams
        {
            Lr = group.Lr, Beta1 = group.Betas.Beta1, Beta2 = group.Betas.Beta2, Eps = group.Eps,
            WeightDecay = group.WeightDecay, GnormScale = gnormScale, Step = s.Step,
        };
        float* w = p.DataPointer, g = p.Grad!.DataPointer;
        float* code1 = _codes == null ? null : (float*)_codes.Pointer;
        float* code2 = _kind == NqOptimizerKind.Adamw && code1 != null ? code1 + 256 : null;
        long n = p.NumElements;
        if (_pager != null)
        {
            if (s.EightBit)
                Nq.Check(NativeMethods.nq_optimizer8_step_paged(_kind, &hp, w, g, _pager.Handle, Id(s.State1), Id(s.Absmax1),
                                                                 Id(s.State2), Id(s.Absmax2), code1, code2, n));
            else
                Nq.Check(NativeMethods.nq_optimizer32_step_paged(_kind, &hp, w, g, _pager.Handle, Id(s.State1), Id(s.State2), n));
        }
        else if (s.EightBit)
            Nq.Check(NativeMethods.nq_optimizer8_step(_kind, &hp, w, g, (byte*)Ptr(s.State1), (float*)Ptr(s.Absmax1),
                                                      (byte*)Ptr(s.State2), (float*)Ptr(s.Absmax2), code1, code2, n));
        else
            Nq.Check(NativeMethods.nq_optimizer32_step(_kind, &hp, w, g, (float*)Ptr(s.State1), (float*)Ptr(s.State2), n));
    }

    private static long Id(StateBuffer? b) => b is StateBuffer.Paged p ? p.Id : -1;
    private static void* Ptr(StateBuffer? b) => b is StateBuffer.Resident r ? r.Pointer : null;

    private ParamState CreateState(long elements) =>
        new(elements, _kind == NqOptimizerKind.Adamw, EightBit && elements >= MinEightBitElements, _pager);

    /// <summary>Drops every parameter's gradient (PyTorch's set_to_none=True default).</summary>
    public void ZeroGrad()
    {
        foreach (var p in AllParameters())
        {
            p.Grad?.Dispose();
            p.Grad = null;
        }
    }

    public OptimizerMemory Memory
    {
        get
        {
            long resident = 0, paged = 0;
            int eight = 0, full = 0;
            foreach (var s in _state.Values)
            {
                if (s.EightBit) eight++; else full++;
                foreach (var (_, b) in s.Buffers())
                    if (b.IsPaged) paged += b.Bytes; else resident += b.Bytes;
            }
            long pagedOut = _pager == null ? 0 : (long)_pager.Stats.PagedOutBytes;
            return new OptimizerMemory(resident, paged, pagedOut, eight, full);
        }
    }

    public OptimizerStateDict StateDict()
    {
        var parameters = AllParameters().ToList();
        var steps = new long[parameters.Count];
        var buffers = new Dictionary<string, byte[]>();
        for (int i = 0; i < parameters.Count; i++)
        {
            if (!_state.TryGetValue(parameters[i], out var s)) continue;
            steps[i] = s.Step;
            foreach (var (name, b) in s.Buffers())
            {
                var bytes = new byte[b.Bytes];
                b.CopyTo(bytes);
                buffers[OptimizerStateDict.BufferKey(i, name)] = bytes;
            }
        }
        return new OptimizerStateDict(GetType().Name, StepCount, ParamGroups.Select(g => g.Lr).ToArray(), steps, buffers);
    }

    /// <summary>Replaces all state with <paramref name="state"/>, which must come from the same optimizer class over
    /// parameters of the same sizes in the same order.</summary>
    public void LoadStateDict(OptimizerStateDict state)
    {
        var parameters = AllParameters().ToList();
        if (state.Name != GetType().Name)
            throw new ArgumentException($"optimizer state was saved by {state.Name}, cannot load it into {GetType().Name}", nameof(state));
        if (state.Steps.Length != parameters.Count || state.Lrs.Length != ParamGroups.Count)
            throw new ArgumentException($"optimizer state covers {state.Steps.Length} parameters in {state.Lrs.Length} groups; this optimizer has {parameters.Count} in {ParamGroups.Count}", nameof(state));
        foreach (var s in _state.Values) s.Dispose();
        _state.Clear();
        for (int i = 0; i < parameters.Count; i++)
        {
            if (state.Steps[i] == 0) continue;
            var s = CreateState(parameters[i].NumElements);
            _state[parameters[i]] = s;
            s.Step = state.Steps[i];
            foreach (var (name, b) in s.Buffers())
            {
                string key = OptimizerStateDict.BufferKey(i, name);
                if (!state.Buffers.TryGetValue(key, out var bytes) || bytes.Length != b.Bytes)
                    throw new ArgumentException($"optimizer state '{key}' is missing or has the wrong size for parameter {i} ({parameters[i]})", nameof(state));
                b.CopyFrom(bytes);
            }
        }
        for (int g = 0; g < ParamGroups.Count; g++) ParamGroups[g].Lr = state.Lrs[g];
        StepCount = state.StepCount;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var s in _state.Values) s.Dispose();
        _state.Clear();
        _pager?.Dispose();
        _codes?.Dispose();
        GC.SuppressFinalize(this);
    }
}
