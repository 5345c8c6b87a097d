using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Models;
using NativeQuant.Models.Gpt2;
using NativeQuant.NN;
using NativeQuant.Peft;
using NativeQuant.Tensors;
using NativeQuant.Tests.NN;
using NUnit.Framework;
using static NativeQuant.Tests.Autograd.GradCheck;

namespace NativeQuant.Tests.Autograd;

// The fused head + cross-entropy against the unfused composition CrossEntropy(Linear(h, W), targets), and its
// backward against finite differences.
public partial class FunctionalGradTests
{
    private Tensor Targets(params int[] ids)
    {
        var t = TensorScope.Unscoped(() => Tensor.FromArray(ids, ids.Length));
        _leaves.Add(t);
        return t;
    }

    [Test]
    public void LinearCrossEntropy()
    {
        var targets = Targets(3, -100, 0, 6, 6);
        Check(x => Functional.LinearCrossEntropy(x[0], x[1], targets), L(5, 4), L(7, 4));
    }

    // V large enough that the rows run in several chunks (HeadChunkBytes / (V * 4) = 8 rows here), with ignored
    // rows in both chunks and an upstream gradient other than 1.
    [TestCase(7, 1)]
    [TestCase(1_608_224, 20)]
    public void LinearCrossEntropy_MatchesUnfusedComposition(int vocab, int rows)
    {
        var h = L(rows, 6);
        var w = L(vocab, 6);
        var ids = Enumerable.Range(0, rows).Select(i => i % 7 == 2 ? -100 : _rng.Next(vocab)).ToArray();
        var targets = Targets(ids);
        var (fusedLoss, fusedGh, fusedGw) = LossAndGrads(() => Functional.LinearCrossEntropy(h, w, targets), h, w);
        var (loss, gh, gw) = LossAndGrads(() => Functional.CrossEntropy(Functional.Linear(h, w), targets), h, w);
        Assert.That(fusedLoss, Is.EqualTo(loss).Within(1e-5 * Math.Abs(loss)));
        Assert.That(fusedGh, Is.EqualTo(gh).Within(1e-6f));
        Assert.That(fusedGw, Is.EqualTo(gw).Within(1e-6f));
    }

    // Loss and dL/dhidden of a frozen head's fused loss under `compute`, from `packed` (null: unpacked).
    private static (float Loss, float[] GradHidden) HeadLossAndGrad(Tensor h, Linear head, Tensor targets, NqComputeType compute,
                                                                    NativeBuffer? packed)
    {
        h.Grad?.Dispose();
        h.Grad = null;
        using var scope = new TensorScope();
        var y = Functional.LinearCrossEntropy(h, head.Weight, targets, compute: compute, packedWeight: packed);
        Functional.Scale(y, 0.75f).Backward();
        return (y.Item(), h.Grad!.ToArray());
    }

    private static (float Loss, float[] GradA, float[] GradB) LossAndGrads(Func<Tensor> loss, Tensor a, Tensor b)
    {
        foreach (var t in new[] { a, b }) { t.Grad?.Dispose(); t.Grad = null; }
        using var scope = new TensorScope();
        var y = loss();
        Functional.Scale(y, 0.75f).Backward();
        return (y.Item(), a.Grad!.ToArray(), b.Grad!.ToArray());
    }

    // NQ_COMPUTE_F16 for the logits and dL/dhidden products vs F32. Each product is within nq_gemm_f32_compute's
    // relative bound eps = 3e-3 (~1.2e-3 measured). The loss moves by the logits' absolute error, ~eps * sigma with
    // sigma the logits' spread (~2.8 here, a trained head's order); dL/dhidden gets its own product's eps plus the
    // softmax's relative change, again ~eps * sigma: bound eps * (1 + sigma) ~ 1.2e-2 for both.
    private const double HeadF16RelTol = 1.2e-2;

