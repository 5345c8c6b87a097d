using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Tensor = NativeQuant.Tensors.Tensor;
using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

// Softmax and cross-entropy.
public static partial class Functional
{
    /// <summary>Softmax over the last dimension.</summary>
    public static Tensor Softmax(Tensor x)
    {
        RequireFloat(x, "Softmax", nameof(x));
        int c = LastDim(x, "Softmax");
        var y = Tensor.Empty(x.Shape);
        var xs = x.Data;
        var ys = y.Data;
        for (int off = 0; off < xs.Length; off += c) TensorPrimitives.SoftMax(xs.Slice(off, c), ys.Slice(off, c));
        return Recording(x) ? Record(y, new SoftmaxNode(x, y)) : y;
    }

    private sealed class SoftmaxNode(Tensor x, Tensor y) : Node([x], [y])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.For(x) is not { } gx) return;
            int c = x.Size(-1);
            var ys = y.Data;
            var gs = g.Data;
            var d = gx.Data;
            for (int off = 0; off < ys.Length; off += c)
            {
                var yr = ys.Slice(off, c);
                var gr = gs.Slice(off, c);
                float dot = TensorPrimitives.Dot(yr, gr);
                for (int i = 0; i < c; i++) d[off + i] += yr[i] * (gr[i] - dot);
            }
        }
    }

    /// <summary>Mean negative log-likelihood of <paramref name="targets"/> (N) int32 under logits (N, V),
    /// skipping targets equal to <paramref name="ignoreIndex"/>. Returns a [1] tensor (0 when all are ignored).</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor targets, int ignoreIndex = -100)
    {
        RequireFloat(logits, "CrossEntropy", nameof(logits));
        targets.RequireDType(DType.Int32);
        int v = LastDim(logits, "CrossEntropy");
        int n = (int)(logits.NumElements / v);
        if (targets.NumElements != n) throw new ArgumentException($"CrossEntropy: {n} rows of logits {logits.ShapeString} but {targets.NumElements} targets");
        var ts = targets.AsSpan<int>();
        var ls = logits.Data;
        var nll = NllPerRow(ls, ts, v, ignoreIndex, out int count);
        var y = Tensor.Empty([1]);
        y.Data[0] = count == 0 ? 0f : (float)(nll / count);
        return Recording(logits) ? Record(y, new CrossEntropyNode(logits, targets, ignoreIndex, count)) : y;
    }

    /// <summary>Summed NLL (double) over rows whose target is not ignored; validates every target.</summary>
    internal static double NllPerRow(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, int v, int ignoreIndex, out int count)
    {
        count = CountTargets(targets, v, ignoreIndex);
        double total = 0;
        for (int r = 0; r < targets.Length; r++)
        {
            if (targets[r] == ignoreIndex) continue;
            var row = logits.Slice(r * v, v);
            total += LogSumExp(row) - row[targets[r]];
        }
        return total;
    }

    /// <summary>Rows whose target is not <paramref name="ignoreIndex"/>; throws naming the row of a target outside [0, v).</summary>
    internal static int CountTargets(ReadOnlySpan<int> targets, int v, int ignoreIndex)
    {
        int count = 0;
        for (int r = 0; r < targets.Length; r++)
        {
            int t = targets[r];
            if (t == ignoreIndex) continue;
            if ((uint)t >= (uint)v) throw new ArgumentOutOfRangeException(nameof(targets), t, $"CrossEntropy: target {t} at row {r} is outside [0, {v})");
            count++;
        }
        return count;
    }

    /// <summary>log Σ exp(row), the sum in double (a row sums 32k-50k terms).</summary>
    internal static double LogSumExp(ReadOnlySpan<float> row)
    {
        var exp = ArrayPool<float>.Shared.Rent(row.Length);
        double sum = ShiftedExp(row, exp.AsSpan(0, row.Length), out float max);
        ArrayPool<float>.Shared.Return(exp);
        return max + Math.Log(sum);
    }

    /// <summary>Turns a logit row into its NLL's gradient, in place: row = (softmax(row) - onehot(t)) * scale.
    /// Returns -log softmax(row)[t].</summary>
    internal static double CrossEntropyGradInPlace(Span<float> row, int t, float scale)
    {
        float target = row[t];
        double sum = ShiftedExp(row, row, out float max);
        TensorPrimitives.Multiply(row, (float)(scale / sum), row);
        row[t] -= scale;
        return max + Math.Log(sum) - target;
    }

    // exp = exp(row - max(row)) (may alias row); returns Σ exp in double. Vectorized fp32 exp: a scalar double
    // Math.Exp per logit was ~7% of a GPT-2 training step (255 x 50257 per step). The subtract, exp and sum run a
    // block at a time while the block is in L1 (three passes over a 200 KB row were three trips to L2): the same
    // operations per element and the sum in SumInDouble's order. Blocks are at least 16 floats, so every one takes
    // the same 16-lane path as a whole-row call would.
    private static double ShiftedExp(ReadOnlySpan<float> row, Span<float> exp, out float max)
    {
        max = TensorPrimitives.Max(row);
        Vector256<double> sum = default;
        for (int i = 0; i < row.Length;)
        {
            int n = row.Length - i < 2 * ExpBlock ? row.Length - i : ExpBlock;
            var e = exp.Slice(i, n);
            TensorPrimitives.Subtract(row.Slice(i, n), max, e);
            TensorPrimitives.Exp(e, e);
            i += n;
            sum = SumVectors(sum, e, out int end);
            if (i == row.Length) return SumTail(sum, e[end..]);
        }
        return 0;
    }

    private const int ExpBlock = 1024;  // a multiple of 8: SumVectors leaves no tail before the last block

    private sealed class CrossEntropyNode(Tensor logits, Tensor targets, int ignoreIndex, int count) : Node(logits)
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.For(logits) is not { } gl || count == 0) return;
            int v = logits.Size(-1);
            var ts = targets.AsSpan<int>();
            var ls = logits.Data;
            var d = gl.Data;
            float scale = g.Data[0] / count;
            var p = new float[v];
            for (int r = 0; r < ts.Length; r++)
            {
                if (ts[r] == ignoreIndex) continue;
                ls.Slice(r * v, v).CopyTo(p);
                CrossEntropyGradInPlace(p, ts[r], scale);
                var dr = d.Slice(r * v, v);
                TensorPrimitives.Add(dr, p, dr);
            }
        }
    }
}
