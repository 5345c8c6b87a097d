using System.Numerics.Tensors;
using NativeQuant.Interop;
using Tensor = NativeQuant.Tensors.Tensor;
using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

// Normalisations over the last dimension: RMSNorm (LLaMA) and LayerNorm (GPT-2, native). Statistics in double
// so the fp32 output matches reference implementations to rounding.
public static unsafe partial class Functional
{
    /// <summary>x(..., C) * rsqrt(mean(x²) + eps) * weight(C).</summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, float eps)
    {
        RequireFloat(x, "RmsNorm", nameof(x));
        RequireFloat(weight, "RmsNorm", nameof(weight));
        int c = LastDim(x, "RmsNorm");
        if (weight.Rank != 1 || weight.Size(0) != c) throw new ArgumentException($"RmsNorm: weight must be [{c}], got {weight.ShapeString}");
        int rows = (int)(x.NumElements / c);
        var y = Tensor.Empty(x.Shape);
        var rstd = new float[rows];
        var xs = x.Data;
        var ys = y.Data;
        var w = weight.Data;
        for (int r = 0; r < rows; r++)
        {
            var xr = xs.Slice(r * c, c);
            var yr = ys.Slice(r * c, c);
            float s = (float)(1.0 / Math.Sqrt(TensorPrimitives.Dot(xr, xr) / c + eps));
            rstd[r] = s;
            TensorPrimitives.Multiply(xr, s, yr);
            TensorPrimitives.Multiply(yr, w, yr);
        }
        return Recording(x, weight) ? Record(y, new RmsNormNode(x, weight, rstd)) : y;
    }

    private sealed class RmsNormNode(Tensor x, Tensor w, float[] rstd) : Node([x, w], [x, w])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            int c = x.Size(-1);
            var gx = sink.For(x);
            var gw = sink.For(w);
            var xs = x.Data;
            var gs = g.Data;
            var ws = w.Data;
            var tmp = new float[c];
            for (int r = 0; r < rstd.Length; r++)
            {
                var xr = xs.Slice(r * c, c);
                var gr = gs.Slice(r * c, c);
                float s = rstd[r];
                if (gw != null)
                {
                    // dw += g * x * s
                    TensorPrimitives.Multiply(gr, xr, tmp);
                    TensorPrimitives.MultiplyAdd(tmp, s, gw.Data, gw.Data);
                }
                if (gx != null)
                {
                    // dx = s * (g*w) - x * s^3 / C * sum(g*w*x)
                    TensorPrimitives.Multiply(gr, ws, tmp);
                    float dot = TensorPrimitives.Dot(tmp, xr);
                    var dxr = gx.Data.Slice(r * c, c);
                    TensorPrimitives.MultiplyAdd(tmp, s, dxr, dxr);
                    TensorPrimitives.MultiplyAdd(xr, -dot * s * s * s / c, dxr, dxr);
                }
            }
        }
    }

    /// <summary>(x - mean) * rsqrt(var + eps) * weight + bias over the last dimension (biased variance; statistics
    /// in double, nq_layernorm_forward, rows over both cores from 2^17 elements).</summary>
    public static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps)
    {
        RequireFloat(x, "LayerNorm", nameof(x));
        RequireFloat(weight, "LayerNorm", nameof(weight));
        RequireFloat(bias, "LayerNorm", nameof(bias));
        int c = LastDim(x, "LayerNorm");
        if (weight.Rank != 1 || weight.Size(0) != c || bias.Rank != 1 || bias.Size(0) != c)
            throw new ArgumentException($"LayerNorm: weight and bias must be [{c}], got {weight.ShapeString} and {bias.ShapeString}");
        int rows = (int)(x.NumElements / c);
        var y = Tensor.Empty(x.Shape);
        var mean = new float[rows];
        var rstd = new float[rows];
        fixed (float* m = mean, s = rstd)
            Nq.Check(NativeMethods.nq_layernorm_forward(x.DataPointer, rows, c, weight.DataPointer, bias.DataPointer, eps, y.DataPointer, m, s));
        return Recording(x, weight, bias) ? Record(y, new LayerNormNode(x, weight, bias, mean, rstd)) : y;
    }

    private sealed class LayerNormNode(Tensor x, Tensor w, Tensor b, float[] mean, float[] rstd) : Node([x, w, b], [x, w])
    {
        // dx, dweight, dbias accumulated by nq_layernorm_backward (dweight/dbias by column, rows in order: results do
        // not depend on the thread count).
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            var gx = sink.For(x);
            var gw = sink.For(w);
            var gb = sink.For(b);
            if (gx == null && gw == null && gb == null) return;
            fixed (float* m = mean, s = rstd)
                Nq.Check(NativeMethods.nq_layernorm_backward(x.DataPointer, g.DataPointer, mean.Length, x.Size(-1), w.DataPointer, m, s,
                                                             gx == null ? null : gx.DataPointer, gw == null ? null : gw.DataPointer,
                                                             gb == null ? null : gb.DataPointer));
        }
    }
}
