using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>A tensor a <see cref="Module"/> owns as learnable (or frozen) state. Shares the storage of the tensor
/// it is made from; owned by its module (never by a <see cref="TensorScope"/>) and freed with it.</summary>
public sealed class Parameter : Tensor
{
    public Parameter(Tensor data, bool requiresGrad = true) : base(data)
    {
        if (!data.IsContiguous) throw new ArgumentException("a parameter must be contiguous", nameof(data));
        RequiresGrad = requiresGrad && data.DType == DType.Float32;
    }

    public override string ToString() => $"Parameter({DType}, {ShapeString}{(RequiresGrad ? "" : ", frozen")})";
}
