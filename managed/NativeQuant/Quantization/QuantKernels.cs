using NativeQuant.Interop;

namespace NativeQuant.Quantization;

/// <summary>Span-based wrappers of the native quantization kernels; sizes are checked here so a mismatch
/// names the managed argument before the native call.</summary>
public static unsafe class QuantKernels
{
    public static float Int8AbsmaxQuantize(ReadOnlySpan<float> x, Span<sbyte> q)
    {
        Require(q.Length == x.Length, nameof(q), x.Length, q.Length);
        float absmax;
        fixed (float* px = x) fixed (sbyte* pq = q) Nq.Check(NativeMethods.nq_int8_absmax_quantize(px, x.Length, pq, &absmax));
        return absmax;
    }

    public static void Int8AbsmaxDequantize(ReadOnlySpan<sbyte> q, float absmax, Span<float> x)
    {
        Require(x.Length == q.Length, nameof(x), q.Length, x.Length);
        fixed (sbyte* pq = q) fixed (float* px = x) Nq.Check(NativeMethods.nq_int8_absmax_dequantize(pq, q.Length, absmax, px));
    }

    public static void Int8RowwiseQuantize(ReadOnlySpan<float> x, long rows, long cols, Span<sbyte> q, Span<float> rowAbsmax)
    {
        Require(x.Length == rows * cols, nameof(x), rows * cols, x.Length);
        Require(q.Length == x.Length, nameof(q), x.Length, q.Length);
        Require(rowAbsmax.Length == rows, nameof(rowAbsmax), rows, rowAbsmax.Length);
        fixed (float* px = x) fixed (sbyte* pq = q) fixed (float* pa = rowAbsmax)
            Nq.Check(NativeMethods.nq_int8_rowwise_quantize(px, rows, cols, pq, pa));
    }

    public static void Int8RowwiseDequantize(ReadOnlySpan<sbyte> q, ReadOnlySpan<float> rowAbsmax, long rows, long cols, Span<float> x)
    {
        Require(q.Length == rows * cols, nameof(q), rows * cols, q.Length);
        Require(x.Length == q.Length, nameof(x), q.Length, x.Length);
        Require(rowAbsmax.Length == rows, nameof(rowAbsmax), rows, rowAbsmax.Length);
        fixed (sbyte* pq = q) fixed (float* pa = rowAbsmax) fixed (float* px = x)
            Nq.Check(NativeMethods.nq_int8_rowwise_dequantize(pq, pa, rows, cols, px));
    }

    public static void Int8ZeropointQuantize(ReadOnlySpan<float> x, long rows, long cols, Span<sbyte> q, Span<float> scale, Span<float> zeroPoint)
    {
        Require(x.Length == rows * cols, nameof(x), rows * cols, x.Length);
        Require(q.Length == x.Length, nameof(q), x.Length, q.Length);
        Require(scale.Length == rows && zeroPoint.Length == rows, nameof(scale), rows, scale.Length);
        fixed (float* px = x) fixed (sbyte* pq = q) fixed (float* ps = scale) fixed (float* pz = zeroPoint)
            Nq.Check(NativeMethods.nq_int8_zeropoint_quantize(px, rows, cols, 1, pq, ps, pz));
    }

    public static void Int8ZeropointDequantize(ReadOnlySpan<sbyte> q, ReadOnlySpan<float> scale, ReadOnlySpan<float> zeroPoint, long rows, long cols, Span<float> x)
    {
        Require(q.Length == rows * cols, nameof(q), rows * cols, q.Length);
        Require(x.Length == q.Length, nameof(x), q.Length, x.Length);
        Require(scale.Length == rows && zeroPoint.Length == rows, nameof(scale), rows, scale.Length);
        fixed (sbyte* pq = q) fixed (float* ps = scale) fixed (float* pz = zeroPoint) fixed (float* px = x)
            Nq.Check(NativeMethods.nq_int8_zeropoint_dequantize(pq, ps, pz, rows, cols, 1, px));
    }

    /// <summary>bitsandbytes' signed dynamic map (256 codes), the default code of blockwise8 and double quant.</summary>
    public static float[] DynamicMap(bool signed = true)
    {
        var code = new float[256];
        fixed (float* p = code) Nq.Check(NativeMethods.nq_dynamic_map_create(signed ? 1 : 0, p));
        return code;
    }

    public static void Blockwise8Quantize(ReadOnlySpan<float> x, int blocksize, ReadOnlySpan<float> code, Span<byte> q, Span<float> absmax)
    {
        Require(code.Length == 256, nameof(code), 256, code.Length);
        Require(q.Length == x.Length, nameof(q), x.Length, q.Length);
        Require(absmax.Length == Blocks(x.Length, blocksize), nameof(absmax), Blocks(x.Length, blocksize), absmax.Length);
        fixed (float* px = x) fixed (float* pc = code) fixed (byte* pq = q) fixed (float* pa = absmax)
            Nq.Check(NativeMethods.nq_blockwise8_quantize(px, x.Length, blocksize, pc, pq, pa));
    }

