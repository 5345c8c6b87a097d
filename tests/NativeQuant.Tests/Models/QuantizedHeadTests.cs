using NativeQuant.Autograd;
using NativeQuant.Generation;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Peft;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Models;

/// <summary>QuantConfig.QuantizeHead: the output head in the body's format, tied (stories15M, tiny GPT-2) or not
/// (tiny LLaMA).</summary>
public class QuantizedHeadTests
{
    private static QuantConfig Nf4(bool head) => new(QuantType.Nf4, DoubleQuant: true, QuantizeHead: head);

    private static float[] Logits(CausalLM model, int[] ids)
    {
        using var scope = new TensorScope();
        using var noGrad = GradMode.NoGrad();
        return model.Forward(Tensor.FromSpan<int>(ids, [1, ids.Length], DType.Int32)).Data.ToArray();
    }

    /// <summary>NF4 of the embedding moves logits by ~15% of their spread (rms) — a format error, not a bug —
    /// while the predicted token stays the same almost everywhere.</summary>
    [Test]
    public void Stories15M_Nf4Head_LogitsCloseToTheFp32Head()
    {
        var ids = ReferenceDump.Load("stories15m").InputIds;
        using var fp32Head = CausalLM.Load("stories15M", Nf4(false));
        using var nf4Head = CausalLM.Load("stories15M", Nf4(true));
        float[] a = Logits(fp32Head, ids), b = Logits(nf4Head, ids);
        int vocab = fp32Head.VocabSize, positions = ids.Length, sameTop = 0;
        double sumSq = 0, refSq = 0, mean = a.Average();
        for (int i = 0; i < a.Length; i++)
        {
            sumSq += (a[i] - b[i]) * (double)(a[i] - b[i]);
            refSq += (a[i] - mean) * (a[i] - mean);
        }
        for (int p = 0; p < positions; p++)
            if (ArgMax(a.AsSpan(p * vocab, vocab)) == ArgMax(b.AsSpan(p * vocab, vocab))) sameTop++;
        double relRms = Math.Sqrt(sumSq / refSq);
        TestContext.Out.WriteLine($"rms diff / logit std {relRms:F3}, same top-1 at {sameTop}/{positions} positions");
        Assert.That(relRms, Is.LessThan(0.2));
        Assert.That(sameTop, Is.GreaterThanOrEqualTo(0.9 * positions));
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    [Test]
    public void Stories15M_Nf4Head_GreedyStillTellsTheLilyStory()
    {
        using var model = CausalLM.Load("stories15M", Nf4(true));
        var result = model.Generate([1], new GenerationOptions(MaxNewTokens: 30, Temperature: 0f));
        string text = model.Tokenizer!.Decode(result.Tokens);
        TestContext.Out.WriteLine(text);
        Assert.That(text, Does.StartWith("Once upon a time, there was a little girl named Lily"));
    }

    [Test]
    public void TiedHead_KeepsTheFp32EmbeddingInStateDictAndParameters()
    {
        using var plain = CausalLM.Load("stories15M", Nf4(false));
        using var quantized = CausalLM.Load("stories15M", Nf4(true));
        Assert.That(plain.GetSubmodule("lm_head"), Is.InstanceOf<Linear>(), "off by default, as in transformers");
        var head = (TiedQuantizedHead)quantized.GetSubmodule("lm_head");
        Assert.That(head.Quantized, Is.InstanceOf<Linear4bit>());
        Assert.That(head.Weight, Is.SameAs(quantized.GetSubmodule("model.embed_tokens").NamedParameters().Single().Parameter));
        Assert.That(quantized.NumParameters(), Is.EqualTo(plain.NumParameters()));
        var sdPlain = plain.StateDict();
        var sdQuantized = quantized.StateDict();
        Assert.That(sdQuantized.Keys, Is.EqualTo(sdPlain.Keys));
        foreach (var (name, t) in sdPlain)
        {
            Assert.That(sdQuantized[name].DType, Is.EqualTo(t.DType), name);
            Assert.That(sdQuantized[name].Shape.ToArray(), Is.EqualTo(t.Shape.ToArray()), name);
        }
        Assert.That(sdQuantized["lm_head.weight"].Data.SequenceEqual(sdPlain["lm_head.weight"].Data), Is.True, "the embedding stays fp32");
    }

    [Test]
    public void UntiedHead_IsQuantizedInPlace()
    {
        string dir = Path.Combine(ReferenceDump.Dir, "tiny_llama");
        using var plain = CausalLM.Load(dir, Nf4(false));
        using var quantized = CausalLM.Load(dir, Nf4(true));
        Assert.That(plain.GetSubmodule("lm_head"), Is.InstanceOf<Linear>());
        Assert.That(quantized.GetSubmodule("lm_head"), Is.InstanceOf<Linear4bit>());
        Assert.That(quantized.NumParameters(), Is.EqualTo(plain.NumParameters() - 512 * 64));
    }

    // Measured: NF4 0.985, int8 0.9999.
    [TestCase(QuantType.Nf4, 0.95)]
    [TestCase(QuantType.Int8, 0.999)]
    public void QuantizedTiedHead_PassesGradientsToTheBody(QuantType type, double minCosine)
    {
        var ids = ReferenceDump.Load("stories15m").InputIds;
        float[] Grad(bool head)
        {
            using var model = CausalLM.Load("stories15M", new QuantConfig(type, DoubleQuant: true, QuantizeHead: head));
            using var peft = PeftModel.GetPeftModel(model, new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = new[] { "v_proj" }, Seed = 5 });
            peft.Train();
            using var scope = new TensorScope();
            var x = Tensor.FromSpan<int>(ids[..^1], [1, ids.Length - 1], DType.Int32);
            var y = Tensor.FromSpan<int>(ids[1..], [ids.Length - 1], DType.Int32);
            Functional.CrossEntropy(model.Forward(x).Reshape(-1, model.VocabSize), y).Backward();
            // lora_B starts at zero, so only its gradient is non-zero: dX of the head times lora_A's features.
            return peft.NamedParameters().Where(p => p.Name.Contains("lora_B")).SelectMany(p => p.Parameter.Grad!.Data.ToArray()).ToArray();
        }
        float[] fp32 = Grad(false), quantized = Grad(true);
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < fp32.Length; i++) { dot += fp32[i] * (double)quantized[i]; na += fp32[i] * (double)fp32[i]; nb += quantized[i] * (double)quantized[i]; }
        double cosine = dot / Math.Sqrt(na * nb);
        TestContext.Out.WriteLine($"{type}: cosine {cosine:F5}, norms {Math.Sqrt(na):E3} {Math.Sqrt(nb):E3}");
        Assert.That(cosine, Is.GreaterThan(minCosine), "the LoRA gradient through the quantized head points where the fp32 head's does");
    }
}
