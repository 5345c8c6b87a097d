using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Peft;
using NativeQuant.Quantization;
using NativeQuant.Tensors;
using NativeQuant.Tests.Autograd;
using NUnit.Framework;

namespace NativeQuant.Tests.NN;

/// <summary>Linear4bit with ComputeDtype F16 (bitsandbytes' bnb_4bit_compute_dtype=float16) and its plumbing.</summary>
public class Linear4bitComputeDtypeTests
{
    // nq_quant4_gemm's documented bound for fp16 compute vs exact products (~1.2e-3 measured: fp16 unit roundoff
    // 2^-11 over 64-long fp16 sums); F32 itself is ~1e-7 from exact, so the bound holds against F32 too.
    private const double F16RelTol = 3e-3;
    // nq_quant4_gemm's int8 compute: each operand rounded to int8 against its row's / column's absmax, ~1% relative
    // on Gaussian data, 3e-2 in the native tests.
    private const double Int8RelTol = 3e-2;

    private static Linear4bit Layer(int outF, int inF, NqComputeType compute, int seed = 1)
    {
        using var w = TensorScope.Unscoped(() => Tensor.RandN([outF, inF], new Random(seed), 0.05f));
        return new Linear4bit(w, null, NqQuant4Type.Nf4, 64, doubleQuant: true) { ComputeDtype = compute };
    }

    [Test]
    public void Forward_F16_IsWithinTheToleranceOfF32()
    {
        using var scope = new TensorScope();
        using var f32 = Layer(200, 320, NqComputeType.F32);
        using var f16 = Layer(200, 320, NqComputeType.F16);
        var x = Tensor.RandN([2, 7, 320], new Random(4));
        var a = f32.Forward(x).ToArray();
        var b = f16.Forward(x).ToArray();
        Assert.That(F16Compute.RelError(b, a), Is.LessThan(F16RelTol));
        if (F16Compute.Native) Assert.That(b, Is.Not.EqualTo(a), "fp16 compute ran (results differ from fp32 in the last bits)");
    }

    [Test]
    public void InputGradient_F16_IsWithinTheToleranceOfF32()
    {
        using var scope = new TensorScope();
        using var f32 = Layer(200, 320, NqComputeType.F32);
        using var f16 = Layer(200, 320, NqComputeType.F16);
        var grads = new List<float[]>();
        foreach (var layer in new[] { f32, f16 })
        {
            var x = Tensor.RandN([9, 320], new Random(5));
            x.RequiresGrad = true;
            layer.Forward(x).Backward(Tensor.RandN([9, 200], new Random(6)));
            grads.Add(x.Grad!.ToArray());
        }
        Assert.That(F16Compute.RelError(grads[1], grads[0]), Is.LessThan(F16RelTol));
    }

