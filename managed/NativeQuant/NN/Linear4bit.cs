using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>
/// A frozen linear layer with NF4/FP4 blockwise weights (bitsandbytes' Linear4bit / QLoRA): packed codes,
/// one absmax per block, optionally double-quantized absmax. Forward and dX run in the native 4-bit GEMM,
/// which dequantizes tile by tile (the fp32 weight never exists after loading).
/// </summary>
public sealed unsafe class Linear4bit : Module<Tensor, Tensor>, IRowRangeWeight
{
    /// <summary>bitsandbytes' block size of the second-level (absmax) quantization.</summary>
    public const int NestedBlockSize = 256;

    private readonly Tensor _packed;
    private readonly Tensor? _absmax;
    private readonly Tensor? _absmaxQ, _nestedAbsmax, _nestedCode;
    private readonly float _nestedOffset;

    public int OutFeatures { get; }
    public int InFeatures { get; }
    public NqQuant4Type Type { get; }
    public int BlockSize { get; }
    public bool DoubleQuant => _absmaxQ != null;
    public Parameter? Bias { get; }

    /// <summary>Precision of the forward and dX products (bitsandbytes' bnb_4bit_compute_dtype): F32 (default),
    /// F16 (fp16 products summed in fp16 over 64-long chunks, ~1.2e-3 relative error, about 1.5x faster on
    /// AVX-512 FP16 CPUs; elsewhere it computes in fp32, see nq_quant4_gemm) or Int8 (SwitchBack: rows of x / dy
    /// and the weight's columns quantized to int8, exact int32 sums, ~1% relative error, 1.3-1.7x faster than F16
    /// on VNNI CPUs). BF16 is accepted too.</summary>
    public NqComputeType ComputeDtype
    {
        get => _compute;
        set => _compute = QuantConfig.RequireQuant4Compute(value);
    }
    private NqComputeType _compute = NqComputeType.F32;

    /// <summary>Quantizes <paramref name="weight"/> (out, in) fp32; the caller keeps ownership of it.</summary>
    public Linear4bit(Tensor weight, Parameter? bias, NqQuant4Type type, int blockSize, bool doubleQuant)
        : this(Quantize(weight, type, blockSize, doubleQuant), type, blockSize, bias) { }

    /// <summary>Adopts a weight (out, in) quantized elsewhere (a pre-quantized checkpoint) byte for byte; the
    /// nested absmax blocks are bitsandbytes' 256.</summary>
    public Linear4bit(int outFeatures, int inFeatures, NqQuant4Type type, int blockSize, Quant4Storage stored, Parameter? bias)
        : this(Adopt(outFeatures, inFeatures, blockSize, stored), type, blockSize, bias) { }

    private Linear4bit(QuantizedParts saved, NqQuant4Type type, int blockSize, Parameter? bias)
    {
        OutFeatures = saved.Out;
        InFeatures = saved.In;
        Type = type;
        BlockSize = blockSize;
        _packed = RegisterBuffer("weight", saved.Packed);
        if (saved.Absmax != null) _absmax = RegisterBuffer("weight_absmax", saved.Absmax);
        else
        {
            _absmaxQ = RegisterBuffer("weight_absmax_q", saved.AbsmaxQ!);
            _nestedAbsmax = RegisterBuffer("weight_nested_absmax", saved.Nested!);
            _nestedCode = RegisterBuffer("weight_nested_code", saved.Code!);
            _nestedOffset = saved.Offset;
        }
        if (bias != null) Bias = RegisterParameter("bias", bias);
    }

    private readonly record struct QuantizedParts(int Out, int In, Tensor Packed, Tensor? Absmax, Tensor? AbsmaxQ, Tensor? Nested, Tensor? Code, float Offset);

    private static QuantizedParts Quantize(Tensor weight, NqQuant4Type type, int blockSize, bool doubleQuant)
    {
        Functional.RequireFloat(weight, "Linear4bit", nameof(weight));
        if (weight.Rank != 2) throw new ArgumentException($"Linear4bit: weight must be 2-D, got {weight.ShapeString}");
        if (weight.NumElements % 2 != 0) throw new ArgumentException($"Linear4bit: weight {weight.ShapeString} has an odd element count");
        int blocks = (int)((weight.NumElements + blockSize - 1) / blockSize);
        return TensorScope.Unscoped(() => QuantizeWeight(weight, type, blockSize, blocks, doubleQuant));
    }

    private static QuantizedParts Adopt(int outFeatures, int inFeatures, int blockSize, Quant4Storage s)
    {
        long n = (long)outFeatures * inFeatures;
        long blocks = (n + blockSize - 1) / blockSize;
        void Require(bool ok, string what)
        {
            if (!ok) throw new ArgumentException($"Linear4bit: stored weight for ({outFeatures}, {inFeatures}) with block size {blockSize}: {what}");
        }
        Require(n % 2 == 0 && s.Packed.Length == n / 2, $"expected {n / 2} packed bytes, got {s.Packed.Length}");
        Require((s.Absmax == null) != (s.AbsmaxQ == null), "give either fp32 absmax or double-quantized absmax");
        Require((s.Absmax ?? (Array)s.AbsmaxQ!).Length == blocks, $"expected {blocks} absmax values");
        if (s.AbsmaxQ != null)
        {
            Require(s.NestedAbsmax?.Length == (blocks + NestedBlockSize - 1) / NestedBlockSize, $"expected {(blocks + NestedBlockSize - 1) / NestedBlockSize} nested absmax values");
            Require(s.NestedCode?.Length == 256, "expected a 256-entry nested code");
        }
        static Tensor? Copy<T>(T[]? a, DType dtype) where T : unmanaged => a == null ? null : Tensor.FromSpan<T>(a, [a.Length], dtype);
        return TensorScope.Unscoped(() => new QuantizedParts(outFeatures, inFeatures, Copy(s.Packed, DType.UInt8)!,
            Copy(s.Absmax, DType.Float32), Copy(s.AbsmaxQ, DType.UInt8), Copy(s.NestedAbsmax, DType.Float32), Copy(s.NestedCode, DType.Float32), s.NestedOffset));
    }

