using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using NativeQuant.Interop;
using Tensor = NativeQuant.Tensors.Tensor;

namespace NativeQuant.Tensors;

/// <summary>
/// The one entry point every fp32 matmul in the engine goes through:
/// C(M,N) = beta·C + op(A)·op(B) + bias, row-major contiguous; transA: A stored (K,M); transB: B stored (N,K).
/// Runs the native nq_gemm_f32; a library built without it (checked once) gets the managed fallback below
/// (row dot products / row AXPYs with TensorPrimitives, parallel over output tiles).
/// </summary>
internal static unsafe class Gemm
{
    // Column tile for the NT (dot product) form: 64 rows of B x K floats stay in L2 while every row of A passes.
    private const int ColumnTile = 64;
    // Below this many multiply-adds (~1 MiB of fp32 weight for a GEMV, tens of microseconds on one core) waking
    // thread-pool workers costs more than it saves: measured 0.1-0.7 ms per Parallel.For on the shared 2-vCPU box,
    // e.g. a 1x288x288 product took 213 us split in 5 tiles vs ~10 us on one thread.
    internal const long ParallelThreshold = 1 << 18;
    // The same for SpinPool, whose helper is usually spinning during decode: below 2^15 multiply-adds (128 KiB of
    // fp32 weight, ~5 us on one core) even handing it parts costs more than it saves.
    private const long SpinPoolThreshold = 1 << 15;