    /// <summary>LoRA gradients of a layer on an F16 base, passing backward through a second frozen F16 layer, vs
    /// central differences. The fp16 forward is step-wise at ~1e-3 relative (a perturbation re-rounds every
    /// product: loss noise ~1e-2 here), so the function is kept linear in each LoRA weight (no activation between
    /// the layers) and the step is 1: central differences are then exact up to that noise / 2.</summary>
    [Test]
    public void LoraGradients_ThroughF16Layers_MatchFiniteDifferences()
    {
        var config = new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = new[] { "q_proj" }, InitLoraWeights = LoraInit.Random, Seed = 3 };
        using var lora = new LoraLinear(Layer(64, 64, NqComputeType.F16, 10), config, new Random(20), 0);
        using var frozen = Layer(48, 64, NqComputeType.F16, 11);
        using var xScope = new TensorScope();
        var x = Tensor.RandN([2, 3, 64], new Random(5));
        GradCheck.Check(_ => frozen.Forward(lora.Forward(x)), eps: 1f, atol: 1e-2, rtol: 2e-2, lora.LoraA, lora.LoraB);
    }

    /// <summary>Int8 compute (nq_quant4_gemm's SwitchBack-style products): forward and input gradient within the
    /// int8 bound of F32 and really computed in int8 (not bit-equal to F32).</summary>
    [Test]
    public void Int8_ForwardAndInputGradient_AreWithinTheToleranceOfF32()
    {
        using var scope = new TensorScope();
        using var f32 = Layer(200, 320, NqComputeType.F32);
        using var i8 = Layer(200, 320, NqComputeType.Int8);
        var outputs = new List<float[]>();
        var grads = new List<float[]>();
        foreach (var layer in new[] { f32, i8 })
        {
            var x = Tensor.RandN([9, 320], new Random(5));
            x.RequiresGrad = true;
            var y = layer.Forward(x);
            outputs.Add(y.ToArray());
            y.Backward(Tensor.RandN([9, 200], new Random(6)));
            grads.Add(x.Grad!.ToArray());
        }
        Assert.That(F16Compute.RelError(outputs[1], outputs[0]), Is.LessThan(Int8RelTol));
        Assert.That(F16Compute.RelError(grads[1], grads[0]), Is.LessThan(Int8RelTol));
        Assert.That(outputs[1], Is.Not.EqualTo(outputs[0]), "int8 compute ran");
    }

    /// <summary>LoRA gradients of a layer on an Int8 base, passing backward through a second frozen Int8 layer, vs
    /// the same on F32 layers (whose gradients GradCheck verifies above for F16 and elsewhere for F32). Central
    /// differences do not work here: a perturbation moves a row's absmax and re-rounds every int8 element. Two int8
    /// products in a row: twice the single product's 3e-2.</summary>
    [Test]
    public void LoraGradients_ThroughInt8Layers_MatchThoseThroughF32Layers()
    {
        var grads = new List<float[]>();
        foreach (var compute in new[] { NqComputeType.F32, NqComputeType.Int8 })
        {
            var config = new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = new[] { "q_proj" }, InitLoraWeights = LoraInit.Random, Seed = 3 };
            using var lora = new LoraLinear(Layer(64, 64, compute, 10), config, new Random(20), 0);
            using var frozen = Layer(48, 64, compute, 11);
            using var scope = new TensorScope();
            var x = Tensor.RandN([2, 3, 64], new Random(5));
            frozen.Forward(lora.Forward(x)).Backward(Tensor.RandN([2, 3, 48], new Random(6)));
            grads.Add(lora.LoraA.Grad!.ToArray().Concat(lora.LoraB.Grad!.ToArray()).ToArray());
        }
        Assert.That(F16Compute.RelError(grads[1], grads[0]), Is.LessThan(2 * Int8RelTol));
        Assert.That(grads[1], Is.Not.EqualTo(grads[0]), "int8 compute ran");
    }

    [Test]
    public void ComputeDtype_AcceptsEveryNativeComputeType()
    {
        using var layer = Layer(8, 64, NqComputeType.F32);
        foreach (var c in new[] { NqComputeType.F16, NqComputeType.Bf16, NqComputeType.Int8, NqComputeType.F32 })
        {
            layer.ComputeDtype = c;
            Assert.That(layer.ComputeDtype, Is.EqualTo(c));
        }
        Assert.That(() => layer.ComputeDtype = (NqComputeType)7, Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void QuantConfig_ParsesAndPassesTheComputeDtype()
    {
        Assert.That(QuantConfig.ParseComputeDtype("f16"), Is.EqualTo(NqComputeType.F16));
        Assert.That(QuantConfig.ParseComputeDtype("float32"), Is.EqualTo(NqComputeType.F32));
        Assert.That(QuantConfig.ParseComputeDtype("int8"), Is.EqualTo(NqComputeType.Int8));
        Assert.That(() => QuantConfig.ParseComputeDtype("bf8"), Throws.ArgumentException.With.Message.Contains("f32, f16 or int8"));
        Assert.That(new QuantConfig().Compute, Is.EqualTo(NqComputeType.F32));
        using var w = Tensor.RandN([8, 64], new Random(1));
        using var layer = (Linear4bit)WeightFactory.QuantizedLayer(w, null, new QuantConfig(QuantType.Fp4, ComputeDtype: NqComputeType.F16));
        Assert.That(layer.ComputeDtype, Is.EqualTo(NqComputeType.F16));
        var bnb = BnbQuantizationConfig.From(new QuantConfig(QuantType.Nf4, ComputeDtype: NqComputeType.F16));
        Assert.That(bnb.ToJson()["bnb_4bit_compute_dtype"], Is.EqualTo("float16"));
    }
}
