using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

/// <summary>
/// One recorded op on the tape. <see cref="Backward"/> receives dL/d(output) and ADDS dL/d(input) into the
/// buffers the <see cref="GradSink"/> hands out — only for inputs that need a gradient, so frozen weights cost
/// nothing while gradients still flow through them to earlier tensors.
/// </summary>
public abstract class Node
{
    internal readonly Tensor?[] Inputs;

    protected Node(params Tensor?[] inputs) => Inputs = inputs;

    public virtual string Name => GetType().Name;

    protected internal abstract void Backward(Tensor gradOutput, GradSink sink);
}

/// <summary>Hands out gradient accumulation buffers during backward.</summary>
public abstract class GradSink
{
    /// <summary>The fp32 buffer (same shape as <paramref name="input"/>, contiguous) to add dL/d(input) into,
    /// or null when <paramref name="input"/> needs no gradient.</summary>
    public abstract Tensor? For(Tensor? input);
}
