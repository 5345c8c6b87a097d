using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using NativeQuant.Interop;
using Tensor = NativeQuant.Tensors.Tensor;
using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

// Softmax and cross-entropy.
public static unsafe partial class Functional
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

    /// <summary>Rows of logits (m, V) become scale * (softmax - onehot(target)) in place (zero for rows whose target
    /// is <paramref name="ignoreIndex"/>); nll[r] gets each row's NLL (0 when ignored), for the caller to sum in row
    /// order so the loss does not depend on threads. Targets must be validated (<see cref="CountTargets"/>).</summary>
    internal static void CrossEntropyRowsGrad(float* logits, int m, int v, int* targets, int ignoreIndex, float scale, double* nll)
    {
        // nq_cross_entropy_rows runs on the calling thread: both cores through the SpinPool (a few row ranges per
        // thread), not Parallel.For: the thread pool's workers outnumber the cores and keep spinning after the job,
        // against the OpenMP worker.
        if ((long)m * v < Gemm.ParallelThreshold) Nq.Check(NativeMethods.nq_cross_entropy_rows(logits, m, v, targets, ignoreIndex, scale, nll));
        else SpinPool.ForRanges(m, 2, (r0, r1) =>
            Nq.Check(NativeMethods.nq_cross_entropy_rows(logits + (long)r0 * v, r1 - r0, v, targets + r0, ignoreIndex, scale, nll + r0)));
    }

    // exp = exp(row - max(row)); returns Σ exp in double (LogSumExp, for evaluation; training rows run natively in
    // CrossEntropyRowsGrad). Vectorized fp32 exp, a block at a time while the block is in L1: the same operations per
    // element and the sum in whole-row order. Blocks are at least 16 floats, so every one takes the same 16-lane path
    // as a whole-row call would.
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

    // sum + x's 8-float vectors widened, in order; end: where they stop (x.Length rounded down to a multiple of 8).
    private static Vector256<double> SumVectors(Vector256<double> sum, ReadOnlySpan<float> x, out int end)
    {
        int i = 0;
        for (; i + Vector256<float>.Count <= x.Length; i += Vector256<float>.Count)
        {
            var v = Vector256.Create(x.Slice(i, Vector256<float>.Count));
            sum += Vector256.WidenLower(v) + Vector256.WidenUpper(v);
        }
        end = i;
        return sum;
    }

    // The lanes of sum, then the tail elements one by one.
    private static double SumTail(Vector256<double> sum, ReadOnlySpan<float> tail)
    {
        double total = Vector256.Sum(sum);
        foreach (float f in tail) total += f;
        return total;
    }

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
            double nll;
            fixed (float* pp = p)
                for (int r = 0; r < ts.Length; r++)
                {
                    int t = ts[r];
                    if (t == ignoreIndex) continue;
                    ls.Slice(r * v, v).CopyTo(p);
                    CrossEntropyRowsGrad(pp, 1, v, &t, ignoreIndex, scale, &nll);
                    var dr = d.Slice(r * v, v);
                    TensorPrimitives.Add(dr, p, dr);
                }
        }
    }
}
