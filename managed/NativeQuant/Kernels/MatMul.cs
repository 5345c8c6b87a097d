using NativeQuant.Interop;

namespace NativeQuant.Kernels;

/// <summary>
/// Managed entry points of the native matmul kernels (fp32/bf16 GEMM, NF4/FP4 and LLM.int8()).
/// Spans in, lengths validated here with the argument named; the native call validates the rest
/// and failures surface as <see cref="NativeQuantException"/>. Row-major, shapes in the comments.
/// </summary>
public static unsafe class MatMul
{
    /// <summary>c (m,n) = beta*c + op(a) op(b) + bias; a is (m,k) or stored (k,m) when transA,
    /// b is (k,n) or stored (n,k) when transB. Linear: y = x wᵀ is (false, true).</summary>
    public static void Gemm(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<float> a, ReadOnlySpan<float> b,
                            Span<float> c, float beta = 0f, ReadOnlySpan<float> bias = default)
    {
        Require(a.Length, (long)m * k, nameof(a));
        Require(b.Length, (long)n * k, nameof(b));
        Require(c.Length, (long)m * n, nameof(c));
        if (!bias.IsEmpty) Require(bias.Length, n, nameof(bias));
        fixed (float* pa = a, pb = b, pc = c, pbias = bias)
            Nq.Check(NativeMethods.nq_gemm_f32(transA ? 1 : 0, transB ? 1 : 0, m, n, k, pa, pb, beta,
                                               bias.IsEmpty ? null : pbias, pc));
    }

    /// <summary>Same with bf16 inputs (bit patterns), fp32 accumulation and output.</summary>
    public static void GemmBf16(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<ushort> a,
                                ReadOnlySpan<ushort> b, Span<float> c, float beta = 0f, ReadOnlySpan<float> bias = default)
    {
        Require(a.Length, (long)m * k, nameof(a));
        Require(b.Length, (long)n * k, nameof(b));
        Require(c.Length, (long)m * n, nameof(c));
        if (!bias.IsEmpty) Require(bias.Length, n, nameof(bias));
        fixed (ushort* pa = a, pb = b)
        fixed (float* pc = c, pbias = bias)
            Nq.Check(NativeMethods.nq_gemm_bf16(transA ? 1 : 0, transB ? 1 : 0, m, n, k, pa, pb, beta,
                                                bias.IsEmpty ? null : pbias, pc));
    }

    /// <summary>y (m, n) = x (m, k) Wᵀ + bias for a 4-bit weight W (n, k) with plain absmax
    /// (one float per block of <paramref name="blocksize"/> over the flattened weight).</summary>
    public static void Quant4(ReadOnlySpan<float> x, int m, ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax,
                              int n, int k, int blocksize, NqQuant4Type type, Span<float> y,
                              NqComputeType compute = NqComputeType.F32, ReadOnlySpan<float> bias = default)
    {
        Require(x.Length, (long)m * k, nameof(x));
        Require(y.Length, (long)m * n, nameof(y));
        Quant4Check(packed, absmax, n, k, blocksize);
        if (!bias.IsEmpty) Require(bias.Length, n, nameof(bias));
        fixed (float* px = x, py = y, pa = absmax, pbias = bias)
        fixed (byte* pp = packed)
        {
            var w = Weight(pp, pa, n, k, blocksize, type);
            Nq.Check(NativeMethods.nq_quant4_gemm(px, m, &w, bias.IsEmpty ? null : pbias, compute, py));
        }
    }

    /// <summary>dx (m, k) = beta*dx + dy (m, n) W for the same stored 4-bit W (n, k).</summary>
    public static void Quant4Backward(ReadOnlySpan<float> dy, int m, ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax,
                                      int n, int k, int blocksize, NqQuant4Type type, Span<float> dx,
                                      NqComputeType compute = NqComputeType.F32, float beta = 0f)
    {
        Require(dy.Length, (long)m * n, nameof(dy));
        Require(dx.Length, (long)m * k, nameof(dx));
        Quant4Check(packed, absmax, n, k, blocksize);
        fixed (float* pdy = dy, pdx = dx, pa = absmax)
        fixed (byte* pp = packed)
        {
            var w = Weight(pp, pa, n, k, blocksize, type);
            Nq.Check(NativeMethods.nq_quant4_gemm_backward(pdy, m, &w, compute, beta, pdx));
        }
    }

    /// <summary>LLM.int8(): y (m, n) = x (m, k) Wᵀ + bias with W int8 (n, k) and its row absmax
    /// <paramref name="scb"/>; columns of x with |x| ≥ threshold go through 16-bit. Returns the
    /// outlier column indices (ascending).</summary>
    public static int[] Int8(ReadOnlySpan<float> x, int m, int k, ReadOnlySpan<sbyte> w, ReadOnlySpan<float> scb, int n,
                             Span<float> y, float threshold = 6f, ReadOnlySpan<float> bias = default,
                             NqComputeType outlierCompute = NqComputeType.Bf16)
    {
        Require(x.Length, (long)m * k, nameof(x));
        Require(w.Length, (long)n * k, nameof(w));
        Require(scb.Length, n, nameof(scb));
        Require(y.Length, (long)m * n, nameof(y));
        if (!bias.IsEmpty) Require(bias.Length, n, nameof(bias));
        var cols = new int[k];
        long count;
        fixed (float* px = x, pscb = scb, py = y, pbias = bias)
        fixed (sbyte* pw = w)
        fixed (int* pc = cols)
            Nq.Check(NativeMethods.nq_int8_matmul(px, m, k, pw, pscb, n, threshold, bias.IsEmpty ? null : pbias,
                                                  outlierCompute, py, pc, k, &count));
        return cols[..(int)count];
    }

    /// <summary>Backward of <see cref="Int8"/>: dx (m, k) = beta*dx + dy (m, n) (W * scb / 127); <paramref name="compute"/>
    /// <see cref="NqComputeType.Int8"/> quantizes dy * scb / 127 per row and multiplies in int8 (n &lt;= 65536).</summary>
    public static void Int8Backward(ReadOnlySpan<float> dy, int m, int n, ReadOnlySpan<sbyte> w, ReadOnlySpan<float> scb,
                                    int k, Span<float> dx, NqComputeType compute = NqComputeType.F32, float beta = 0f)
    {
        Require(dy.Length, (long)m * n, nameof(dy));
        Require(w.Length, (long)n * k, nameof(w));
        Require(scb.Length, n, nameof(scb));
        Require(dx.Length, (long)m * k, nameof(dx));
        fixed (float* pdy = dy, pscb = scb, pdx = dx)
        fixed (sbyte* pw = w)
            Nq.Check(NativeMethods.nq_int8_matmul_backward(pdy, m, n, pw, pscb, k, compute, beta, pdx));
    }

    private static NqQuant4Weight Weight(byte* packed, float* absmax, int n, int k, int blocksize, NqQuant4Type type) =>
        new() { Packed = packed, Absmax = absmax, N = n, K = k, Blocksize = blocksize, Type = (int)type };

    private static void Quant4Check(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, int n, int k, int blocksize)
    {
        if (blocksize <= 0) throw new ArgumentOutOfRangeException(nameof(blocksize), blocksize, "must be positive");
        Require(packed.Length, (long)n * k / 2, nameof(packed));
        Require(absmax.Length, ((long)n * k + blocksize - 1) / blocksize, nameof(absmax));
    }

    private static void Require(int actual, long expected, string name)
    {
        if (actual != expected)
            throw new ArgumentException($"{name} has {actual} elements; the shape needs {expected}", name);
    }
}