    public static void Blockwise8Dequantize(ReadOnlySpan<byte> q, ReadOnlySpan<float> absmax, int blocksize, ReadOnlySpan<float> code, Span<float> x)
    {
        Require(code.Length == 256, nameof(code), 256, code.Length);
        Require(x.Length == q.Length, nameof(x), q.Length, x.Length);
        Require(absmax.Length == Blocks(q.Length, blocksize), nameof(absmax), Blocks(q.Length, blocksize), absmax.Length);
        fixed (byte* pq = q) fixed (float* pa = absmax) fixed (float* pc = code) fixed (float* px = x)
            Nq.Check(NativeMethods.nq_blockwise8_dequantize(pq, pa, q.Length, blocksize, pc, px));
    }

    public static float[] Quant4Code(NqQuant4Type type)
    {
        var code = new float[16];
        fixed (float* p = code) Nq.Check(NativeMethods.nq_quant4_code_get(type, p));
        return code;
    }

    public static void Quant4Quantize(NqQuant4Type type, ReadOnlySpan<float> x, int blocksize, Span<byte> packed, Span<float> absmax)
    {
        Require(packed.Length * 2L == x.Length, nameof(packed), x.Length / 2, packed.Length);
        Require(absmax.Length == Blocks(x.Length, blocksize), nameof(absmax), Blocks(x.Length, blocksize), absmax.Length);
        fixed (float* px = x) fixed (byte* pp = packed) fixed (float* pa = absmax)
            Nq.Check(NativeMethods.nq_quant4_quantize(type, px, x.Length, blocksize, pp, pa));
    }

    public static void Quant4Dequantize(NqQuant4Type type, ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, int blocksize, Span<float> x)
    {
        Require(packed.Length * 2L == x.Length, nameof(packed), x.Length / 2, packed.Length);
        Require(absmax.Length == Blocks(x.Length, blocksize), nameof(absmax), Blocks(x.Length, blocksize), absmax.Length);
        fixed (byte* pp = packed) fixed (float* pa = absmax) fixed (float* px = x)
            Nq.Check(NativeMethods.nq_quant4_dequantize(type, pp, pa, x.Length, blocksize, px));
    }

    /// <summary>Double quantization of per-block absmax; returns the offset (their mean).</summary>
    public static float AbsmaxCompress(ReadOnlySpan<float> absmax, int nestedBlocksize, ReadOnlySpan<float> code, Span<byte> q, Span<float> nestedAbsmax)
    {
        Require(q.Length == absmax.Length, nameof(q), absmax.Length, q.Length);
        Require(nestedAbsmax.Length == Blocks(absmax.Length, nestedBlocksize), nameof(nestedAbsmax), Blocks(absmax.Length, nestedBlocksize), nestedAbsmax.Length);
        float offset;
        fixed (float* pa = absmax) fixed (float* pc = code) fixed (byte* pq = q) fixed (float* pn = nestedAbsmax)
            Nq.Check(NativeMethods.nq_absmax_compress(pa, absmax.Length, nestedBlocksize, pc, pq, pn, &offset));
        return offset;
    }

    public static void AbsmaxDecompress(ReadOnlySpan<byte> q, ReadOnlySpan<float> nestedAbsmax, float offset, int nestedBlocksize, ReadOnlySpan<float> code, Span<float> absmax)
    {
        Require(absmax.Length == q.Length, nameof(absmax), q.Length, absmax.Length);
        Require(nestedAbsmax.Length == Blocks(q.Length, nestedBlocksize), nameof(nestedAbsmax), Blocks(q.Length, nestedBlocksize), nestedAbsmax.Length);
        fixed (byte* pq = q) fixed (float* pn = nestedAbsmax) fixed (float* pc = code) fixed (float* pa = absmax)
            Nq.Check(NativeMethods.nq_absmax_decompress(pq, pn, offset, q.Length, nestedBlocksize, pc, pa));
    }

    public static NqErrorStats ErrorStats(ReadOnlySpan<float> reference, ReadOnlySpan<float> approx)
    {
        Require(approx.Length == reference.Length, nameof(approx), reference.Length, approx.Length);
        NqErrorStats stats;
        fixed (float* pr = reference) fixed (float* pa = approx)
            Nq.Check(NativeMethods.nq_error_stats_compute(pr, pa, reference.Length, &stats));
        return stats;
    }

    public static long Blocks(long n, int blocksize) => (n + blocksize - 1) / blocksize;

    private static void Require(bool ok, string argument, long expected, long actual)
    {
        if (!ok) throw new ArgumentException($"{argument}: expected {expected} elements, got {actual}", argument);
    }
}