    [Test]
    public void LinearCrossEntropy_F16Compute_MatchesF32()
    {
        var h = L(40, 200);
        var w = TensorScope.Unscoped(() => Tensor.RandN([500, 200], _rng, 0.2f));  // logits ~ N(0, 2.8^2)
        w.RequiresGrad = true;
        _leaves.Add(w);
        var targets = Targets(Enumerable.Range(0, 40).Select(i => i % 9 == 4 ? -100 : _rng.Next(500)).ToArray());
        var (loss, gh, _) = LossAndGrads(() => Functional.LinearCrossEntropy(h, w, targets), h, w);
        var (loss16, gh16, _) = LossAndGrads(() => Functional.LinearCrossEntropy(h, w, targets, compute: NqComputeType.F16), h, w);
        double lossErr = Math.Abs(loss16 - loss) / Math.Abs(loss), ghErr = F16Compute.RelError(gh16, gh);
        TestContext.Out.WriteLine($"F16 vs F32: loss {lossErr:E2}, dL/dhidden {ghErr:E2}");
        Assert.That(lossErr, Is.LessThan(HeadF16RelTol), $"loss {loss16} vs {loss}");
        Assert.That(ghErr, Is.LessThan(HeadF16RelTol), "dL/dhidden");
        if (F16Compute.Native)
            Assert.That(gh16, Is.Not.EqualTo(gh), "fp16 compute ran (results differ from fp32 in the last bits)");
    }

    // NQ_COMPUTE_INT8 for a frozen head vs F32: logits within half a quantization step of x's and W's rows (relative
    // ~1/254 each, ~1e-2 of the logits' spread sigma ~2.8 at the worst row), the softmax weights within half a step
    // of their block's largest (1/508); measured 4.6e-4 (loss) and 7.9e-3 (dL/dhidden), bound 3e-2 for both.
    private const double HeadInt8RelTol = 3e-2;

    [Test]
    public void LinearCrossEntropy_Int8Compute_MatchesF32_ForAFrozenHead()
    {
        var h = L(40, 200);
        var w = TensorScope.Unscoped(() => Tensor.RandN([500, 200], _rng, 0.2f));
        _leaves.Add(w);
        var targets = Targets(Enumerable.Range(0, 40).Select(i => i % 9 == 4 ? -100 : _rng.Next(500)).ToArray());
        var (loss, gh, _) = LossAndGrads(() => Functional.LinearCrossEntropy(h, w, targets), h, h);  // (w gets no gradient)
        var (loss8, gh8, _) = LossAndGrads(() => Functional.LinearCrossEntropy(h, w, targets, compute: NqComputeType.Int8), h, h);
        double lossErr = Math.Abs(loss8 - loss) / Math.Abs(loss), ghErr = F16Compute.RelError(gh8, gh);
        TestContext.Out.WriteLine($"Int8 vs F32: loss {lossErr:E2}, dL/dhidden {ghErr:E2}");
        Assert.That(lossErr, Is.LessThan(HeadInt8RelTol), $"loss {loss8} vs {loss}");
        Assert.That(ghErr, Is.LessThan(HeadInt8RelTol), "dL/dhidden");
        Assert.That(gh8, Is.Not.EqualTo(gh), "int8 products ran");
        w.RequiresGrad = true;
        var e = Assert.Throws<ArgumentException>(() => LossAndGrads(() => Functional.LinearCrossEntropy(h, w, targets, compute: NqComputeType.Int8), h, w));
        Assert.That(e!.Message, Does.Contain("frozen"));
    }

