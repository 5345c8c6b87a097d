using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>
/// A frozen linear layer with NF4/FP4 blockwise weights (bitsandbytes' Linear4bit / QLoRA): packed codes,
/// one absmax per block, optionally double-quantized absmax. Forward and dX run in the native 4-bit GEMM,
/// which dequantizes tile by tile (the fp32 weight never exists after loading).
/// </summary>
public sealed unsafe class Linear4bit : Module<Tensor, Tensor>, IQuantizedWeight
{
    // bitsandbytes' default block size of the second-level (absmax) quantization.
    private const int NestedBlockSize = 256;

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

    /// <summary>Quantizes <paramref name="weight"/> (out, in) fp32; the caller keeps ownership of it.</summary>
    public Linear4bit(Tensor weight, Parameter? bias, NqQuant4Type type, int blockSize, bool doubleQuant)
    {
        Functional.RequireFloat(weight, "Linear4bit", nameof(weight));
        if (weight.Rank != 2) throw new ArgumentException($"Linear4bit: weight must be 2-D, got {weight.ShapeString}");
        OutFeatures = weight.Size(0);
        InFeatures = weight.Size(1);
        Type = type;
        BlockSize = blockSize;
        long n = weight.NumElements;
        if (n % 2 != 0) throw new ArgumentException($"Linear4bit: weight {weight.ShapeString} has an odd element count");
        int blocks = (int)((n + blockSize - 1) / blockSize);
        var saved = TensorScope.Unscoped(() => QuantizeWeight(weight, type, blockSize, blocks, doubleQuant));
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

    private readonly record struct QuantizedParts(Tensor Packed, Tensor? Absmax, Tensor? AbsmaxQ, Tensor? Nested, Tensor? Code, float Offset);

    private static QuantizedParts QuantizeWeight(Tensor weight, NqQuant4Type type, int blockSize, int blocks, bool doubleQuant)
    {
        long n = weight.NumElements;
        var packed = Tensor.Empty([(int)(n / 2)], DType.UInt8);
        var absmax = Tensor.Empty([blocks]);
        Nq.Check(NativeMethods.nq_quant4_quantize(type, weight.DataPointer, n, blockSize, (byte*)packed.RawPointer, absmax.DataPointer));
        if (!doubleQuant) return new QuantizedParts(packed, absmax, null, null, null, 0f);
        using (absmax)
        {
            var code = Tensor.Empty([256]);
            Nq.Check(NativeMethods.nq_dynamic_map_create(1, code.DataPointer));
            var q = Tensor.Empty([blocks], DType.UInt8);
            var nested = Tensor.Empty([(blocks + NestedBlockSize - 1) / NestedBlockSize]);
            float offset;
            Nq.Check(NativeMethods.nq_absmax_compress(absmax.DataPointer, blocks, NestedBlockSize, code.DataPointer, (byte*)q.RawPointer, nested.DataPointer, &offset));
            return new QuantizedParts(packed, null, q, nested, code, offset);
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

    void IQuantizedWeight.MatMulTransposed(float* x, int m, float* y)
    {
        var w = Descriptor();
        Nq.Check(NativeMethods.nq_quant4_gemm(x, m, &w, null, NqComputeType.F32, y));
    }

    void IQuantizedWeight.MatMulAccumulate(float* dy, int m, float* dx)
    {
        var w = Descriptor();
        Nq.Check(NativeMethods.nq_quant4_gemm_backward(dy, m, &w, NqComputeType.F32, 1f, dx));
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
