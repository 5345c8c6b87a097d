namespace NativeQuant.Tensors;

/// <summary>
/// Owns every tensor created on this thread while it is the innermost scope, and disposes them when the scope
/// ends — one training or decode step's intermediates in one <c>using</c>. Results that must outlive the step
/// are handed to the enclosing scope (or to no scope) with <see cref="Keep"/>.
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? s_current;

    private readonly TensorScope? _parent;
    private readonly List<Tensor> _owned = new();
    private bool _disposed;

    public TensorScope()
    {
        _parent = s_current;
        s_current = this;
    }

    internal static TensorScope? Current => s_current;

    /// <summary>Tensors currently owned (for diagnostics and tests).</summary>
    public int Count => _owned.Count;

    internal void Track(Tensor t) => _owned.Add(t);

    /// <summary>Moves <paramref name="t"/> to the enclosing scope (or makes the caller its owner when there is
    /// none) so it survives this scope's disposal. Returns <paramref name="t"/>.</summary>
    public Tensor Keep(Tensor t)
    {
        int i = _owned.LastIndexOf(t);
        if (i < 0) throw new InvalidOperationException("Keep: the tensor is not owned by this scope");
        _owned.RemoveAt(i);
        t.Scope = _parent;
        _parent?.Track(t);
        return t;
    }

    /// <summary>Ends a forward segment whose tape outlives it (a transformer block in training): moves
    /// <paramref name="result"/>, every tensor no tape node produced, and every tensor saved for backward to the
    /// enclosing scope, and frees the data of the other op outputs now rather than when the step ends: backward needs
    /// only their shapes (a frozen quantized linear's input, a residual sum's operands, GELU's output). Dispose the
    /// scope next. Returns <paramref name="result"/>.</summary>
    public Tensor KeepSaved(Tensor result)
    {
        foreach (var t in _owned)
        {
            if (t == result || t.GradFn == null || t.SavedForBackward)
            {
                t.Scope = _parent;
                _parent?.Track(t);
            }
            else t.FreeData();
        }
        _owned.Clear();
        return result;
    }

    /// <summary>Runs <paramref name="body"/> with no scope active: tensors it creates belong to the caller
    /// (used for parameters, gradients and caches that live across steps).</summary>
    public static T Unscoped<T>(Func<T> body)
    {
        var saved = s_current;
        s_current = null;
        try { return body(); }
        finally { s_current = saved; }
    }

    public void Dispose()
    {
        if (_disposed) return;
        if (s_current != this)
            throw new InvalidOperationException("TensorScope disposed out of order (an inner scope is still open)");
        _disposed = true;
        s_current = _parent;
        foreach (var t in _owned) t.DisposeFromScope();
        _owned.Clear();
    }
}
