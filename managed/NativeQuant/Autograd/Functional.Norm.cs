using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Tensor = NativeQuant.Tensors.Tensor;
using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

// Normalisations over the last dimension: RMSNorm (LLaMA) and LayerNorm (GPT-2). Statistics in double so
// the fp32 output matches reference implementations to rounding.
public static partial class Functional
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

    private sealed class RmsNormNode(Tensor x, Tensor w, float[] rstd) : Node(x, w)
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

    /// <summary>(x - mean) * rsqrt(var + eps) * weight + bias over the last dimension (biased variance).</summary>
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
        var xs = x.Data;
        var ys = y.Data;
        for (int r = 0; r < rows; r++)
        {
            var xr = xs.Slice(r * c, c);
            var (mu, var) = MeanAndVariance(xr);
            float s = (float)(1.0 / Math.Sqrt(var + eps));
            mean[r] = (float)mu;
            rstd[r] = s;
            var yr = ys.Slice(r * c, c);
            TensorPrimitives.Subtract(xr, (float)mu, yr);
            TensorPrimitives.Multiply(yr, s, yr);
            TensorPrimitives.FusedMultiplyAdd(yr, weight.Data, bias.Data, yr);
        }
        return Recording(x, weight, bias) ? Record(y, new LayerNormNode(x, weight, bias, mean, rstd)) : y;
    }

    /// <summary>Σ x accumulated in double, vectorized (float lanes widened).</summary>
    internal static double SumInDouble(ReadOnlySpan<float> x)
    {
        Vector256<double> sum = default;
        int i = 0;
        for (; i + Vector256<float>.Count <= x.Length; i += Vector256<float>.Count)
        {
            var v = Vector256.Create(x.Slice(i, Vector256<float>.Count));
            sum += Vector256.WidenLower(v) + Vector256.WidenUpper(v);
        }
        double total = Vector256.Sum(sum);
        for (; i < x.Length; i++) total += x[i];
        return total;
    }

    // Mean and biased variance of a row in double, two passes (no E[x²] - E[x]² cancellation), vectorized: the
    // scalar loops were ~2% of a GPT-2 training step.
    private static (double Mean, double Variance) MeanAndVariance(ReadOnlySpan<float> x)
    {
        double mu = SumInDouble(x) / x.Length;
        var m = Vector256.Create(mu);
        Vector256<double> sq = default;
        int i = 0;
        for (; i + Vector256<float>.Count <= x.Length; i += Vector256<float>.Count)
        {
            var v = Vector256.Create(x.Slice(i, Vector256<float>.Count));
            var lo = Vector256.WidenLower(v) - m;
            var hi = Vector256.WidenUpper(v) - m;
            sq += lo * lo + hi * hi;
        }
        double var = Vector256.Sum(sq);
        for (; i < x.Length; i++) { double d = x[i] - mu; var += d * d; }
        return (mu, var / x.Length);
    }

    private sealed class LayerNormNode(Tensor x, Tensor w, Tensor b, float[] mean, float[] rstd) : Node(x, w, b)
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            int c = x.Size(-1);
            var gx = sink.For(x);
            var gw = sink.For(w);
            var gb = sink.For(b);
            var xs = x.Data;
            var gs = g.Data;
            var xhat = new float[c];
            var gxhat = new float[c];
            for (int r = 0; r < mean.Length; r++)
            {
                var gr = gs.Slice(r * c, c);
                TensorPrimitives.Subtract(xs.Slice(r * c, c), mean[r], xhat);
                TensorPrimitives.Multiply(xhat, rstd[r], xhat);
                if (gb != null) TensorPrimitives.Add(gb.Data, gr, gb.Data);
                if (gw != null) TensorPrimitives.FusedMultiplyAdd(gr, xhat, gw.Data, gw.Data);
                if (gx == null) continue;
                // dx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)), gxhat = g * w
                TensorPrimitives.Multiply(gr, w.Data, gxhat);
                float m1 = TensorPrimitives.Sum(gxhat) / c;
                float m2 = TensorPrimitives.Dot(gxhat, xhat) / c;
                var dxr = gx.Data.Slice(r * c, c);
                TensorPrimitives.Subtract(gxhat, m1, gxhat);
                TensorPrimitives.MultiplyAdd(xhat, -m2, gxhat, gxhat);
                TensorPrimitives.MultiplyAdd(gxhat, rstd[r], dxr, dxr);
            }
        }
    }
}
