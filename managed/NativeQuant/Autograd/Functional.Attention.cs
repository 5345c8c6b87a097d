using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
        long qRow = (long)a.Hq * a.D;  // between consecutive query positions of one head
        // Prefill scores a block of queries against K transposed to (D, S) with broadcast FMAs (no horizontal sums);
        // a decode step's single query reads K rows directly (transposing would cost as much as the scores).
        bool transposeK = a.T >= QueryBlock;
        int sPad = (a.S + ScoreKeys - 1) / ScoreKeys * ScoreKeys;  // score row stride: whole key blocks
        ForEachKvHead(a, (b, kh) =>
        {
            float* kh0 = kp + b * kvBatch + kh * a.D, vh0 = vp + b * vBatch + kh * a.D;
            var scores = ArrayPool<float>.Shared.Rent(QueryBlock * sPad);
            var kt = transposeK ? ArrayPool<float>.Shared.Rent(a.D * sPad) : null;
            fixed (float* sp = scores, ktp = kt)
            {
                if (ktp != null) TransposeKeys(kh0, ld, a.S, a.D, sPad, ktp);
                for (int h = kh * a.Group; h < (kh + 1) * a.Group; h++)
                for (int t0 = 0; t0 < a.T; t0 += QueryBlock)
                {
                    int rows = Math.Min(QueryBlock, a.T - t0), keys = a.Visible(t0 + rows - 1);
                    float* q0 = qp + a.QIndex(b, t0, h), y0 = yp + a.QIndex(b, t0, h);
                    if (ktp != null) ScoreBlock(q0, qRow, rows, ktp, sPad, a.D, keys, sp);
                    else for (int r = 0; r < rows; r++) ScoreRow(q0 + r * qRow, a.D, kh0, ld, a.Visible(t0 + r), sp + r * sPad);
                    for (int r = 0; r < rows; r++)
                    {
                        int visible = a.Visible(t0 + r);
                        var sc = new Span<float>(sp + r * sPad, keys);
                        TensorPrimitives.Multiply(sc[..visible], a.Scale, sc[..visible]);
                        TensorPrimitives.SoftMax(sc[..visible], sc[..visible]);
                        sc[visible..].Clear();  // the block's later queries see more keys: weight 0 adds exactly nothing
                        if (pp != null)
                        {
                            var pr = new Span<float>(pp + a.PIndex(b, h, t0 + r), a.S);
                            sc.CopyTo(pr);
                            pr[keys..].Clear();
                        }
                    }
                    switch (rows)
                    {
                        case 1: AccumulateRows<One>(sp, sPad, keys, vh0, ld, a.D, y0, qRow); break;
                        case 2: AccumulateRows<Two>(sp, sPad, keys, vh0, ld, a.D, y0, qRow); break;
                        case 3: AccumulateRows<Three>(sp, sPad, keys, vh0, ld, a.D, y0, qRow); break;
                        default: AccumulateRows<Four>(sp, sPad, keys, vh0, ld, a.D, y0, qRow); break;
                    }
                }
            }
            ArrayPool<float>.Shared.Return(scores);
            if (kt != null) ArrayPool<float>.Shared.Return(kt);
        });
        return record ? Record(y, new AttentionNode(q, k, v, probs!, a)) : y;
    }

    // Queries scored together (their K loads are shared) and keys per score pass (two 16-float vectors).
    private const int QueryBlock = 4;
    private const int ScoreKeys = 2 * 16;

    // kt (D, sPad) = K^T for the rows K_s = k + s * ld, s < S; columns S..sPad are zero so whole key blocks can be scored.
    private static void TransposeKeys(float* k, int ld, int s, int d, int sPad, float* kt)
    {
        for (int c = 0; c < d; c++)
        {
            float* col = kt + (long)c * sPad;
            for (int j = 0; j < s; j++) col[j] = k[(long)j * ld + c];
            new Span<float>(col + s, sPad - s).Clear();
        }
    }

    // scores (rows, sPad) = Q_rows · K^T for key blocks covering [0, keys): 4 query rows x 32 keys per pass, eight
    // accumulators fed by two K^T loads and one broadcast per row and head-dim step. Missing rows re-read row 0.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoreBlock(float* q, long qRow, int rows, float* kt, int sPad, int d, int keys, float* scores)
    {
        float* q0 = q, q1 = rows > 1 ? q + qRow : q, q2 = rows > 2 ? q + 2 * qRow : q, q3 = rows > 3 ? q + 3 * qRow : q;
        for (int j = 0; j < keys; j += ScoreKeys)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            float* col = kt + j;
            for (int c = 0; c < d; c++, col += sPad)
            {
                var k0 = Vector512.Load(col);
                var k1 = Vector512.Load(col + 16);
                var x0 = Vector512.Create(q0[c]);
                var x1 = Vector512.Create(q1[c]);
                var x2 = Vector512.Create(q2[c]);
                var x3 = Vector512.Create(q3[c]);
                a0 = Vector512.FusedMultiplyAdd(x0, k0, a0); b0 = Vector512.FusedMultiplyAdd(x0, k1, b0);
                a1 = Vector512.FusedMultiplyAdd(x1, k0, a1); b1 = Vector512.FusedMultiplyAdd(x1, k1, b1);
                a2 = Vector512.FusedMultiplyAdd(x2, k0, a2); b2 = Vector512.FusedMultiplyAdd(x2, k1, b2);
                a3 = Vector512.FusedMultiplyAdd(x3, k0, a3); b3 = Vector512.FusedMultiplyAdd(x3, k1, b3);
            }
            float* s0 = scores + j;
            a0.Store(s0); b0.Store(s0 + 16);
            if (rows > 1) { a1.Store(s0 + sPad); b1.Store(s0 + sPad + 16); }
            if (rows > 2) { a2.Store(s0 + 2 * sPad); b2.Store(s0 + 2 * sPad + 16); }
            if (rows > 3) { a3.Store(s0 + 3 * sPad); b3.Store(s0 + 3 * sPad + 16); }
        }
    }

    // scores[j] = q · K_j for j < keys, K_j = k + j * ld (one decode query): 16 keys per pass, whose 16 partial-sum
    // vectors a shuffle tree adds into one vector (45 shuffles/adds instead of 16 horizontal sums). FourKeys(i)
    // takes keys i, i+4, i+8, i+12, the order in which the tree delivers its lanes.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoreRow(float* q, int d, float* k, int ld, int keys, float* scores)
    {
        int j = 0;
        if (Avx512F.IsSupported && d % 16 == 0)
            for (; j + 16 <= keys; j += 16)
            {
                float* kj = k + (long)j * ld;
                long l4 = 4L * ld;
                var u0 = FourKeys(q, d, kj, l4);
                var u1 = FourKeys(q, d, kj + ld, l4);
                var u2 = FourKeys(q, d, kj + 2L * ld, l4);
                var u3 = FourKeys(q, d, kj + 3L * ld, l4);
                // lane L of the result: the totals of u0..u3's quarter L, i.e. keys 4L..4L+3
                Pairs(Pairs(u0, u1), Pairs(u2, u3)).Store(scores + j);
            }
        if (j < keys) Gemm.DotRows(q, d, k, ld, j, keys, 0f, scores);
    }

    // Quarter i of the result holds four partial sums of q · (k + i * stride), i < 4.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> FourKeys(float* q, int d, float* k, long stride)
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int c = 0; c < d; c += 16)
        {
            var x = Vector512.Load(q + c);
            s0 = Vector512.FusedMultiplyAdd(Vector512.Load(k + c), x, s0);
            s1 = Vector512.FusedMultiplyAdd(Vector512.Load(k + stride + c), x, s1);
            s2 = Vector512.FusedMultiplyAdd(Vector512.Load(k + 2 * stride + c), x, s2);
            s3 = Vector512.FusedMultiplyAdd(Vector512.Load(k + 3 * stride + c), x, s3);
        }
        return Quarters(Quarters(s0, s1), Quarters(s2, s3));
    }

    // Sums of adjacent 128-bit quarters: [a.q0 + a.q1, a.q2 + a.q3, b.q0 + b.q1, b.q2 + b.q3].
    private static Vector512<float> Quarters(Vector512<float> a, Vector512<float> b) =>
        Avx512F.Shuffle4x128(a, b, 0x88) + Avx512F.Shuffle4x128(a, b, 0xDD);

    // Sums of adjacent floats within each 128-bit lane: [a0 + a1, a2 + a3, b0 + b1, b2 + b3].
    private static Vector512<float> Pairs(Vector512<float> a, Vector512<float> b) =>
        Avx512F.Shuffle(a, b, 0x88) + Avx512F.Shuffle(a, b, 0xDD);

    // Compile-time counts: the JIT specializes a generic method per struct, dropping the unused rows' and columns' code.
    private interface ICount { static abstract int Value { get; } }
    private struct One : ICount { public static int Value => 1; }
    private struct Two : ICount { public static int Value => 2; }
    private struct Three : ICount { public static int Value => 3; }
    private struct Four : ICount { public static int Value => 4; }

    // y_r(D) += sum_s p_r[s] * V_s for R query rows (p row stride pStride, y row stride yRow) and V_s = v + s * ld.
    private static void AccumulateRows<R>(float* p, int pStride, int keys, float* v, int ld, int d, float* y, long yRow)
        where R : struct, ICount
    {
        int c = 0;
        if (R.Value == 1)
            for (; c + 16 <= d; c += 16) AccumulateRow(p, keys, v + c, ld, y + c);
        for (; c + 32 <= d; c += 32) AccumulateColumns<R, Two>(p, pStride, keys, v + c, ld, y + c, yRow);
        if (c + 16 <= d) { AccumulateColumns<R, One>(p, pStride, keys, v + c, ld, y + c, yRow); c += 16; }
        for (; c < d; c++)
            for (int r = 0; r < R.Value; r++)
            {
                float* pr = p + r * pStride, yr = y + r * yRow;
                float acc = yr[c];
                for (int s = 0; s < keys; s++) acc = MathF.FusedMultiplyAdd(v[(long)s * ld + c], pr[s], acc);
                yr[c] = acc;
            }
    }

    // One query row (decode), one 16-column block: keys s, s+1, s+2, s+3 go to four accumulators (four FMA chains
    // hide the latency), added at the end.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateRow(float* p, int keys, float* v, int ld, float* y)
    {
        Vector512<float> a0 = Vector512.Load(y), a1 = default, a2 = default, a3 = default;
        int s = 0;
        for (; s + 4 <= keys; s += 4, v += 4L * ld)
        {
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(v), Vector512.Create(p[s]), a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(v + ld), Vector512.Create(p[s + 1]), a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 2L * ld), Vector512.Create(p[s + 2]), a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 3L * ld), Vector512.Create(p[s + 3]), a3);
        }
        for (; s < keys; s++, v += ld) a0 = Vector512.FusedMultiplyAdd(Vector512.Load(v), Vector512.Create(p[s]), a0);
        (a0 + (a1 + a2 + a3)).Store(y);
    }

    // C 16-column blocks of R rows stay in registers across all keys: each V load feeds R FMAs, in R x C
    // independent chains.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateColumns<R, C>(float* p, int pStride, int keys, float* v, int ld, float* y, long yRow)
        where R : struct, ICount where C : struct, ICount
    {
        float* p0 = p, p1 = p + pStride, p2 = p + 2 * pStride, p3 = p + 3 * pStride;
        float* y0 = y, y1 = y + yRow, y2 = y + 2 * yRow, y3 = y + 3 * yRow;
        Vector512<float> a0 = Vector512.Load(y0), b0 = default, a1 = default, b1 = default,
                         a2 = default, b2 = default, a3 = default, b3 = default;
        if (C.Value > 1) b0 = Vector512.Load(y0 + 16);
        if (R.Value > 1) { a1 = Vector512.Load(y1); if (C.Value > 1) b1 = Vector512.Load(y1 + 16); }
        if (R.Value > 2) { a2 = Vector512.Load(y2); if (C.Value > 1) b2 = Vector512.Load(y2 + 16); }
        if (R.Value > 3) { a3 = Vector512.Load(y3); if (C.Value > 1) b3 = Vector512.Load(y3 + 16); }
        for (int s = 0; s < keys; s++, v += ld)
        {
            var v0 = Vector512.Load(v);
            var v1 = C.Value > 1 ? Vector512.Load(v + 16) : default;
            var w0 = Vector512.Create(p0[s]);
            a0 = Vector512.FusedMultiplyAdd(v0, w0, a0);
            if (C.Value > 1) b0 = Vector512.FusedMultiplyAdd(v1, w0, b0);
            if (R.Value > 1) { var w = Vector512.Create(p1[s]); a1 = Vector512.FusedMultiplyAdd(v0, w, a1); if (C.Value > 1) b1 = Vector512.FusedMultiplyAdd(v1, w, b1); }
            if (R.Value > 2) { var w = Vector512.Create(p2[s]); a2 = Vector512.FusedMultiplyAdd(v0, w, a2); if (C.Value > 1) b2 = Vector512.FusedMultiplyAdd(v1, w, b2); }
            if (R.Value > 3) { var w = Vector512.Create(p3[s]); a3 = Vector512.FusedMultiplyAdd(v0, w, a3); if (C.Value > 1) b3 = Vector512.FusedMultiplyAdd(v1, w, b3); }
        }
        a0.Store(y0);
        if (C.Value > 1) b0.Store(y0 + 16);
        if (R.Value > 1) { a1.Store(y1); if (C.Value > 1) b1.Store(y1 + 16); }
        if (R.Value > 2) { a2.Store(y2); if (C.Value > 1) b2.Store(y2 + 16); }
        if (R.Value > 3) { a3.Store(y3); if (C.Value > 1) b3.Store(y3 + 16); }
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

    private const long AttentionParallelWork = 1 << 18;  // multiply-adds of QK^T

    private static void ForEachKvHead(AttnShape a, Action<int, int> body)
    {
        int work = a.B * a.Hkv;
        // One (batch, kv-head) item also owns the gradient rows of its k/v head, so backward needs no locks.
        // A decode step's attention (one query row per head: 4-8 us for 6 heads x 128-250 keys of 48) stays on this
        // thread: on a busy box a helper that is not running costs more than the split saves (measured).
        if ((long)a.T * a.S * a.D * a.Hq * a.B < AttentionParallelWork) { for (int w = 0; w < work; w++) body(w / a.Hkv, w % a.Hkv); }
        else SpinPool.For(work, w => body(w / a.Hkv, w % a.Hkv));
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

    // Per query head, with P (T, S) the saved probabilities and dO = g:
    //   dV_s += sum_t P[t,s] dO_t,  dP[t,s] = dO_t . V_s,  dS = scale * P o (dP - rowsum(P o dP)),
    //   dQ_t += sum_s dS[t,s] K_s,  dK_s += sum_t dS[t,s] Q_t,
    // every sum in blocks of four rows through AccumulateRows (P^T and dS^T make the sums over t contiguous). One small
    // TensorPrimitives call per (t, s) pair was ~6% of a GPT-2 training step.
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
            int ld = a.Hkv * a.D, qRow = a.Hq * a.D;  // between positions of one kv head / one query head
            long kvBatch = k.Strides[0], vBatch = v.Strides[0], gBatch = (long)a.S * ld;
            int t = a.T, s = a.S, offset = a.Offset;
            Func<int, int> allKeys = _ => 0, visibleKeys = r => Math.Min(s, offset + r + 1);         // dQ rows: keys [0, visible)
            Func<int, int> firstQuery = j => Math.Clamp(j - offset, 0, t), allQueries = _ => t;   // dK/dV rows: queries [first, T)
            ForEachKvHead(a, (b, kh) =>
            {
                var dsBuf = ArrayPool<float>.Shared.Rent(t * s);
                var trBuf = ArrayPool<float>.Shared.Rent(t * s);
                fixed (float* ds = dsBuf, tr = trBuf)
                {
                    float* k0 = kp + b * kvBatch + kh * a.D, v0 = vp + b * vBatch + kh * a.D;
                    float* gk0 = gkp == null ? null : gkp + b * gBatch + kh * a.D, gv0 = gvp == null ? null : gvp + b * gBatch + kh * a.D;
                    for (int h = kh * a.Group; h < (kh + 1) * a.Group; h++)
                    {
                        float* p0 = pp + a.PIndex(b, h, 0), go0 = gp + a.QIndex(b, 0, h), q0 = qp + a.QIndex(b, 0, h);
                        if (gv0 != null)
                        {
                            TransposeKeys(p0, s, t, s, t, tr);  // (S, T) = P^T
                            AccumulateBlocks(s, tr, t, firstQuery, allQueries, go0, qRow, a.D, gv0, ld);
                        }
                        for (int r = 0; r < t; r++)
                        {
                            int visible = a.Visible(r);
                            float* dsr = ds + (long)r * s;
                            Gemm.DotRows(go0 + (long)r * qRow, a.D, v0, ld, 0, visible, 0f, dsr);  // dP row
                            var d = new Span<float>(dsr, visible);
                            var p = new ReadOnlySpan<float>(p0 + (long)r * s, visible);
                            TensorPrimitives.Subtract(d, TensorPrimitives.Dot(p, d), d);
                            TensorPrimitives.Multiply(d, p, d);
                            TensorPrimitives.Multiply(d, a.Scale, d);
                            new Span<float>(dsr + visible, s - visible).Clear();
                        }
                        if (gqp != null) AccumulateBlocks(t, ds, s, allKeys, visibleKeys, k0, ld, a.D, gqp + a.QIndex(b, 0, h), qRow);
                        if (gk0 != null)
                        {
                            TransposeKeys(ds, s, t, s, t, tr);  // (S, T) = dS^T
                            AccumulateBlocks(s, tr, t, firstQuery, allQueries, q0, qRow, a.D, gk0, ld);
                        }
                    }
                }
                ArrayPool<float>.Shared.Return(dsBuf);
                ArrayPool<float>.Shared.Return(trBuf);
            });
        }

        // y_r(D) += sum_{j in [lo(r), hi(r))} w[r, j] X_j for r < rows, X_j = x + j * xRow, four rows per AccumulateRows
        // pass. lo and hi never decrease with r and w is zero outside a row's range, so a block spans its first row's
        // lo to its last row's hi.
        private static void AccumulateBlocks(int rows, float* w, int wStride, Func<int, int> lo, Func<int, int> hi,
                                             float* x, int xRow, int d, float* y, long yRow)
        {
            for (int r = 0; r < rows; r += 4)
            {
                int n = Math.Min(4, rows - r), j0 = lo(r), keys = hi(r + n - 1) - j0;
                float* wr = w + (long)r * wStride + j0, xr = x + (long)j0 * xRow, yr = y + r * yRow;
                switch (n)
                {
                    case 1: AccumulateRows<One>(wr, wStride, keys, xr, xRow, d, yr, yRow); break;
                    case 2: AccumulateRows<Two>(wr, wStride, keys, xr, xRow, d, yr, yRow); break;
                    case 3: AccumulateRows<Three>(wr, wStride, keys, xr, xRow, d, yr, yRow); break;
                    default: AccumulateRows<Four>(wr, wStride, keys, xr, xRow, d, yr, yRow); break;
                }
            }
        }
    }
}
