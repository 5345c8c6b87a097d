using System.Numerics.Tensors;
using NativeQuant.Interop;
using NativeQuant.Tensors;
using Tensor = NativeQuant.Tensors.Tensor;

namespace NativeQuant.Autograd;

// The output head fused with its cross-entropy, so neither the (N, V) logits nor their gradient ever exist (GPT-2
// small at 255 positions: 2 x 49 MiB). The gradients are computed during the forward, for a loss gradient of 1, and
// scaled by the actual one in backward. A frozen fp32 head (the usual case: a tied embedding) runs natively in one
// pass over W (nq_linear_cross_entropy: logits a 384-entry block at a time with an online softmax); a quantized or
// trainable head runs a chunk of rows at a time: logits (rows, V) -> loss and dL/dlogits in place -> dL/dhidden
// (and dL/dW) for those rows.
public static unsafe partial class Functional
{
    // Logits scratch per chunk of the row-chunked path: a 256-token GPT-2 sequence (V = 50257) in one chunk, 49 MiB.
    // Each chunk runs two GEMMs over all of W and packs W for each (fp16 compute: ~half of a 64-row chunk's time), so
    // fewer, larger chunks pay that once; the scratch is still a fraction of the activations it sits beside.
    internal const long HeadChunkBytes = 256L * 50257 * sizeof(float);

    // Rows per nq_linear_cross_entropy call: its scratch is ~8 x rows x C floats (6 MiB for GPT-2 small at 256), and
    // each call reads W once.
    private const int FusedHeadRows = 256;

    /// <summary>Mean cross-entropy of <paramref name="targets"/> (N) int32 under logits = hidden (N, C) · weightᵀ,
    /// weight (V, C): the value and gradients of <c>CrossEntropy(Linear(hidden, weight), targets, ignoreIndex)</c>
    /// without the (N, V) logits. <paramref name="compute"/>: precision of the logits and dL/dhidden products
    /// (<see cref="Gemm.Sgemm(bool, bool, int, int, int, float*, float*, float, float*, NqComputeType, float*)"/>);
    /// dL/dW is always computed in fp32. <paramref name="packedWeight"/>: null, or the frozen weight packed for
    /// <paramref name="compute"/> (<see cref="NN.Linear.PackedHead"/>), used instead of converting it on every call.</summary>
    public static Tensor LinearCrossEntropy(Tensor hidden, Tensor weight, Tensor targets, int ignoreIndex = -100,
                                            NqComputeType compute = NqComputeType.F32, NativeBuffer? packedWeight = null)
    {
        RequireFloat(weight, "LinearCrossEntropy", nameof(weight));
        if (weight.Rank != 2) throw new ArgumentException($"LinearCrossEntropy: weight must be (V, C), got {weight.ShapeString}");
        if (compute == NqComputeType.Int8 && weight.RequiresGrad && Recording(hidden, weight))
            throw new ArgumentException("LinearCrossEntropy: Int8 compute needs a frozen weight (dL/dW has no int8 product); " +
                                        "freeze it or compute in F32, F16 or BF16");
        int v = weight.Size(0), c = weight.Size(1);
        float* w = weight.DataPointer;
        var head = new HeadProducts(
            (x, m, logits) => Gemm.Sgemm(false, true, m, v, c, x, w, 0f, logits, compute),  // (m, V) = x · Wᵀ
            (dl, m, dx) => Gemm.Sgemm(false, false, m, c, v, dl, w, 1f, dx, compute),       // dx (m, C) += dl · W
            (x, m, t, scale, nll, dx) =>
            {
                void* wp = packedWeight == null ? null : packedWeight.Pointer;
                Nq.Check(NativeMethods.nq_linear_cross_entropy(x, m, c, w, wp, v, t, ignoreIndex, scale, compute, nll, dx));
            });
        return HeadCrossEntropy(hidden, weight, head, v, c, targets, ignoreIndex);  // (the delegate keeps packedWeight alive)
    }

    /// <summary><see cref="LinearCrossEntropy(Tensor, Tensor, Tensor, int, NqComputeType)"/> for a frozen quantized head
    /// (V = OutFeatures, C = InFeatures); only <paramref name="hidden"/> gets a gradient.</summary>
    public static Tensor QuantizedLinearCrossEntropy(Tensor hidden, IQuantizedWeight weight, Tensor targets, int ignoreIndex = -100) =>
        HeadCrossEntropy(hidden, null, new HeadProducts((x, m, logits) => weight.MatMulTransposed(x, m, null, logits), (dl, m, dx) => weight.MatMulInputGrad(dl, m, 1f, dx)),
                         weight.OutFeatures, weight.InFeatures, targets, ignoreIndex);

