using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

/// <summary>A quantized weight whose product can be computed a range of output rows at a time on the calling
/// thread (native nq_quant4_gemv_rows), each output equal to the whole product's.</summary>
internal unsafe interface IRowRangeWeight : IQuantizedWeight
{
    /// <summary>Whether ranges run the fast kernel here (AVX-512, In % 32 == 0); else they would run the scalar
    /// reference, and callers use <see cref="IQuantizedWeight.MatMulTransposed"/>.</summary>
    bool RowRangesFast { get; }

    /// <summary>Columns [row0, row1) of y (m, Out) = x (m, In) · Wᵀ; row0 % 4 == 0, row1 % 4 == 0 or row1 == Out.</summary>
    void MatMulTransposedRows(float* x, int m, float* y, int row0, int row1);
}

/// <summary>
/// Decode-shaped products (M ≤ 4) of one input with one or more quantized weights, cut into row ranges that the
/// caller and the <see cref="SpinPool"/> helper claim. Natively a product below the 4 MiB cut-off (gemv.h: every
/// body product of a small model) runs on one thread, and one above it (a 32000-row head) opens an OpenMP region
/// whose passive worker needs a futex wake and competes for the second core with the spinning helper; here both
/// cores share every product with no OpenMP region. Outputs equal the unsplit product bit for bit.
/// </summary>
internal static unsafe class RowSplit
{
    // Multiply-adds per part: 64K 4-bit weights take ~3.5 us on one core, several times a hand-off to a spinning
    // helper (~0.2-1 us) plus the per-call reorder of x (~0.1 us at K = 288).
    private const long PartWork = 64 << 10;
    // Enough parts that the caller can take over a descheduled helper's share in small steps.
    private const int MaxParts = 8;
    // While helpers rest (a busy box; they block between jobs) only products of this many multiply-adds are still
    // split: ~50 us on one core, more than a helper's wake-up costs (the 32000x288 head is 9.2M).
    private const long RestingWork = 1 << 20;
    private const int RestingParts = 4;

    /// <summary>Whether <see cref="Run"/> serves a product of <paramref name="w"/> with <paramref name="m"/> rows.</summary>
    public static bool Applies(IQuantizedWeight? w, int m) =>
        m <= 4 && SpinPool.Width > 1 && w is IRowRangeWeight { RowRangesFast: true };

    /// <summary>ys[i] (m, Out_i) float32 = x (m, In) · W_iᵀ for every weight (each <see cref="Applies"/>).</summary>
    public static void Run(float* x, int m, IRowRangeWeight[] weights, nint[] ys)
    {
        long total = 0;
        foreach (var w in weights) total += (long)m * w.OutFeatures * w.InFeatures;
        int parts = SpinPool.HelpersAwake ? (int)Math.Clamp((total + PartWork - 1) / PartWork, 1, MaxParts)
                  : total >= RestingWork ? RestingParts : 1;  // small products whole: parts would only add calls
        // Each weight gets parts in proportion to its work, rounded up (q/k/v: 2 each, not 1, so two threads
        // balance); its rows are cut into equal multiples of 4.
        var plan = new List<(int W, int Row0, int Row1)>(parts + weights.Length);
        for (int i = 0; i < weights.Length; i++)
        {
            int rows = weights[i].OutFeatures;
            long work = (long)m * rows * weights[i].InFeatures;
            int share = (int)Math.Max(1, Math.Min((rows + 3) / 4, (parts * work + total - 1) / total));
            int width = ((rows + share - 1) / share + 3) & ~3;
            for (int r = 0; r < rows; r += width) plan.Add((i, r, Math.Min(rows, r + width)));
        }
        nint xp = (nint)x;
        SpinPool.For(plan.Count, p =>
        {
            var (i, r0, r1) = plan[p];
            weights[i].MatMulTransposedRows((float*)xp, m, (float*)ys[i], r0, r1);
        });
    }
}
