namespace NativeQuant.Autograd;

/// <summary>Thread-local switch for recording ops on the tape (PyTorch's torch.no_grad).</summary>
public static class GradMode
{
    [ThreadStatic] private static int s_disabledDepth;

    public static bool IsEnabled => s_disabledDepth == 0;

    /// <summary>Ops inside the returned scope record nothing and keep no activations for backward.</summary>
    public static NoGradScope NoGrad() => new(+1);

    /// <summary>Re-enables recording inside a NoGrad region (used by checkpoint recomputation).</summary>
    internal static NoGradScope EnableGrad()
    {
        int depth = s_disabledDepth;
        s_disabledDepth = 0;
        return new NoGradScope(0, depth);
    }

    public readonly struct NoGradScope : IDisposable
    {
        private readonly int _restore;

        internal NoGradScope(int delta, int restore = -1)
        {
            _restore = restore >= 0 ? restore : s_disabledDepth;
            s_disabledDepth += delta;
        }

        public void Dispose() => s_disabledDepth = _restore;
    }
}
