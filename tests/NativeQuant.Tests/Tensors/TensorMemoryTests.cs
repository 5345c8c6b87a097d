using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Models;
using NativeQuant.Models.Llama;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Tensors;

public class TensorMemoryTests
{
    private static unsafe ulong LiveBytes()
    {
        NqMemoryStats s;
        Nq.Check(NativeMethods.nq_memory_stats_get(&s));
        return s.LiveBytes;
    }

    [Test]
    public void ScopeFreesItsTensors_KeepMovesOut()
    {
        ulong before = LiveBytes();
        Tensor kept;
        using (var scope = new TensorScope())
        {
            _ = Tensor.Zeros([1000]);
            kept = scope.Keep(Tensor.Full([1000], 1f));
        }
        Assert.That(LiveBytes(), Is.EqualTo(before + 4000));
        kept.Dispose();
        Assert.That(LiveBytes(), Is.EqualTo(before));
    }

    [Test]
    public void HundredTrainingSteps_LeakNothing()
    {
        var config = new LlamaConfig(VocabSize: 64, HiddenSize: 32, IntermediateSize: 48, NumHiddenLayers: 2, NumAttentionHeads: 4,
                                     NumKeyValueHeads: 2, MaxPositionEmbeddings: 16);
        using var model = new LlamaForCausalLM(config, new RandomWeights(seed: 1)) { GradientCheckpointing = true };
        var rng = new Random(2);
        var ids = Enumerable.Range(0, 2 * 9).Select(_ => rng.Next(64)).ToArray();
        ulong before = 0;
        for (int step = 0; step < 100; step++)
        {
            using (var scope = new TensorScope())
            {
                var input = Tensor.FromSpan<int>(ids.Where((_, i) => i % 9 != 8).ToArray(), [2, 8], DType.Int32);
                var targets = Tensor.FromSpan<int>(ids.Where((_, i) => i % 9 != 0).ToArray(), [16], DType.Int32);
                var logits = model.Forward(input).Reshape(16, 64);
                Functional.CrossEntropy(logits, targets).Backward();
            }
            model.ZeroGrad();
            if (step == 0) before = LiveBytes();  // after the first step: the lazily grown native scratch is in place
        }
        Assert.That(LiveBytes(), Is.EqualTo(before));
    }
}