    // Linear.LossComputeDtype = Int8: a frozen head packs its int8 operands (half the fp32 weight's bytes on VNNI) and
    // the packed copy gives the unpacked results bit for bit; a trainable weight falls back to ComputeDtype.
    [Test]
    public void LinearLossComputeInt8_PacksAndMatchesUnpackedBitwise()
    {
        using var head = new Linear(200, 500, bias: false, new Random(7)) { ComputeDtype = NqComputeType.F16, LossComputeDtype = NqComputeType.Int8 };
        Assert.That(head.LossCompute, Is.EqualTo(NqComputeType.F16), "trainable: no int8 loss");
        head.Weight.RequiresGrad = false;
        Assert.That(head.LossCompute, Is.EqualTo(NqComputeType.Int8));
        var pack = head.PackedHead();
        Assert.That(pack, Is.Not.Null, "every supported CPU (AVX2 and up) has an int8 kernel");
        Assert.That(head.PackedHeadCompute, Is.EqualTo(NqComputeType.Int8));
        Assert.That(head.PackedHeadBytes, Is.GreaterThanOrEqualTo(2L * 500 * 200), "two int8 layouts");
        var h = L(40, 200);
        var targets = Targets(Enumerable.Range(0, 40).Select(i => i % 9 == 4 ? -100 : _rng.Next(500)).ToArray());
        (float, float[]) Run(NativeBuffer? packed) => HeadLossAndGrad(h, head, targets, NqComputeType.Int8, packed);
        var (loss, gh) = Run(null);
        var (packedLoss, packedGh) = Run(pack);
        Assert.That(packedLoss, Is.EqualTo(loss));
        Assert.That(packedGh, Is.EqualTo(gh));
        head.LossComputeDtype = null;
        Assert.That(head.PackedHead(), F16Compute.Native ? Is.Not.SameAs(pack) : Is.Null, "repacked for F16, or none");
    }

    // A frozen F16 head's packed copy (Linear.PackedHead) gives the unpacked loss and dL/dhidden bit for bit; it is
    // dropped when the weight becomes trainable or is reloaded, and a copy of another head is refused.
    [Test]
    public void LinearPackedHead_MatchesUnpackedBitwise_AndIsDroppedWhenStale()
    {
        using var head = new Linear(200, 500, bias: false, new Random(5)) { ComputeDtype = NqComputeType.F16 };
        head.Weight.RequiresGrad = false;
        var pack = head.PackedHead();
        if (!F16Compute.Native)
        {
            Assert.That(pack, Is.Null, "packing applies only where fp16 compute is native");
            return;
        }
        Assert.That(pack, Is.Not.Null);
        Assert.That(head.PackedHeadBytes, Is.GreaterThanOrEqualTo(2L * 2 * 500 * 200), "two fp16 layouts");
        Assert.That(head.PackedHead(), Is.SameAs(pack), "built once");
        var h = L(40, 200);
        var targets = Targets(Enumerable.Range(0, 40).Select(i => i % 9 == 4 ? -100 : _rng.Next(500)).ToArray());
        (float, float[]) Run(NativeBuffer? packed) => HeadLossAndGrad(h, head, targets, NqComputeType.F16, packed);
        var (loss, gh) = Run(null);
        var (packedLoss, packedGh) = Run(pack);
        Assert.That(packedLoss, Is.EqualTo(loss));
        Assert.That(packedGh, Is.EqualTo(gh));

        using var other = new Linear(200, 499, bias: false, new Random(6)) { ComputeDtype = NqComputeType.F16 };
        other.Weight.RequiresGrad = false;
        var wrong = Assert.Throws<NativeQuantException>(() => Run(other.PackedHead()));
        Assert.That(wrong!.Message, Does.Contain("w_packed"));

        head.Weight.RequiresGrad = true;
        Assert.That(head.PackedHead(), Is.Null, "a trainable weight is read as it is");
        Assert.That(head.PackedHeadBytes, Is.Zero);
        head.Weight.RequiresGrad = false;
        Assert.That(head.PackedHead(), Is.Not.Null);
        head.LoadStateDict(head.StateDict());
        Assert.That(head.PackedHeadBytes, Is.Zero, "reloaded weights drop the copy");
        head.PackHead = false;
        Assert.That(head.PackedHead(), Is.Null, "opted out");
    }

    [Test]
    public void LinearCrossEntropy_AllTargetsIgnored_GivesZeroLossAndGradient()
    {
        var h = L(3, 4);
        var w = L(5, 4);
        var (loss, gh, gw) = LossAndGrads(() => Functional.LinearCrossEntropy(h, w, Targets(-100, -100, -100)), h, w);
        Assert.That(loss, Is.EqualTo(0f));
        Assert.That(gh, Is.All.EqualTo(0f));
        Assert.That(gw, Is.All.EqualTo(0f));
    }

