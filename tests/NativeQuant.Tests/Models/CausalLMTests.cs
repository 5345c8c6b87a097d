using NativeQuant.Autograd;
using NativeQuant.Data;
using NativeQuant.Interop;
using NativeQuant.Models;
using NativeQuant.Models.Llama;
using NativeQuant.Peft;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Models;

public class CausalLMTests
{
    private const int Vocab = 24;

    private static LlamaForCausalLM TinyModel() =>
        new(new LlamaConfig(Vocab, HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 2, NumAttentionHeads: 4, NumKeyValueHeads: 2,
                            MaxPositionEmbeddings: 32), new RandomWeights(11, std: 0.2f));

    /// <summary>Two answer-only examples of different lengths, so the batch is padded and most positions are ignored.</summary>
    private static Batch AnswerOnlyBatch()
    {
        int[] a = [1, 5, 9, 3, 7, 2, 14, 15], b = [1, 4, 8, 12, 16, 20];
        var ex = new[]
        {
            new TokenizedExample(a, a.Select((t, i) => i >= 6 ? t : TokenizedExample.IgnoreIndex).ToArray()),
            new TokenizedExample(b, b.Select((t, i) => i == 5 ? t : TokenizedExample.IgnoreIndex).ToArray()),
        };
        return Batch.Collate(ex, padId: 0);
    }

    /// <summary>LoRA gradients after backward of <paramref name="loss"/>, then cleared.</summary>
    private static (float Loss, float[][] Grads) LossAndGrads(PeftModel peft, Func<Tensor> loss)
    {
        using var scope = new TensorScope();
        var l = loss();
        l.Backward();
        var lora = peft.NamedParameters().Where(p => p.Parameter.RequiresGrad).Select(p => p.Parameter).ToList();
        var grads = lora.Select(p => p.Grad!.Data.ToArray()).ToArray();
        peft.ZeroGrad();
        return (l.Item(), grads);
    }

    [Test]
    public void ForwardAtSupervisedPositions_GivesTheFullHeadsLossAndLoraGradients()
    {
        using var model = TinyModel();
        using var peft = PeftModel.GetPeftModel(model, new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = new[] { "q_proj", "v_proj", "down_proj" }, Seed = 5 });
        // lora_B starts at zero, which would leave lora_A's gradient zero in both versions; make it non-trivial.
        var rng = new Random(3);
        foreach (var (name, p) in peft.NamedParameters().Where(p => p.Name.Contains("lora_B")))
            foreach (ref float w in p.Data) w = (float)(rng.NextDouble() - 0.5) * 0.2f;
        peft.Train();
        var batch = AnswerOnlyBatch();

        var full = LossAndGrads(peft, () =>
            Functional.CrossEntropy(model.Forward(batch.InputIdsTensor()).Reshape(-1, Vocab), batch.NextTokenTargets().Reshape(-1)));
        var (positions, targets) = batch.SupervisedNextTokens();
        Assert.That(positions.AsSpan<int>().ToArray(), Is.EqualTo(new[] { 5, 6, 8 + 4 }), "next-token targets of a[6], a[7], b[5]");
        var selected = LossAndGrads(peft, () => Functional.CrossEntropy(model.Forward(batch.InputIdsTensor(), positions), targets));

        // Same operations on the same rows; only GEMM blocking over a different row count may round differently
        // (a few fp32 ulps of the loss).
        Assert.That(selected.Loss, Is.EqualTo(full.Loss).Within(1e-6f));
        Assert.That(full.Grads, Has.Length.EqualTo(12));
        for (int i = 0; i < full.Grads.Length; i++)
        {
            float scale = full.Grads[i].Max(MathF.Abs);
            Assert.That(scale, Is.GreaterThan(0f), $"gradient {i} is non-trivial");
            for (int j = 0; j < full.Grads[i].Length; j++)
                Assert.That(selected.Grads[i][j], Is.EqualTo(full.Grads[i][j]).Within(1e-5f * scale), $"gradient {i}[{j}]");
        }
    }

    [Test]
    public void LastPositionOnly_IsTheLastRowOfTheFullLogits()
    {
        using var model = TinyModel();
        using var scope = new TensorScope();
        using var noGrad = GradMode.NoGrad();
        var ids = Tensor.FromArray(new[] { 1, 5, 9, 3, 1, 4, 8, 12 }, 2, 4);
        var full = model.Forward(ids).Data.ToArray();
        var last = model.Forward(ids, lastPositionOnly: true);
        Assert.That(last.Shape.ToArray(), Is.EqualTo(new[] { 2, 1, Vocab }));
        for (int b = 0; b < 2; b++)
            for (int v = 0; v < Vocab; v++)
                Assert.That(last.Data[b * Vocab + v], Is.EqualTo(full[(b * 4 + 3) * Vocab + v]).Within(1e-5f));
    }

    /// <summary>A no-grad forward frees each block's intermediates as the block returns, so its native peak stays
    /// near one block's activations; with a tape every block's intermediates stay alive for backward. Eight blocks:
    /// the tape's peak must be several times the no-grad one (about 8x minus what both share).</summary>
    [Test]
    public void NoGradForwardFreesEachBlocksIntermediates()
    {
        using var model = new LlamaForCausalLM(
            new LlamaConfig(Vocab, HiddenSize: 64, IntermediateSize: 256, NumHiddenLayers: 8, NumAttentionHeads: 4,
                            NumKeyValueHeads: 2, MaxPositionEmbeddings: 64), new RandomWeights(5, std: 0.2f));
        var tokens = Enumerable.Range(0, 4 * 64).Select(i => (i * 7 + 3) % Vocab).ToArray();
        using var ids = Tensor.FromArray(tokens, 4, 64);

        long PeakDelta(bool tape)
        {
            using var scope = new TensorScope();
            long before = (long)NativeRuntime.MemoryStats.LiveBytes;
            NativeRuntime.ResetPeak();
            if (tape) model.HiddenStates(ids);
            else using (GradMode.NoGrad()) model.HiddenStates(ids);
            return (long)NativeRuntime.MemoryStats.PeakBytes - before;
        }

        long noGrad = PeakDelta(tape: false), withTape = PeakDelta(tape: true);
        Assert.That(noGrad, Is.LessThan(withTape / 3), $"no-grad peak {noGrad} B vs taped {withTape} B");
    }
}
