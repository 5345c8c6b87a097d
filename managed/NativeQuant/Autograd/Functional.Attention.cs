using NativeQuant.Interop;
using Tensor = NativeQuant.Tensors.Tensor;
using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

// Causal scaled-dot-product attention with grouped-query heads over the native kernel (nq_attention_forward /
// nq_attention_backward), reading q/k/v in the (B, T, H, D) layout the projections produce, with any row and batch
// strides (keys/values may be a prefix view of a KV cache).
public static unsafe partial class Functional
{
    /// <summary>
    /// q (B, T, Hq, D), k/v (B, S, Hkv, D) with Hq a multiple of Hkv -> (B, T, Hq, D).
    /// Query t sits at absolute position <paramref name="queryOffset"/> + t and sees keys 0..that position;
    /// q/k/v may be views with any batch and position strides, heads and head dims contiguous.
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, int queryOffset)
    {
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4) throw new ArgumentException($"Attention: expected 4-D (B, T, H, D) q/k/v, got {q.ShapeString}, {k.ShapeString}, {v.ShapeString}");
        RequireSameShape(k, v, "Attention");
        var shape = AttentionShape(q, k, v, queryOffset);
        var y = Tensor.Empty(q.Shape);
        bool record = Recording(q, k, v);
        var lse = record ? Tensor.Empty([q.Size(0), q.Size(2), q.Size(1)]) : null;  // (B, Hq, T): what backward needs
        Nq.Check(NativeMethods.nq_attention_forward(&shape, (float*)q.RawPointer, (float*)k.RawPointer, (float*)v.RawPointer,
                                                    y.DataPointer, lse == null ? null : lse.DataPointer));
        return record ? Record(y, new AttentionNode(q, k, v, lse!, shape)) : y;
    }

    /// <summary>
    /// Causal self-attention over a fused projection: qkv (B, T, 3·H·D), each row q | k | v with heads contiguous
    /// (GPT-2's c_attn output) -> (B, T, H, D). Same values as <see cref="Attention(Tensor, Tensor, Tensor, int)"/> on
    /// the three narrowed copies; the kernel reads q/k/v in place and its backward adds dq/dk/dv straight into qkv's
    /// one gradient (no narrow copies, per-operand gradient buffers and adds back).
    /// </summary>
    public static Tensor Attention(Tensor qkv, int heads)
    {
        RequireFloat(qkv, "Attention", nameof(qkv));
        if (qkv.Rank != 3 || !qkv.IsContiguous || heads < 1 || qkv.Size(2) % (3 * heads) != 0)
            throw new ArgumentException($"Attention: expected contiguous (B, T, 3·{heads}·D) qkv, got {qkv.ShapeString}");
        int b = qkv.Size(0), t = qkv.Size(1), c = qkv.Size(2) / 3;
        var shape = new NqAttentionShape
        {
            Batch = b, QLen = t, KvLen = t, QHeads = heads, KvHeads = heads, HeadDim = c / heads,
            QBatchStride = (long)t * 3 * c, QRowStride = 3 * c,
            KBatchStride = (long)t * 3 * c, KRowStride = 3 * c,
            VBatchStride = (long)t * 3 * c, VRowStride = 3 * c,
            Scale = 1f / MathF.Sqrt(c / heads),
        };
        var y = Tensor.Empty([b, t, heads, c / heads]);
        bool record = Recording(qkv);
        var lse = record ? Tensor.Empty([b, heads, t]) : null;
        float* p = qkv.DataPointer;
        Nq.Check(NativeMethods.nq_attention_forward(&shape, p, p + c, p + 2 * c, y.DataPointer, lse == null ? null : lse.DataPointer));
        return record ? Record(y, new FusedQkvAttentionNode(qkv, lse!, shape)) : y;
    }

    private sealed class FusedQkvAttentionNode(Tensor qkv, Tensor lse, NqAttentionShape shape) : Node([qkv], [qkv])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.For(qkv) is not { } gqkv) return;
            var s = shape;
            long c = s.QHeads * s.HeadDim;
            float* p = qkv.DataPointer, d = gqkv.DataPointer;
            Nq.Check(NativeMethods.nq_attention_backward(&s, p, p + c, p + 2 * c, g.DataPointer, lse.DataPointer, d, d + c, d + 2 * c));
        }
    }

    // Sizes and strides for the kernel; the kernel checks the rest (head counts, kv length vs offset, strides).
    private static NqAttentionShape AttentionShape(Tensor q, Tensor k, Tensor v, int queryOffset)
    {
        RequireHeadRows(q, "q");
        RequireHeadRows(k, "k");
        RequireHeadRows(v, "v");
        if (k.Size(0) != q.Size(0) || k.Size(3) != q.Size(3)) throw new ArgumentException($"Attention: k {k.ShapeString} does not match q {q.ShapeString} in batch or head dim");
        return new NqAttentionShape
        {
            Batch = q.Size(0), QLen = q.Size(1), KvLen = k.Size(1), QHeads = q.Size(2), KvHeads = k.Size(2), HeadDim = q.Size(3),
            QueryOffset = queryOffset,
            QBatchStride = q.Strides[0], QRowStride = q.Strides[1],
            KBatchStride = k.Strides[0], KRowStride = k.Strides[1],
            VBatchStride = v.Strides[0], VRowStride = v.Strides[1],
            Scale = 1f / MathF.Sqrt(q.Size(3)),
        };
    }

    // The kernel takes one stride per batch and per position: heads and head dims must be contiguous.
    private static void RequireHeadRows(Tensor t, string name)
    {
        if (t.DType != DType.Float32) throw new ArgumentException($"Attention: '{name}' must be fp32, got {t.DType}");
        if (t.Strides[3] != 1 || t.Strides[2] != t.Size(3))
            throw new ArgumentException($"Attention: '{name}' {t.ShapeString} must have contiguous heads and head dims (strides {string.Join(", ", t.Strides.ToArray())})");
    }

    // The kernel adds dq, dk, dv with q's, k's and v's strides: a gradient buffer (contiguous) fits only a contiguous input.
    // Backward reads q, k, v and the logsumexp (no tape node made it, so it is kept), not the output.
    private sealed class AttentionNode(Tensor q, Tensor k, Tensor v, Tensor lse, NqAttentionShape shape) : Node([q, k, v], [q, k, v])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            var gq = sink.For(q);
            var gk = sink.For(k);
            var gv = sink.For(v);
            if ((gq != null && !q.IsContiguous) || (gk != null && !k.IsContiguous) || (gv != null && !v.IsContiguous))
                throw new InvalidOperationException("Attention backward: q/k/v that require grad must be contiguous (not a view of a fused projection or KV cache)");
            var s = shape;
            Nq.Check(NativeMethods.nq_attention_backward(&s, q.DataPointer, k.DataPointer, v.DataPointer, g.DataPointer, lse.DataPointer,
                                                         gq == null ? null : gq.DataPointer, gk == null ? null : gk.DataPointer,
                                                         gv == null ? null : gv.DataPointer));
        }
    }
}
