using NativeQuant.Interop;
using NativeQuant.Models;
using NativeQuant.Models.Gpt2;
using NativeQuant.NN;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.NN;

/// <summary>Linear with ComputeDtype F16 (nq_gemm_f32_compute), and the fp32 head of a 4-bit model taking the
/// 4-bit layers' compute dtype.</summary>
public class LinearComputeDtypeTests
{
    // nq_gemm_f32_compute's documented bound for F16 vs exact products (~1.2e-3 measured); F32 is ~1e-7 from exact.
    private const double F16RelTol = 3e-3;

    // Forward y, dx and dW of one layer on fixed data (seeded), computing in `compute`.
    private static (float[] Y, float[] Dx, float[] Dw) Run(NqComputeType compute, int rows)
    {
        using var scope = new TensorScope();
        var layer = new Linear(300, 130, bias: true, new Random(1)) { ComputeDtype = compute };
        var x = Tensor.RandN([rows, 300], new Random(2));
        x.RequiresGrad = true;
        var y = layer.Forward(x);
        var yv = y.ToArray();
        y.Backward(Tensor.RandN([rows, 130], new Random(3)));
        var result = (yv, x.Grad!.ToArray(), layer.Weight.Grad!.ToArray());
        layer.Weight.Grad = null;
        layer.Bias!.Grad = null;
        return result;
    }

    [Test]
    public void F16_ForwardAndInputGradientWithinTolerance_WeightGradientExactlyF32()
    {
        var f32 = Run(NqComputeType.F32, 37);
        var f16 = Run(NqComputeType.F16, 37);
        Assert.That(F16Compute.RelError(f16.Y, f32.Y), Is.LessThan(F16RelTol), "y");
        Assert.That(F16Compute.RelError(f16.Dx, f32.Dx), Is.LessThan(F16RelTol), "dx");
        Assert.That(f16.Dw, Is.EqualTo(f32.Dw), "dW = dYᵀ·x is computed in fp32 whatever the compute dtype");
        if (F16Compute.Native) Assert.That(f16.Y, Is.Not.EqualTo(f32.Y), "fp16 compute ran (results differ from fp32 in the last bits)");
    }

    [Test]
    public void F16_DecodeShapedProductsStayF32()
    {
        var f32 = Run(NqComputeType.F32, 3);
        var f16 = Run(NqComputeType.F16, 3);
        Assert.That(f16.Y, Is.EqualTo(f32.Y), "m <= 4 streams W in fp32 (memory-bound; fp16 would convert all of W first)");
    }

    [Test]
    public void ComputeDtype_RejectsInt8()
    {
        using var layer = new Linear(8, 4, bias: false, new Random(1));
        Assert.That(() => layer.ComputeDtype = NqComputeType.Int8, Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [TestCase(QuantType.Nf4, NqComputeType.F16, NqComputeType.F16)]
    [TestCase(QuantType.Nf4, NqComputeType.F32, NqComputeType.F32)]
    [TestCase(QuantType.Nf4, NqComputeType.Int8, NqComputeType.F16)]
    [TestCase(QuantType.Int8, NqComputeType.F16, NqComputeType.F32)]
    [TestCase(QuantType.None, NqComputeType.F16, NqComputeType.F32)]
    public void TiedFullPrecisionHead_TakesTheFourBitComputeDtype(QuantType quant, NqComputeType asked, NqComputeType expected)
    {
        var config = new Gpt2Config(VocabSize: 96, NPositions: 16, NEmbd: 64, NLayer: 1, NHead: 2);
        using var lm = new Gpt2LMHeadModel(config, new RandomWeights(3, quant: new QuantConfig(quant, ComputeDtype: asked)));
        var head = (Linear)lm.NamedModules().Single(m => m.Name == "lm_head").Module;
        Assert.That(head.ComputeDtype, Is.EqualTo(expected));
        head.Weight.RequiresGrad = false;  // (as PrepareForKbitTraining leaves it)
        Assert.That(head.LossCompute, Is.EqualTo(asked == NqComputeType.Int8 ? NqComputeType.Int8 : expected),
                    "an int8 model's fused training loss computes in int8");
    }
}
