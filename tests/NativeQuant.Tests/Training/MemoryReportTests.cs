using NativeQuant.Models;
using NativeQuant.Models.Llama;
using NativeQuant.NN;
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
}