    /// <summary>Copies of the stored parts (what a pre-quantized checkpoint holds for this layer).</summary>
    public Quant4Storage Storage() => new(_packed.AsSpan<byte>().ToArray(), _absmax?.Data.ToArray(), _absmaxQ?.AsSpan<byte>().ToArray(),
                                          _nestedAbsmax?.Data.ToArray(), _nestedCode?.Data.ToArray(), _nestedOffset);

    private static QuantizedParts QuantizeWeight(Tensor weight, NqQuant4Type type, int blockSize, int blocks, bool doubleQuant)
    {
        long n = weight.NumElements;
        var packed = Tensor.Empty([(int)(n / 2)], DType.UInt8);
        var absmax = Tensor.Empty([blocks]);
        Nq.Check(NativeMethods.nq_quant4_quantize(type, weight.DataPointer, n, blockSize, (byte*)packed.RawPointer, absmax.DataPointer));
        if (!doubleQuant) return new QuantizedParts(weight.Size(0), weight.Size(1), packed, absmax, null, null, null, 0f);
        using (absmax)
        {
            var code = Tensor.Empty([256]);
            Nq.Check(NativeMethods.nq_dynamic_map_create(1, code.DataPointer));
            var q = Tensor.Empty([blocks], DType.UInt8);
            var nested = Tensor.Empty([(blocks + NestedBlockSize - 1) / NestedBlockSize]);
            float offset;
            Nq.Check(NativeMethods.nq_absmax_compress(absmax.DataPointer, blocks, NestedBlockSize, code.DataPointer, (byte*)q.RawPointer, nested.DataPointer, &offset));
            return new QuantizedParts(weight.Size(0), weight.Size(1), packed, null, q, nested, code, offset);
        }
    }

    private NqQuant4Weight Descriptor() => new()
    {
        Packed = (byte*)_packed.RawPointer,
        Absmax = _absmax == null ? null : _absmax.DataPointer,
        AbsmaxQ = _absmaxQ == null ? null : (byte*)_absmaxQ.RawPointer,
        NestedAbsmax = _nestedAbsmax == null ? null : _nestedAbsmax.DataPointer,
        NestedCode = _nestedCode == null ? null : _nestedCode.DataPointer,
        NestedOffset = _nestedOffset,
        NestedBlocksize = NestedBlockSize,
        N = OutFeatures,
        K = InFeatures,
        Blocksize = BlockSize,
        Type = (int)Type,
    };

    /// <summary>x (..., in) -> (..., out)</summary>
    public override Tensor Forward(Tensor x) => Functional.QuantizedLinear(x, this, Bias);

    void IQuantizedWeight.MatMulTransposed(float* x, int m, float* bias, float* y)
    {
        var w = Descriptor();
        Nq.Check(NativeMethods.nq_quant4_gemm(x, m, &w, bias, _compute, y));
    }

    // nq_quant4_gemv_rows computes in fp32: other compute types keep their own kernels.
    bool IRowRangeWeight.RowRangesFast => _compute == NqComputeType.F32 && InFeatures % 32 == 0 && NativeRuntime.Isa >= NqIsa.Avx512;

    void IRowRangeWeight.MatMulTransposedRows(float* x, int m, float* y, int row0, int row1)
    {
        var w = Descriptor();
        Nq.Check(NativeMethods.nq_quant4_gemv_rows(x, m, &w, null, row0, row1, y));
    }

    void IQuantizedWeight.MatMulInputGrad(float* dy, int m, float beta, float* dx)
    {
        var w = Descriptor();
        Nq.Check(NativeMethods.nq_quant4_gemm_backward(dy, m, &w, _compute, beta, dx));
    }

    /// <summary>The dequantized fp32 weight (out, in), for tests and merging.</summary>
    public Tensor Dequantize()
    {
        long n = (long)OutFeatures * InFeatures;
        int blocks = (int)((n + BlockSize - 1) / BlockSize);
        var w = Tensor.Empty([OutFeatures, InFeatures]);
        using var absmax = _absmax == null ? Tensor.Empty([blocks]) : null;
        if (absmax != null)
            Nq.Check(NativeMethods.nq_absmax_decompress((byte*)_absmaxQ!.RawPointer, _nestedAbsmax!.DataPointer, _nestedOffset, blocks, NestedBlockSize, _nestedCode!.DataPointer, absmax.DataPointer));
        var am = absmax ?? _absmax!;
        Nq.Check(NativeMethods.nq_quant4_dequantize(Type, (byte*)_packed.RawPointer, am.DataPointer, n, BlockSize, w.DataPointer));
        return w;
    }
}

/// <summary>A 4-bit weight's stored parts (bitsandbytes' Params4bit tensors): packed codes and either fp32
/// <paramref name="Absmax"/> per block or, with double quantization, uint8 <paramref name="AbsmaxQ"/> codes of
/// <paramref name="NestedCode"/> scaled by <paramref name="NestedAbsmax"/> per 256 blocks, plus <paramref name="NestedOffset"/>.</summary>
public sealed record Quant4Storage(byte[] Packed, float[]? Absmax, byte[]? AbsmaxQ, float[]? NestedAbsmax, float[]? NestedCode, float NestedOffset);
