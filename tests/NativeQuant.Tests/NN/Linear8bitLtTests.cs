using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Kernels;
using NativeQuant.NN;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.NN;

public class Linear8bitLtTests
{
    // dY quantized per row to int8 on randn data: ~1/254 relative rounding per product, ~1% of the norm summed (bnb-class).
    private const double Int8RelTol = 0.02;

    /// <summary>x.Grad of sum(layer(x) * r) for x (m, in): r (m, out) · W, through the layer's backward.</summary>
    private static float[] InputGrad(Linear8bitLt layer, float[] x, float[] r, int m)
    {
        using var scope = new TensorScope();
        var xt = new Parameter(Tensor.FromArray(x, [m, layer.InFeatures]));
        var rt = Tensor.FromArray(r, [m, layer.OutFeatures]);
        Functional.Sum(Functional.Mul(layer.Forward(xt), rt)).Backward();
        return xt.Grad!.ToArray();
    }

    [Test]
    public void Int8BackwardCompute_IsTheNativeInt8ProductAndCloseToTheDequantizedOne()
    {
        const int m = 6, inF = 96, outF = 70;
        using var scope = new TensorScope();
        using var w = TensorScope.Unscoped(() => Tensor.RandN([outF, inF], new Random(1), 0.3f));
        using var layer = new Linear8bitLt(w, null, threshold: 6f);
        var x = Tensor.RandN([m, inF], new Random(2)).ToArray();
        var r = Tensor.RandN([m, outF], new Random(3)).ToArray();

        var dequantized = InputGrad(layer, x, r, m);
        layer.BackwardCompute = NqComputeType.Int8;
        var int8 = InputGrad(layer, x, r, m);

        var (q, scb) = layer.Storage();
        var expect = new float[m * inF];
        MatMul.Int8Backward(r, m, outF, q, scb, inF, expect, NqComputeType.Int8);
        Assert.That(int8, Is.EqualTo(expect));  // a fresh gradient buffer: 0 + the kernel's dX
        double num = 0, den = 0;
        for (int i = 0; i < int8.Length; i++) { num += Math.Pow(int8[i] - dequantized[i], 2); den += Math.Pow(dequantized[i], 2); }
        Assert.That(Math.Sqrt(num / den), Is.LessThan(Int8RelTol));
    }
}
