using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>
/// A frozen linear layer in LLM.int8() form (bitsandbytes' Linear8bitLt): int8 weight (out, in) with one absmax
/// per row (SCB). Forward uses the native mixed-precision matmul (outlier columns of x above the threshold in
/// fp32, the rest in int8); dX = dY · W uses the dequantized weight.
/// </summary>
public sealed unsafe class Linear8bitLt : Module<Tensor, Tensor>, IQuantizedWeight
{
    private readonly Tensor _q, _scb;
    private int[] _outlierScratch = [];

    public int OutFeatures { get; }
    public int InFeatures { get; }
    public float Threshold { get; }
    public Parameter? Bias { get; }

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

    /// <summary>x (..., in) -> (..., out)</summary>
    public override Tensor Forward(Tensor x) => Functional.QuantizedLinear(x, this, Bias);

    void IQuantizedWeight.MatMulTransposed(float* x, int m, float* y)
    {
        if (_outlierScratch.Length < InFeatures) _outlierScratch = new int[InFeatures];
        long count;
        fixed (int* cols = _outlierScratch)
            Nq.Check(NativeMethods.nq_int8_matmul(x, m, InFeatures, (sbyte*)_q.RawPointer, _scb.DataPointer, OutFeatures, Threshold,
                                                  null, NqComputeType.F32, y, cols, InFeatures, &count));
    }

    void IQuantizedWeight.MatMulAccumulate(float* dy, int m, float* dx)
    {
        using var w = Dequantize();
        Gemm.Sgemm(false, false, m, InFeatures, OutFeatures, dy, w.DataPointer, 1f, dx);
    }

    /// <summary>The dequantized fp32 weight (out, in).</summary>
    public Tensor Dequantize()
    {
        var w = Tensor.Empty([OutFeatures, InFeatures]);
        Nq.Check(NativeMethods.nq_int8_rowwise_dequantize((sbyte*)_q.RawPointer, _scb.DataPointer, OutFeatures, InFeatures, w.DataPointer));
        return w;
    }
}
