using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

/// <summary>How rotary embeddings pair the dimensions of a head.</summary>
public enum RopeStyle
{
    /// <summary>Pairs (2i, 2i+1): Meta / llama2.c weights.</summary>
    Interleaved,
    /// <summary>Pairs (i, i + D/2): HF transformers ("rotate_half"), whose q/k weights are permuted to match.</summary>
    RotateHalf,
}

// Rotary position embeddings. Pair i of every head turns by angle pos * theta^(-2i/D).
public static partial class Functional
{
    /// <summary>Rotates x(B, T, H, D) for positions startPos..startPos+T-1.</summary>
    public static Tensor Rope(Tensor x, int startPos, RopeStyle style, float theta = 10000f)
    {
        RequireFloat(x, "Rope", nameof(x));
        if (x.Rank != 4) throw new ArgumentException($"Rope: expected (B, T, H, D), got {x.ShapeString}");
        int d = x.Size(3);
        if (d % 2 != 0) throw new ArgumentException($"Rope: head dim must be even, got {d}");
        var y = Tensor.Empty(x.Shape);
        Rotate(x.Data, y.Data, x.Size(0), x.Size(1), x.Size(2), d, startPos, style, theta, sign: 1f);
        return Recording(x) ? Record(y, new RopeNode(x, startPos, style, theta)) : y;
    }

    private static void Rotate(ReadOnlySpan<float> src, Span<float> dst, int b, int t, int h, int d, int startPos,
                               RopeStyle style, float theta, float sign)
    {
        int half = d / 2;
        var angles = RopeAngles.For(theta, d, startPos + t);
        for (int ti = 0; ti < t; ti++)
        {
            var cos = angles.Cos.AsSpan((startPos + ti) * half, half);
            var sin = angles.Sin.AsSpan((startPos + ti) * half, half);
            for (int bi = 0; bi < b; bi++)
            for (int hi = 0; hi < h; hi++)
            {
                int off = ((bi * t + ti) * h + hi) * d;
                for (int i = 0; i < half; i++)
                {
                    int i0 = style == RopeStyle.Interleaved ? off + 2 * i : off + i;
                    int i1 = style == RopeStyle.Interleaved ? i0 + 1 : i0 + half;
                    float x0 = src[i0], x1 = src[i1];
                    float sn = sign * sin[i];
                    dst[i0] = x0 * cos[i] - x1 * sn;
                    dst[i1] = x0 * sn + x1 * cos[i];
                }
            }
        }
    }

    private sealed class RopeNode(Tensor x, int startPos, RopeStyle style, float theta) : Node([x], [])
    {
        // The rotation is orthogonal: dL/dx is dL/dy rotated back by the opposite angle.
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.For(x) is not { } gx) return;
            var tmp = new float[g.NumElements];
            Rotate(g.Data, tmp, x.Size(0), x.Size(1), x.Size(2), x.Size(3), startPos, style, theta, sign: -1f);
            System.Numerics.Tensors.TensorPrimitives.Add(gx.Data, tmp, gx.Data);
        }
    }
}
