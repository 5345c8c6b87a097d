using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tensor = NativeQuant.Tensors.Tensor;
using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

// Causal scaled-dot-product attention with grouped-query heads, reading q/k/v in the (B, T, H, D) layout the
// projections produce (no transposes), and keys/values that may be a prefix view of a KV cache.
public static unsafe partial class Functional
{
    /// <summary>
    /// q (B, T, Hq, D), k/v (B, S, Hkv, D) with Hq a multiple of Hkv -> (B, T, Hq, D).
    /// Query t sits at absolute position <paramref name="queryOffset"/> + t and sees keys 0..that position;
    /// k/v may be views with any batch stride (a KV cache prefix), other dims contiguous.
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, int queryOffset)
    {
        RequireFloat(q, "Attention", nameof(q));
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4) throw new ArgumentException($"Attention: expected 4-D (B, T, H, D) q/k/v, got {q.ShapeString}, {k.ShapeString}, {v.ShapeString}");
        RequireSameShape(k, v, "Attention");
        var a = new AttnShape(q, k, queryOffset);
        CheckKvLayout(k, "k");
        CheckKvLayout(v, "v");
        var y = Tensor.Zeros(q.Shape);
        bool record = Recording(q, k, v);
        var probs = record ? Tensor.Empty([a.B, a.Hq, a.T, a.S]) : null;
        float* qp = q.DataPointer, kp = (float*)k.RawPointer, vp = (float*)v.RawPointer, yp = y.DataPointer;
        float* pp = probs == null ? null : probs.DataPointer;
        long kvBatch = k.Strides[0], vBatch = v.Strides[0];
        int ld = a.Hkv * a.D;  // between consecutive positions of one kv head
        ForEachKvHead(a, (b, kh) =>
        {
            float* kh0 = kp + b * kvBatch + kh * a.D, vh0 = vp + b * vBatch + kh * a.D;
            var scores = ArrayPool<float>.Shared.Rent(a.S);
            fixed (float* sp = scores)
            for (int h = kh * a.Group; h < (kh + 1) * a.Group; h++)
            for (int t = 0; t < a.T; t++)
            {
                int visible = a.Visible(t);
                var sc = scores.AsSpan(0, visible);
                // Rows of D = 32..128 make a TensorPrimitives call per key cost more than its arithmetic.
                Gemm.DotRows(qp + a.QIndex(b, t, h), a.D, kh0, ld, 0, visible, 0f, sp);
                TensorPrimitives.Multiply(sc, a.Scale, sc);
                TensorPrimitives.SoftMax(sc, sc);
                AccumulateRows(sc, vh0, ld, a.D, yp + a.QIndex(b, t, h));
                if (pp != null)
                {
                    var pr = new Span<float>(pp + a.PIndex(b, h, t), a.S);
                    sc.CopyTo(pr);
                    pr[visible..].Clear();
                }
            }
            ArrayPool<float>.Shared.Return(scores);
        });
        return record ? Record(y, new AttentionNode(q, k, v, probs!, a)) : y;
    }

    // y(D) += sum_s w[s] * V_s for rows V_s = v + s * ld, added in order s = 0.. as (v * w) + y like a chain of
    // per-row MultiplyAdds (same rounding), but each column block stays in a register across all rows.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateRows(ReadOnlySpan<float> w, float* v, int ld, int d, float* y)
    {
        int c = 0;
        for (; c + Vector512<float>.Count <= d; c += Vector512<float>.Count)
        {
            var acc = Vector512.Load(y + c);
            for (int s = 0; s < w.Length; s++) acc = Vector512.Load(v + (long)s * ld + c) * Vector512.Create(w[s]) + acc;
            acc.Store(y + c);
        }
        for (; c < d; c++)
        {
            float acc = y[c];
            for (int s = 0; s < w.Length; s++) acc = v[(long)s * ld + c] * w[s] + acc;
            y[c] = acc;
        }
    }

    private static void CheckKvLayout(Tensor t, string name)
    {
        RequireFloatDType(t, name);
        if (t.Strides[3] != 1 || t.Strides[2] != t.Size(3) || t.Strides[1] != t.Size(2) * t.Size(3))
            throw new ArgumentException($"Attention: '{name}' must be contiguous apart from its batch stride");
    }

    private static void RequireFloatDType(Tensor t, string name)
    {
        if (t.DType != DType.Float32) throw new ArgumentException($"Attention: '{name}' must be fp32, got {t.DType}");
    }

    private static void ForEachKvHead(AttnShape a, Action<int, int> body)
    {
        int work = a.B * a.Hkv;
        // One (batch, kv-head) item also owns the gradient rows of its k/v head, so backward needs no locks.
        // Same break-even as the GEMM: decode-sized attention (one query row per head) stays on this thread.
        if ((long)a.T * a.S * a.D * a.Hq * a.B < Gemm.ParallelThreshold) { for (int w = 0; w < work; w++) body(w / a.Hkv, w % a.Hkv); }
        else Parallel.For(0, work, w => body(w / a.Hkv, w % a.Hkv));
    }

    private readonly struct AttnShape
    {
        public readonly int B, T, S, Hq, Hkv, D, Group, Offset;
        public readonly float Scale;

        public AttnShape(Tensor q, Tensor k, int offset)
        {
            B = q.Size(0); T = q.Size(1); Hq = q.Size(2); D = q.Size(3);
            S = k.Size(1); Hkv = k.Size(2);
            if (k.Size(0) != B || k.Size(3) != D) throw new ArgumentException($"Attention: k {k.ShapeString} does not match q {q.ShapeString} in batch or head dim");
            if (Hkv == 0 || Hq % Hkv != 0) throw new ArgumentException($"Attention: {Hq} query heads are not a multiple of {Hkv} kv heads");
            if (offset < 0 || offset + T > S) throw new ArgumentException($"Attention: queries at positions {offset}..{offset + T - 1} need {offset + T} keys, got {S}");
            Group = Hq / Hkv;
            Offset = offset;
            Scale = 1f / MathF.Sqrt(D);
        }

        public int Visible(int t) => Offset + t + 1;
        public long QIndex(int b, int t, int h) => (((long)b * T + t) * Hq + h) * D;
        public long PIndex(int b, int h, int t) => (((long)b * Hq + h) * T + t) * S;
    }

    private sealed class AttentionNode(Tensor q, Tensor k, Tensor v, Tensor probs, AttnShape a) : Node(q, k, v)
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            var gq = sink.For(q);
            var gk = sink.For(k);
            var gv = sink.For(v);
            if ((gk != null && !k.IsContiguous) || (gv != null && !v.IsContiguous))
                throw new InvalidOperationException("Attention backward: k/v that require grad must be contiguous (not a KV cache view)");
            float* qp = q.DataPointer, kp = (float*)k.RawPointer, vp = (float*)v.RawPointer, gp = g.DataPointer, pp = probs.DataPointer;
            float* gqp = gq == null ? null : gq.DataPointer, gkp = gk == null ? null : gk.DataPointer, gvp = gv == null ? null : gv.DataPointer;
            long kvBatch = k.Strides[0], vBatch = v.Strides[0], gBatch = (long)a.S * a.Hkv * a.D;
            ForEachKvHead(a, (b, kh) =>
            {
                var dp = new float[a.S];
                for (int h = kh * a.Group; h < (kh + 1) * a.Group; h++)
                for (int t = 0; t < a.T; t++)
                {
                    int visible = a.Visible(t);
                    var p = new ReadOnlySpan<float>(pp + a.PIndex(b, h, t), visible);
                    var go = new ReadOnlySpan<float>(gp + a.QIndex(b, t, h), a.D);
                    var qr = new ReadOnlySpan<float>(qp + a.QIndex(b, t, h), a.D);
                    for (int s = 0; s < visible; s++)
                    {
                        long kv = ((long)s * a.Hkv + kh) * a.D;
                        dp[s] = TensorPrimitives.Dot(go, new ReadOnlySpan<float>(vp + b * vBatch + kv, a.D));
                        if (gvp != null)
                        {
                            var gvr = new Span<float>(gvp + b * gBatch + kv, a.D);
                            TensorPrimitives.MultiplyAdd(go, p[s], gvr, gvr);
                        }
                    }
                    // softmax backward: dS = P * (dP - sum(P * dP))
                    float rowDot = TensorPrimitives.Dot(p, dp.AsSpan(0, visible));
                    for (int s = 0; s < visible; s++)
                    {
                        float ds = a.Scale * p[s] * (dp[s] - rowDot);
                        if (ds == 0f) continue;
                        long kv = ((long)s * a.Hkv + kh) * a.D;
                        if (gqp != null)
                        {
                            var gqr = new Span<float>(gqp + a.QIndex(b, t, h), a.D);
                            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(kp + b * kvBatch + kv, a.D), ds, gqr, gqr);
                        }
                        if (gkp != null)
                        {
                            var gkr = new Span<float>(gkp + b * gBatch + kv, a.D);
                            TensorPrimitives.MultiplyAdd(qr, ds, gkr, gkr);
                        }
                    }
                }
            });
        }
    }
}
