namespace NativeQuant.Autograd;

/// <summary>
/// A frozen weight W (OutFeatures, InFeatures) stored in a quantized format (NF4/FP4/int8). The quantized
/// linear op only needs these two products; implementations call native kernels when present and otherwise
/// dequantize and use the fp32 GEMM. Frozen: there is no gradient for W itself.
/// </summary>
public unsafe interface IQuantizedWeight
{
    int OutFeatures { get; }
    int InFeatures { get; }

    /// <summary>y(m, Out) = x(m, In) · Wᵀ + bias (Out floats, or null), overwriting y; the kernel adds the bias
    /// while each output tile is in cache.</summary>
    void MatMulTransposed(float* x, int m, float* bias, float* y);

    /// <summary>dx(m, In) = beta · dx + dy(m, Out) · W; beta 0 overwrites dx (it may hold garbage), 1 accumulates.</summary>
    void MatMulInputGrad(float* dy, int m, float beta, float* dx);
}
