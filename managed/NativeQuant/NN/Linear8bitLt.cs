using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>
/// A frozen linear layer in LLM.int8() form (bitsandbytes' Linear8bitLt): int8 weight (out, in) with one absmax
/// per row (SCB). Forward uses the native mixed-precision matmul (outlier columns of x above the threshold in
/// fp32, the rest in int8); dX = dY · W uses the dequantized weight, or the int8 product (see
/// <see cref="BackwardCompute"/>).
/// </summary>
public sealed unsafe class Linear8bitLt : Module<Tensor, Tensor>, IQuantizedWeight
{
    private readonly Tensor _q, _scb;
    private int[] _outlierScratch = [];

    public int OutFeatures { get; }
    public int InFeatures { get; }
    public float Threshold { get; }
    public Parameter? Bias { get; }

    /// <summary>How backward computes dX = dY · W. null (default): the dequantized fp32 weight through
    /// <see cref="Gemm.Sgemm"/>. <see cref="NqComputeType.F32"/> / <see cref="NqComputeType.Bf16"/>: the native
    /// backward dequantizing W tile by tile in that precision. <see cref="NqComputeType.Int8"/>: SwitchBack's int8
    /// input gradient (dY · SCB / 127 quantized per row, int32 products): the forward's speed, ~1% error.</summary>
    public NqComputeType? BackwardCompute { get; set; }

    /// <summary>Quantizes <paramref name="weight"/> (out, in) fp32 row-wise; the caller keeps ownership of it.</summary>
    public Linear8bitLt(Tensor weight, Parameter? bias, float threshold)
    {
        Functional.RequireFloat(weight, "Linear8bitLt", nameof(weight));
        if (weight.Rank != 2) throw new ArgumentException($"Linear8bitLt: weight must be 2-D, got {weight.ShapeString}");
        OutFeatures = weight.Size(0);
        InFeatures = weight.Size(1);
        Threshold = threshold;
        _q = RegisterBuffer("weight", TensorScope.Unscoped(() => Tensor.Empty([OutFeatures, InFeatures], DType.Int8)));
        _scb = RegisterBuffer("SCB", TensorScope.Unscoped(() => Tensor.Empty([OutFeatures])));
        Nq.Check(NativeMethods.nq_int8_rowwise_quantize(weight.DataPointer, OutFeatures, InFeatures, (sbyte*)_q.RawPointer, _scb.DataPointer));
        if (bias != null) Bias = RegisterParameter("bias", bias);
    }

    /// <summary>Adopts a row-wise int8 weight (out, in) quantized elsewhere (a pre-quantized checkpoint's
    /// `weight` and `SCB`) byte for byte.</summary>
    public Linear8bitLt(int outFeatures, int inFeatures, ReadOnlySpan<sbyte> weight, ReadOnlySpan<float> scb, Parameter? bias, float threshold)
    {
        if (weight.Length != (long)outFeatures * inFeatures || scb.Length != outFeatures)
            throw new ArgumentException($"Linear8bitLt: stored weight for ({outFeatures}, {inFeatures}) needs {(long)outFeatures * inFeatures} int8 values and {outFeatures} SCB, got {weight.Length} and {scb.Length}");
        OutFeatures = outFeatures;
        InFeatures = inFeatures;
        Threshold = threshold;
        _q = RegisterBuffer("weight", TensorScope.Unscoped(() => Tensor.Empty([outFeatures, inFeatures], DType.Int8)));
        _scb = RegisterBuffer("SCB", TensorScope.Unscoped(() => Tensor.Empty([outFeatures])));
        weight.CopyTo(_q.AsSpan<sbyte>());
        scb.CopyTo(_scb.Data);
        if (bias != null) Bias = RegisterParameter("bias", bias);
    }

    /// <summary>Copies of the int8 weight (out × in, row-major) and the row absmax SCB.</summary>
    public (sbyte[] Weight, float[] Scb) Storage() => (_q.AsSpan<sbyte>().ToArray(), _scb.Data.ToArray());

    /// <summary>x (..., in) -> (..., out)</summary>
    public override Tensor Forward(Tensor x) => Functional.QuantizedLinear(x, this, Bias);

    void IQuantizedWeight.MatMulTransposed(float* x, int m, float* bias, float* y)
    {
        if (_outlierScratch.Length < InFeatures) _outlierScratch = new int[InFeatures];
        long count;
        fixed (int* cols = _outlierScratch)
            Nq.Check(NativeMethods.nq_int8_matmul(x, m, InFeatures, (sbyte*)_q.RawPointer, _scb.DataPointer, OutFeatures, Threshold,
                                                  bias, NqComputeType.F32, y, cols, InFeatures, &count));
    }

    void IQuantizedWeight.MatMulInputGrad(float* dy, int m, float beta, float* dx)
    {
        if (BackwardCompute is { } compute)
        {
            Nq.Check(NativeMethods.nq_int8_matmul_backward(dy, m, OutFeatures, (sbyte*)_q.RawPointer, _scb.DataPointer, InFeatures,
                                                           compute, beta, dx));
            return;
        }
        using var w = Dequantize();
        Gemm.Sgemm(false, false, m, InFeatures, OutFeatures, dy, w.DataPointer, beta, dx);
    }

    /// <summary>The dequantized fp32 weight (out, in).</summary>
    public Tensor Dequantize()
    {
        var w = Tensor.Empty([OutFeatures, InFeatures]);
        Nq.Check(NativeMethods.nq_int8_rowwise_dequantize((sbyte*)_q.RawPointer, _scb.DataPointer, OutFeatures, InFeatures, w.DataPointer));
        return w;
    }
}
