using System.Numerics.Tensors;
using NativeQuant.Tensors;
using Tensor = NativeQuant.Tensors.Tensor;

namespace NativeQuant.Autograd;

// Slicing the last dimension into a contiguous copy (GPT-2 splits its fused qkv projection this way).
public static partial class Functional
{
    /// <summary>x (..., C) -> x[..., start:start+length] as a contiguous tensor.</summary>
    public static Tensor NarrowLast(Tensor x, int start, int length)
    {
        RequireFloat(x, "NarrowLast", nameof(x));
        int c = LastDim(x, "NarrowLast");
        if (start < 0 || length <= 0 || start + length > c) throw new ArgumentOutOfRangeException(nameof(start), $"NarrowLast: [{start}, {start + length}) is outside the last dim {c} of {x.ShapeString}");
        var shape = x.Shape.ToArray();
        shape[^1] = length;
        var y = Tensor.Empty(shape);
        var xs = x.Data;
        var ys = y.Data;
        int rows = (int)(x.NumElements / c);
        for (int r = 0; r < rows; r++) xs.Slice(r * c + start, length).CopyTo(ys.Slice(r * length, length));
        return Recording(x) ? Record(y, new NarrowNode(x, start, length)) : y;
    }

    private sealed class NarrowNode(Tensor x, int start, int length) : Node([x], [])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.For(x) is not { } gx) return;
            int c = x.Size(-1);
            var gs = g.Data;
            var d = gx.Data;
            for (int r = 0; r < gs.Length / length; r++)
            {
                var dst = d.Slice(r * c + start, length);
                TensorPrimitives.Add(dst, gs.Slice(r * length, length), dst);
            }
        }
    }
}
