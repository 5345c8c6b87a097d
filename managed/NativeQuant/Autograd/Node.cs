using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

/// <summary>
/// One recorded op on the tape. <see cref="Backward"/> receives dL/d(output) and ADDS dL/d(input) into the
/// buffers the <see cref="GradSink"/> hands out — only for inputs that need a gradient, so frozen weights cost
/// nothing while gradients still flow through them to earlier tensors. The tensors whose data Backward reads are
/// saved for backward (torch's ctx.save_for_backward); the others stay on the tape as shapes only, and a block's
/// forward frees their data as it returns (<see cref="TensorScope.KeepSaved"/>).
/// </summary>
public abstract class Node
{
    internal readonly Tensor?[] Inputs;
    /// <summary>Whether Backward reads the data of the output it is recorded on (see <see cref="Functional.Record"/>).</summary>
    internal readonly bool SavesOutput;

    /// <summary>A node whose Backward may read every input and its output.</summary>
    protected Node(params Tensor?[] inputs) : this(inputs, inputs) => SavesOutput = true;

    /// <summary>A node whose Backward reads the data of <paramref name="saved"/> only (inputs, the output, or
    /// null for none); the other inputs are needed for their shape and place on the tape.</summary>
    protected Node(Tensor?[] inputs, Tensor?[] saved)
    {
        Inputs = inputs;
        foreach (var t in saved)
            if (t != null) t.SavedForBackward = true;
    }

    public virtual string Name => GetType().Name;

    protected internal abstract void Backward(Tensor gradOutput, GradSink sink);
}

/// <summary>Hands out gradient accumulation buffers during backward.</summary>
public abstract class GradSink
{
    /// <summary>The fp32 buffer (same shape as <paramref name="input"/>, contiguous) to add dL/d(input) into,
    /// or null when <paramref name="input"/> needs no gradient.</summary>
    public abstract Tensor? For(Tensor? input);

    /// <summary>Like <see cref="For"/>, for a caller that can overwrite: <paramref name="fresh"/> says the buffer is
    /// input's first gradient and uninitialised (write all of it, e.g. a GEMM with beta 0, skipping a zero-fill and
    /// an add), else it holds gradient to add to.</summary>
    public virtual Tensor? ForWrite(Tensor? input, out bool fresh)
    {
        fresh = false;
        return For(input);
    }

    /// <summary>Adds <paramref name="grad"/> (contiguous fp32, as many elements as <paramref name="input"/>) to
    /// dL/d(input), if input needs a gradient. A sink may instead take grad's buffer over as input's first gradient.</summary>
    public virtual void Accumulate(Tensor? input, Tensor grad)
    {
        if (For(input) is { } g) System.Numerics.Tensors.TensorPrimitives.Add(g.Data, grad.Data, g.Data);
    }
}