    private readonly record struct HeadProducts(HeadProduct Logits, HeadProduct AccumulateInputGrad, FusedHead? Fused = null);

    private delegate void HeadProduct(float* input, int m, float* output);

    // nll (m) and dx (m, C) = scale · dL/dx (overwritten; null: loss only) for m rows at once, W read once.
    private delegate void FusedHead(float* input, int m, int* targets, float scale, double* nll, float* dx);

    private static Tensor HeadCrossEntropy(Tensor hidden, Tensor? weight, HeadProducts head, int v, int c, Tensor targets, int ignoreIndex)
    {
        RequireFloat(hidden, "LinearCrossEntropy", nameof(hidden));
        targets.RequireDType(DType.Int32);
        if (LastDim(hidden, "LinearCrossEntropy") != c)
            throw new ArgumentException($"LinearCrossEntropy: hidden {hidden.ShapeString} does not match a head of {c} inputs");
        int n = (int)(hidden.NumElements / c);
        if (targets.NumElements != n) throw new ArgumentException($"LinearCrossEntropy: {n} rows of hidden {hidden.ShapeString} but {targets.NumElements} targets");
        int count = CountTargets(targets.AsSpan<int>(), v, ignoreIndex);
        bool record = Recording(hidden, weight);
        var gx = record && hidden.RequiresGrad ? Tensor.Zeros([n, c]) : null;                           // dL/dhidden for dL = 1
        var gw = record && weight is { RequiresGrad: true } ? Tensor.Zeros([v, c]) : null;              // dL/dW for dL = 1
        double total = 0;
        if (count > 0 && head.Fused is { } fused && gw == null)
        {
            var nll = new double[Math.Min(n, FusedHeadRows)];
            float* hp = hidden.DataPointer;
            int* tp = (int*)targets.RawPointer;
            fixed (double* np = nll)
                for (int r0 = 0; r0 < n; r0 += FusedHeadRows)
                {
                    int m = Math.Min(FusedHeadRows, n - r0);
                    fused(hp + (long)r0 * c, m, tp + r0, 1f / count, np, gx == null ? null : gx.DataPointer + (long)r0 * c);
                    for (int r = 0; r < m; r++) total += nll[r];
                }
        }
        else if (count > 0)
        {
            int rows = (int)Math.Clamp(HeadChunkBytes / ((long)v * sizeof(float)), 1, n);
            var nll = new double[rows];
            float scale = 1f / count;
            using var logits = Tensor.Empty([rows, v]);                                              // (rows, V) scratch
            float* hp = hidden.DataPointer, lp = logits.DataPointer;
            int* tp = (int*)targets.RawPointer;
            for (int r0 = 0; r0 < n; r0 += rows)
            {
                int m = Math.Min(rows, n - r0);
                head.Logits(hp + (long)r0 * c, m, lp);
                fixed (double* np = nll) CrossEntropyRowsGrad(lp, m, v, tp + r0, ignoreIndex, scale, np);
                for (int r = 0; r < m; r++) total += nll[r];
                if (gx != null) head.AccumulateInputGrad(lp, m, gx.DataPointer + (long)r0 * c);
                if (gw != null) Gemm.Sgemm(true, false, v, c, m, lp, hp + (long)r0 * c, 1f, gw.DataPointer);  // dW (V, C) += dlᵀ · x
            }
        }
        var y = Tensor.Empty([1]);
        y.Data[0] = count == 0 ? 0f : (float)(total / count);
        return record ? Record(y, new HeadCrossEntropyNode(hidden, weight, gx, gw)) : y;
    }

    private sealed class HeadCrossEntropyNode(Tensor hidden, Tensor? weight, Tensor? gxUnit, Tensor? gwUnit) : Node(hidden, weight)
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            float s = g.Data[0];
            if (gxUnit != null && sink.For(hidden) is { } gx) TensorPrimitives.MultiplyAdd(gxUnit.Data, s, gx.Data, gx.Data);
            if (gwUnit != null && sink.For(weight) is { } gw) TensorPrimitives.MultiplyAdd(gwUnit.Data, s, gw.Data, gw.Data);
        }
    }
}