    [Test]
    public void LinearCrossEntropy_TargetOutsideVocabulary_IsAnError()
    {
        using var scope = new TensorScope();
        Assert.Throws<ArgumentOutOfRangeException>(() => Functional.LinearCrossEntropy(L(2, 4), L(5, 4), Targets(1, 5)));
    }

    [Test]
    public void QuantizedLinearCrossEntropy_MatchesUnfusedComposition()
    {
        var rng = new Random(9);
        using var w = TensorScope.Unscoped(() => Tensor.RandN([96, 64], rng, 0.1f));
        using var head = new Linear4bit(w, null, NqQuant4Type.Nf4, 64, doubleQuant: false);
        var targets = Targets(5, 90, -100, 0);
        float[] Grad(Func<Tensor, Tensor> loss, out float value)
        {
            var h = TensorScope.Unscoped(() => Tensor.RandN([4, 64], new Random(4)));
            h.RequiresGrad = true;
            _leaves.Add(h);
            using var scope = new TensorScope();
            var y = loss(h);
            y.Backward();
            value = y.Item();
            return h.Grad!.ToArray();
        }
        var fused = Grad(h => Functional.QuantizedLinearCrossEntropy(h, head, targets), out float fusedLoss);
        var plain = Grad(h => Functional.CrossEntropy(head.Forward(h), targets), out float loss);
        Assert.That(fusedLoss, Is.EqualTo(loss).Within(1e-5f * Math.Abs(loss)));
        Assert.That(fused, Is.EqualTo(plain).Within(1e-6f));
    }

    // CausalLM.Loss (fused head) gives the LoRA weights the gradients of CrossEntropy(Forward(ids, positions)).
    [TestCase(QuantType.None, false)]
    [TestCase(QuantType.Nf4, true)]
    public void CausalLmLoss_MatchesForwardThenCrossEntropy(QuantType quant, bool quantizeHead)
    {
        var config = new Gpt2Config(VocabSize: 97, NPositions: 16, NEmbd: 32, NLayer: 2, NHead: 2);
        using var lm = new Gpt2LMHeadModel(config, new RandomWeights(3, quant: new QuantConfig(quant) { QuantizeHead = quantizeHead }));
        KbitTraining.PrepareForKbitTraining(lm);
        using var peft = PeftModel.GetPeftModel(lm, new LoraConfig
        {
            R = 4, LoraAlpha = 8, InitLoraWeights = LoraInit.Random, TargetModules = TargetModules.FromNames(["c_attn"]),
        });
        lm.Train();
        var trainable = peft.Parameters().Where(p => p.RequiresGrad).ToList();
        var ids = TensorScope.Unscoped(() => Tensor.FromArray(Enumerable.Range(0, 12).Select(i => (i * 37) % 97).ToArray(), 1, 12));
        _leaves.Add(ids);
        var positions = Targets(Enumerable.Range(0, 11).ToArray());
        var targets = Targets(Enumerable.Range(1, 11).Select(i => i == 4 ? -100 : (i * 37) % 97).ToArray());
        (float, float[][]) Run(Func<Tensor> loss)
        {
            foreach (var p in trainable) { p.Grad?.Dispose(); p.Grad = null; }
            using var scope = new TensorScope();
            var y = loss();
            y.Backward();
            return (y.Item(), trainable.Select(p => p.Grad!.ToArray()).ToArray());
        }
        var (fusedLoss, fused) = Run(() => lm.Loss(ids, positions, targets));
        var (loss, plain) = Run(() => Functional.CrossEntropy(lm.Forward(ids, positions), targets));
        Assert.That(fusedLoss, Is.EqualTo(loss).Within(1e-5f * Math.Abs(loss)));
        for (int i = 0; i < fused.Length; i++) Assert.That(fused[i], Is.EqualTo(plain[i]).Within(1e-5f), $"parameter {i}");
    }
}
