using NativeQuant.Interop;
using NativeQuant.Models;
using NativeQuant.Models.Llama;
using NativeQuant.NN;
using NativeQuant.Tensors;
using NativeQuant.Training;
using NUnit.Framework;

namespace NativeQuant.Tests.Training;

public class MemoryReportTests
{
    /// <summary>Weights by format count every resident byte once: with a quantized tied head the fp32 embedding is
    /// reported once and the head's NF4 copy (not a registered child) is reported as nf4, by its exact size.</summary>
    [Test]
    public void TiedQuantizedHeadCopyIsCounted()
    {
        const int vocab = 256, hidden = 64;
        LlamaForCausalLM Build(bool quantizeHead) => new(
            new LlamaConfig(vocab, hidden, IntermediateSize: 128, NumHiddenLayers: 1, NumAttentionHeads: 4, NumKeyValueHeads: 2,
                            MaxPositionEmbeddings: 32, TieWordEmbeddings: true),
            new RandomWeights(3, quant: new QuantConfig(QuantType.Nf4, QuantizeHead: quantizeHead)));
        using var plain = Build(quantizeHead: false);
        using var withHead = Build(quantizeHead: true);
        var a = MemoryReport.Capture(plain, null).WeightBytesByFormat;
        var b = MemoryReport.Capture(withHead, null).WeightBytesByFormat;

        // The head's NF4 copy: packed codes (two per byte) + one fp32 absmax per 64-element block.
        long headNf4 = (long)vocab * hidden / 2 + (long)vocab * hidden / 64 * sizeof(float);
        Assert.That(b["nf4"] - a["nf4"], Is.EqualTo(headNf4));
        Assert.That(b["float32"], Is.EqualTo(a["float32"]), "the embedding stays fp32 and is counted once");
    }

    /// <summary>A frozen fp32 head computing in F16 gets its packed copy on first use of the fused loss (where fp16
    /// compute is native); the report lists it by its exact size, and QuantConfig.PackHead = false leaves it out.</summary>
    [TestCase(true)]
    [TestCase(false)]
    public unsafe void PackedHeadIsCountedAndCanBeTurnedOff(bool packHead)
    {
        const int vocab = 256, hidden = 64;
        using var lm = new LlamaForCausalLM(
            new LlamaConfig(vocab, hidden, IntermediateSize: 128, NumHiddenLayers: 1, NumAttentionHeads: 4, NumKeyValueHeads: 2,
                            MaxPositionEmbeddings: 32, TieWordEmbeddings: true),
            new RandomWeights(3, quant: new QuantConfig(QuantType.Nf4, ComputeDtype: NqComputeType.F16, PackHead: packHead)));
        var head = (Linear)lm.NamedModules().Single(m => m.Item1 == "lm_head").Item2;
        Assert.That(head.PackHead, Is.EqualTo(packHead));
        lm.RequiresGrad(false);  // frozen, as PrepareForKbitTraining leaves it
        using (new TensorScope())
        {
            var ids = Tensor.FromArray(Enumerable.Range(0, 8).Select(i => i * 7 % vocab).ToArray(), 1, 8);
            var positions = Tensor.FromArray(Enumerable.Range(0, 7).ToArray(), 7);
            var targets = Tensor.FromArray(Enumerable.Range(1, 7).Select(i => i * 7 % vocab).ToArray(), 7);
            lm.Loss(ids, positions, targets);
        }
        var report = MemoryReport.Capture(lm, null).WeightBytesByFormat;
        ulong bytes;
        Nq.Check(NativeMethods.nq_linear_cross_entropy_pack_bytes(vocab, hidden, NqComputeType.F16, &bytes));
        if (packHead && bytes > 0)
            Assert.That(report["f16-head-pack"], Is.EqualTo((long)bytes));
        else
            Assert.That(report.ContainsKey("f16-head-pack"), Is.False);
    }
}