    private static bool s_nativeMissing;
    private const int GemvMaxRows = 4;

    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float* a, float* b, float beta, float* c, float* bias = null)
    {
        if (m <= 0 || n <= 0) return;
        // Decode-shaped products (a few rows against a weight) are memory-bound dot products; the managed path
        // streams W once with no packing and measured faster than the native GEMM's packed tiles for M <= 4.
        bool gemv = transB && !transA && m <= GemvMaxRows;
        if (!s_nativeMissing && k > 0 && !gemv)
        {
            try
            {
                if (!transA && SplitsRows(m, n, k)) NativeRowRanges(transB, m, n, k, a, b, beta, c, bias);
                else Nq.Check(NativeMethods.nq_gemm_f32(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, b, beta, bias, c));
                return;
            }
            catch (Exception e) when (e is EntryPointNotFoundException || e.InnerException is EntryPointNotFoundException) { s_nativeMissing = true; }
        }
        ManagedSgemm(transA, transB, m, n, k, a, transA ? m : k, b, transB ? k : n, beta, c, n);
        if (bias != null)
            for (int i = 0; i < m; i++)
            {
                var row = new Span<float>(c + (long)i * n, n);
                TensorPrimitives.Add(row, new ReadOnlySpan<float>(bias, n), row);
            }
    }

    /// <summary><see cref="Sgemm(bool, bool, int, int, int, float*, float*, float, float*, float*)"/> with the multiply's
    /// precision chosen: <see cref="NqComputeType.F32"/> is that call; <see cref="NqComputeType.F16"/> (64-step fp16 sums
    /// flushed into fp32, ~1e-3 relative) and <see cref="NqComputeType.Bf16"/> run the native nq_gemm_f32_compute, which
    /// has no managed fallback.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float* a, float* b, float beta, float* c,
                             NqComputeType compute, float* bias = null)
    {
        // k = 0 multiplies nothing: every precision is the same. Decode-shaped products (m <= 4) are bound by reading
        // B, which the fp32 GEMV streams once while the F16 path would convert all of it first.
        if (compute == NqComputeType.F32 || k <= 0 || m <= GemvMaxRows)
        {
            Sgemm(transA, transB, m, n, k, a, b, beta, c, bias);
            return;
        }
        if (m <= 0 || n <= 0) return;
        Nq.Check(NativeMethods.nq_gemm_f32_compute(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, b, beta, bias, compute, c));
    }

    /// <summary>Multiply-adds below which the native library runs an fp32 product on the calling thread (gemv.h's
    /// 4 MiB cut-off: its passive OpenMP worker costs a futex wake).</summary>
    internal const long NativeSerialWork = 1 << 23;

    // LoRA's rank-8 products (256 x 2304 x 8, 256 x 768 x 8: 0.05-0.25 ms, six per layer) ran single-threaded, ~10 ms
    // of a GPT-2 step. From 2^20 multiply-adds they are cut into row ranges of at least SplitRowsMin (so a skinny
    // product stays skinny natively) that the caller and the SpinPool helper claim.
    private const long SplitWorkMin = 1 << 20;
    private const int SplitRowsMin = 128;

    private static bool SplitsRows(int m, int n, int k)
    {
        long work = (long)m * n * k;
        return work >= SplitWorkMin && work < NativeSerialWork && m >= 2 * SplitRowsMin && SpinPool.Width > 1 && SpinPool.HelpersAwake;
    }

    // C rows [i0, i1) of the product need only A rows [i0, i1) (A stored (M, K)), and each native path computes a
    // row the same way whatever M is (same k order per element), so the parts give the bits of the whole product.
    private static void NativeRowRanges(bool transB, int m, int n, int k, float* a, float* b, float beta, float* c, float* bias)
    {
        int parts = Math.Min(SpinPool.Width, m / SplitRowsMin);
        int rows = (m / parts + 7) & ~7;
        nint ap = (nint)a, bp = (nint)b, cp = (nint)c, biasp = (nint)bias;
        SpinPool.For((m + rows - 1) / rows, p =>
        {
            int i0 = p * rows, i1 = Math.Min(m, i0 + rows);
            Nq.Check(NativeMethods.nq_gemm_f32(0, transB ? 1 : 0, i1 - i0, n, k, (float*)ap + (long)i0 * k, (float*)bp, beta,
                                               (float*)biasp, (float*)cp + (long)i0 * n));
        });
    }

    private static void ManagedSgemm(bool transA, bool transB, int m, int n, int k,
                                     float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        if (k == 0)
        {
            for (int i = 0; i < m; i++) Scale(new Span<float>(c + (long)i * ldc, n), beta);
            return;
        }
        if (transB) GemmDots(transA, m, n, k, a, lda, b, ldb, beta, c, ldc);
        else GemmAxpy(transA, m, n, k, a, lda, b, ldb, beta, c, ldc);
    }

    private static void Scale(Span<float> row, float beta)
    {
        if (beta == 0f) row.Clear();
        else if (beta != 1f) TensorPrimitives.Multiply(row, beta, row);
    }

    // C[i,j] = dot(A_i, B_j): B is (N,K) row-major, so each output is one contiguous dot product. Columns are
    // split into a few contiguous ranges per thread (SpinPool); inside a range, tiles of ColumnTile
    // rows of B stay in L2 while every row of A passes.
    private static void GemmDots(bool transA, int m, int n, int k, float* a, int lda, float* b, int ldb,
                                 float beta, float* c, int ldc)
    {
        if (transA) throw new NotSupportedException("Gemm: transA with transB is not used by the engine");
        void Range(int j0, int j1)
        {
            for (int t0 = j0; t0 < j1; t0 += ColumnTile)
            {
                int t1 = Math.Min(j1, t0 + ColumnTile);
                for (int i = 0; i < m; i++) DotRows(a + (long)i * lda, k, b, ldb, t0, t1, beta, c + (long)i * ldc);
            }
        }
        // A few ranges per thread: the caller takes over a range a descheduled helper has not started (shared box).
        // Ranges are whole multiples of DotRows' four rows.
        int parts = (long)m * n * k < SpinPoolThreshold ? 1 : Math.Min(4 * SpinPool.Width, (n + 3) / 4);
        if (parts <= 1) { Range(0, n); return; }
        int width = ((n + parts - 1) / parts + 3) & ~3;
        SpinPool.For((n + width - 1) / width, p => Range(p * width, Math.Min(n, (p + 1) * width)));
    }

    // y[j] = dot(x, B_j) (+ beta·y[j]) for j in [j0, j1). Four rows of B per pass share every load of x and
    // keep four independent FMA chains in flight; the horizontal sums are paid once per row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]  // hot SIMD loop: skip the slow tier-0 code
    internal static void DotRows(float* x, int k, float* b, int ldb, int j0, int j1, float beta, float* y)
    {
        int kv = k & ~(Vector512<float>.Count - 1);
        int j = j0;
        for (; j + 4 <= j1; j += 4)
        {
            float* b0 = b + (long)j * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            int p = 0;
            for (; p < kv; p += Vector512<float>.Count)
            {
                var xv = Vector512.Load(x + p);
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(b0 + p), xv, s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Load(b1 + p), xv, s1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.Load(b2 + p), xv, s2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.Load(b3 + p), xv, s3);
            }
            float d0 = Vector512.Sum(s0), d1 = Vector512.Sum(s1), d2 = Vector512.Sum(s2), d3 = Vector512.Sum(s3);
            for (; p < k; p++)
            {
                d0 += x[p] * b0[p];
                d1 += x[p] * b1[p];
                d2 += x[p] * b2[p];
                d3 += x[p] * b3[p];
            }
            Store(y, j, d0, beta);
            Store(y, j + 1, d1, beta);
            Store(y, j + 2, d2, beta);
            Store(y, j + 3, d3, beta);
        }
        var xs = new ReadOnlySpan<float>(x, k);
        for (; j < j1; j++) Store(y, j, TensorPrimitives.Dot(xs, new ReadOnlySpan<float>(b + (long)j * ldb, k)), beta);
    }

    private static void Store(float* y, int j, float dot, float beta) => y[j] = beta == 0f ? dot : dot + beta * y[j];

    // C_i = beta C_i + sum_p op(A)[i,p] * B_p: B is (K,N), so each row of C is a sum of scaled rows of B.
    private static void GemmAxpy(bool transA, int m, int n, int k, float* a, int lda, float* b, int ldb,
                                 float beta, float* c, int ldc)
    {
        // Split columns too when there are few rows, so decode-sized products still use every core.
        int colTiles = m >= Environment.ProcessorCount ? 1 : Math.Max(1, Math.Min(Environment.ProcessorCount, n / 256));
        int colWidth = (n + colTiles - 1) / colTiles;
        void Work(int w)
        {
            int i = w / colTiles, ct = w % colTiles;
            int j0 = ct * colWidth, len = Math.Min(n, j0 + colWidth) - j0;
            if (len <= 0) return;
            var ci = new Span<float>(c + (long)i * ldc + j0, len);
            Scale(ci, beta);
            for (int p = 0; p < k; p++)
            {
                float aip = transA ? a[(long)p * lda + i] : a[(long)i * lda + p];
                if (aip == 0f) continue;
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(b + (long)p * ldb + j0, len), aip, ci, ci);
            }
        }
        int work = m * colTiles;
        if ((long)m * n * k < ParallelThreshold || work == 1) { for (int w = 0; w < work; w++) Work(w); }
        else Parallel.For(0, work, Work);
    }
}
