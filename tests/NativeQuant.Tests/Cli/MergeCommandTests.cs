using System.Text;
using System.Text.Json;
using NativeQuant.Generation;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Peft;
using NativeQuant.Tensors;
using NativeQuant.Tests.IO;
using NativeQuant.Tests.Models;
using NUnit.Framework;

namespace NativeQuant.Tests.Cli;

/// <summary>`nq merge` and `--adapter` on `nq generate` / `nq eval`, on tests/reference/tiny_llama (with the
/// stories15M tokenizer beside it, so the CLI can decode) and on stories15M for perplexity.</summary>
public class MergeCommandTests
{
    /// <summary>Merged fp32 weights vs. base + adapter computed separately: only the summation order differs.</summary>
    private const float LogitsTol = 1e-4f;

    private static readonly int[] Ids = [1, 5, 9, 42, 7, 300, 11, 2];

    private TempDir _dir = null!;
    private string _base = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = new TempDir();
        _base = Directory.CreateDirectory(_dir.File("base")).FullName;
        foreach (var f in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(ReferenceDump.Dir, "tiny_llama", f), Path.Combine(_base, f));
        File.Copy(NativeQuant.Assets.Path("stories15M/tokenizer.bin"), Path.Combine(_base, "tokenizer.bin"));
    }

    [TearDown] public void TearDown() => _dir.Dispose();

    private static Task<(int Code, string Out, string Err)> Nq(params string[] args) => NqRun.Invoke(args);

    /// <summary>A non-trivial adapter (A and B both random, so B·A ≠ 0) saved for <paramref name="model"/>.</summary>
    private string MakeAdapter(string model, string name, TargetModules targets)
    {
        string dir = _dir.File(name);
        using var peft = PeftModel.GetPeftModel(CausalLM.Load(model),
            new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = targets, InitLoraWeights = LoraInit.Random, Seed = 7 });
        peft.SavePretrained(dir);
        return dir;
    }

    private static float[] Logits(CausalLM lm)
    {
        using var scope = new TensorScope();
        return lm.Forward(Tensor.FromArray(Ids, 1, Ids.Length)).ToArray();
    }

    private static float MaxAbsDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    [Test]
    public async Task Merge_FpBase_LogitsEqualBasePlusAdapter()
    {
        string adapter = MakeAdapter(_base, "adapter", TargetModules.AllLinearKeyword);
        string outDir = _dir.File("merged");
        var (code, _, err) = await Nq("merge", "--model", _base, "--adapter", adapter, "--output", outDir);
        Assert.That(code, Is.EqualTo(0), err);

        float[] baseLogits, withAdapter, merged;
        using (var lm = CausalLM.Load(_base)) baseLogits = Logits(lm);
        using (var peft = PeftModel.FromPretrained(CausalLM.Load(_base), adapter)) withAdapter = Logits((CausalLM)peft.Model);
        using (var lm = CausalLM.Load(outDir)) merged = Logits(lm);

        Assert.That(MaxAbsDiff(merged, withAdapter), Is.LessThan(LogitsTol));
        Assert.That(MaxAbsDiff(baseLogits, withAdapter), Is.GreaterThan(1e-2f), "the adapter must change the logits for this test to mean anything");
        Assert.That(File.Exists(Path.Combine(outDir, "tokenizer.bin")), Is.True);
        Assert.That(Directory.GetDirectories(_dir.Path, ".partial-*"), Is.Empty);
    }

    [Test]
    public async Task Merge_Nf4Base_ReportsRoundingErrorPerLayerAndSavesTheRequantizedWeights()
    {
        string adapter = MakeAdapter(_base, "adapter", new[] { "q_proj", "v_proj" });
        string outDir = _dir.File("merged");
        var (code, output, err) = await Nq("merge", "--model", _base, "--quant", "nf4", "--adapter", adapter, "--output", outDir);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output.Split('\n').Count(l => l.Contains("requantization error")), Is.EqualTo(4), output); // 2 layers × {q,v}

        // The saved fp32 weights are the dequantized merged NF4 weights, so they reproduce the in-memory merge.
        var q = new QuantConfig(QuantType.Nf4);
        float[] inMemory, saved;
        using (var peft = PeftModel.FromPretrained(CausalLM.Load(_base, q), adapter))
        using (var merged = (CausalLM)peft.MergeAndUnload().Model)
            inMemory = Logits(merged);
        using (var lm = CausalLM.Load(outDir)) saved = Logits(lm);
        Assert.That(MaxAbsDiff(saved, inMemory), Is.LessThan(LogitsTol));
    }

    /// <summary>Weights equal to a layer's own (bit for bit) when every quantized layer stores the same bytes.</summary>
    private static void AssertSameQuantizedWeights(Module expected, Module actual)
    {
        var a = expected.NamedModules().Where(m => m.Module is Linear4bit or Linear8bitLt).ToList();
        var b = actual.NamedModules().Where(m => m.Module is Linear4bit or Linear8bitLt).ToList();
        Assert.That(b.Select(m => m.Name), Is.EqualTo(a.Select(m => m.Name)));
        foreach (var ((name, x), (_, y)) in a.Zip(b))
        {
            if (x is Linear4bit p) Assert.That(((Linear4bit)y).Storage(), Is.EqualTo(p.Storage()).Using<Quant4Storage>(SameBytes), name);
            else Assert.That(((Linear8bitLt)y).Storage().Weight, Is.EqualTo(((Linear8bitLt)x).Storage().Weight), name);
        }
    }

    private static bool SameBytes(Quant4Storage x, Quant4Storage y) =>
        x.Packed.SequenceEqual(y.Packed) && (x.Absmax ?? []).SequenceEqual(y.Absmax ?? []) && (x.AbsmaxQ ?? []).SequenceEqual(y.AbsmaxQ ?? [])
        && (x.NestedAbsmax ?? []).SequenceEqual(y.NestedAbsmax ?? []) && x.NestedOffset == y.NestedOffset;

    /// <summary>RMS(a − reference) / std(reference): logits error relative to their spread.</summary>
    private static double RelRms(float[] a, float[] reference)
    {
        double mean = reference.Average(), var = reference.Average(v => (v - mean) * (v - mean));
        return Math.Sqrt(a.Zip(reference, (x, y) => (double)(x - y) * (x - y)).Average() / var);
    }

    /// <summary>Measured on tiny_llama (64 wide, random weights): NF4 of every linear moves logits by ~0.48 of their
    /// spread (the format's error, the same with the adapter unmerged), int8 row-wise by ~0.035.</summary>
    private const double Nf4MergeRelTol = 0.6, Int8MergeRelTol = 0.05;

    private float[] Fp32MergeLogits(string adapter)
    {
        using var peft = PeftModel.FromPretrained(CausalLM.Load(_base), adapter);
        using var merged = (CausalLM)peft.MergeAndUnload().Model;
        return Logits(merged);
    }

    [Test]
    public async Task MergeRequantize_Nf4Base_ReloadIsBitExact_AndCloseToTheFp32Merge()
    {
        string adapter = MakeAdapter(_base, "adapter", new[] { "q_proj", "v_proj" });
        string outDir = _dir.File("merged");
        var (code, output, err) = await Nq("merge", "--model", _base, "--quant", "nf4", "--double-quant", "--adapter", adapter, "--output", outDir, "--requantize");
        Assert.That(code, Is.EqualTo(0), err);
        var lines = output.Split('\n');
        Assert.That(lines.Count(l => l.Contains(".self_attn.") && l.Contains("requantization error")), Is.EqualTo(4), output); // 2 layers × {q,v}
        Assert.That(lines.Count(l => l.StartsWith("total: requantization error", StringComparison.Ordinal)), Is.EqualTo(1), output);
        Assert.That(output, Does.Contain("(nf4 + double quant, bitsandbytes layout)"));

        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "config.json"))).RootElement.GetProperty("quantization_config");
        Assert.That(config.GetProperty("quant_method").GetString(), Is.EqualTo("bitsandbytes"));
        Assert.That(config.GetProperty("bnb_4bit_quant_type").GetString(), Is.EqualTo("nf4"));
        Assert.That(config.GetProperty("bnb_4bit_use_double_quant").GetBoolean(), Is.True);
        using (var file = NativeQuant.IO.SafeTensorsFile.Open(Path.Combine(outDir, "model.safetensors")))
            Assert.That(file.Names, Does.Contain("model.layers.1.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4")
                                        .And.Contain("model.layers.1.self_attn.q_proj.weight.nested_absmax").And.Contain("lm_head.weight"));

        float[] inMemory, reloaded;
        using (var peft = PeftModel.FromPretrained(CausalLM.Load(_base, new QuantConfig(QuantType.Nf4, DoubleQuant: true)), adapter))
        using (var merged = (CausalLM)RequantizedMerge.Apply(peft, null).Model)
        using (var lm = CausalLM.Load(outDir))
        using (var nf4Base = CausalLM.Load(_base, new QuantConfig(QuantType.Nf4, DoubleQuant: true)))
        {
            AssertSameQuantizedWeights(merged, lm);
            inMemory = Logits(merged);
            reloaded = Logits(lm);
            const string untouched = "model.layers.1.mlp.down_proj";  // not a LoRA target: its bytes are the base's
            Assert.That(((Linear4bit)lm.GetSubmodule(untouched)).Storage(), Is.EqualTo(((Linear4bit)nf4Base.GetSubmodule(untouched)).Storage()).Using<Quant4Storage>(SameBytes));
        }
        Assert.That(reloaded, Is.EqualTo(inMemory));
        // Requantizing the merge adds little to the NF4 error the adapter was applied with: compare both with the fp32 merge.
        var fp = Fp32MergeLogits(adapter);
        float[] unmerged;
        using (var peft = PeftModel.FromPretrained(CausalLM.Load(_base, new QuantConfig(QuantType.Nf4, DoubleQuant: true)), adapter))
            unmerged = Logits((CausalLM)peft.Model);
        double requantized = RelRms(reloaded, fp), withAdapter = RelRms(unmerged, fp);
        TestContext.Out.WriteLine($"logits rms error / spread vs the fp32 merge: nf4 requantized merge {requantized:F3}, nf4 base + adapter {withAdapter:F3}");
        Assert.That(requantized, Is.LessThan(Nf4MergeRelTol));
        Assert.That(requantized, Is.LessThan(1.1 * withAdapter));

        var generate = await Nq("generate", "--model", outDir, "--temperature", "0", "--max-new-tokens", "6");
        Assert.That(generate.Code, Is.EqualTo(0), generate.Err);
    }

    [Test]
    public async Task MergeRequantize_Stories15M_EvalOfTheSavedModelEqualsTheInMemoryMerge()
    {
        string adapter = MakeAdapter("stories15M", "adapter", new[] { "q_proj", "v_proj" });
        string outDir = _dir.File("merged"), data = _dir.File("story.txt");
        File.WriteAllText(data, "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.");
        var merge = await Nq("merge", "--model", "stories15M", "--quant", "nf4", "--double-quant", "--adapter", adapter, "--output", outDir, "--requantize");
        Assert.That(merge.Code, Is.EqualTo(0), merge.Err);
        var eval = await Nq("eval", "--model", outDir, "--data", data, "--json");
        Assert.That(eval.Code, Is.EqualTo(0), eval.Err);

        double expected;
        using (var peft = PeftModel.FromPretrained(CausalLM.Load("stories15M", new QuantConfig(QuantType.Nf4, DoubleQuant: true)), adapter))
        using (var merged = (CausalLM)RequantizedMerge.Apply(peft, null).Model)
            expected = merged.Perplexity(File.ReadAllText(data)).Perplexity;
        Assert.That(JsonDocument.Parse(eval.Out).RootElement.GetProperty("perplexity").GetDouble(), Is.EqualTo(expected));
    }

    [Test]
    public async Task MergeRequantize_Fp32BaseToInt8_QuantizesEveryLinearButTheHead()
    {
        string adapter = MakeAdapter(_base, "adapter", TargetModules.AllLinearKeyword);
        string outDir = _dir.File("merged");
        var (code, output, err) = await Nq("merge", "--model", _base, "--adapter", adapter, "--output", outDir, "--requantize", "int8");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output.Split('\n').Count(l => l.StartsWith("model.layers.", StringComparison.Ordinal)), Is.EqualTo(14), output);
        // transformers' BitsAndBytesConfig insists on a float threshold.
        Assert.That(File.ReadAllText(Path.Combine(outDir, "config.json")), Does.Contain("\"llm_int8_threshold\": 6.0,").And.Contain("\"load_in_8bit\": true"));

        float[] inMemory, reloaded;
        using (var peft = PeftModel.FromPretrained(CausalLM.Load(_base), adapter))
        using (var merged = (CausalLM)RequantizedMerge.Apply(peft, new QuantConfig(QuantType.Int8)).Model)
        using (var lm = CausalLM.Load(outDir))
        {
            AssertSameQuantizedWeights(merged, lm);
            Assert.That(lm.GetSubmodule("lm_head"), Is.InstanceOf<Linear>());
            inMemory = Logits(merged);
            reloaded = Logits(lm);
        }
        Assert.That(reloaded, Is.EqualTo(inMemory));
        double rel = RelRms(reloaded, Fp32MergeLogits(adapter));
        TestContext.Out.WriteLine($"logits rms error / spread, int8 requantized merge vs the fp32 merge: {rel:F4}");
        Assert.That(rel, Is.LessThan(Int8MergeRelTol));
    }

    [Test]
    public async Task MergeRequantize_Gpt2Nf4_ReloadIsBitExact()
    {
        string gpt2 = Directory.CreateDirectory(_dir.File("gpt2")).FullName;
        foreach (var f in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(ReferenceDump.Dir, "tiny_gpt2", f), Path.Combine(gpt2, f));
        string adapter = MakeAdapter(gpt2, "adapter", new[] { "c_attn", "c_fc" });
        string outDir = _dir.File("merged");
        var (code, output, err) = await Nq("merge", "--model", gpt2, "--quant", "nf4", "--adapter", adapter, "--output", outDir, "--requantize");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output.Split('\n').Count(l => l.StartsWith("transformer.h.", StringComparison.Ordinal)), Is.EqualTo(4), output);

        using var peft = PeftModel.FromPretrained(CausalLM.Load(gpt2, new QuantConfig(QuantType.Nf4)), adapter);
        using var merged = (CausalLM)RequantizedMerge.Apply(peft, null).Model;
        using var lm = CausalLM.Load(outDir);
        AssertSameQuantizedWeights(merged, lm);
        Assert.That(Logits(lm), Is.EqualTo(Logits(merged)));
    }

    [Test]
    public async Task MergeRequantize_Fp32BaseWithoutFormat_Exit1AndNoOutput()
    {
        string adapter = MakeAdapter(_base, "adapter", new[] { "q_proj" });
        string outDir = _dir.File("merged");
        var (code, _, err) = await Nq("merge", "--model", _base, "--adapter", adapter, "--output", outDir, "--requantize");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("--requantize").And.Contain("not quantized"));
        Assert.That(Directory.Exists(outDir), Is.False);
    }

    [Test]
    public async Task GenerateWithAdapter_EqualsPeftApiAndMergedModel_AndDiffersFromBase()
    {
        string adapter = MakeAdapter(_base, "adapter", TargetModules.AllLinearKeyword);
        string outDir = _dir.File("merged");
        Assert.That((await Nq("merge", "--model", _base, "--adapter", adapter, "--output", outDir)).Code, Is.EqualTo(0));
        string[] greedy = ["--temperature", "0", "--max-new-tokens", "12"];

        var withAdapter = await Nq(["generate", "--model", _base, "--adapter", adapter, .. greedy]);
        var merged = await Nq(["generate", "--model", outDir, .. greedy]);
        var plain = await Nq(["generate", "--model", _base, .. greedy]);
        Assert.That(withAdapter.Code, Is.EqualTo(0), withAdapter.Err);
        Assert.That(merged.Code, Is.EqualTo(0), merged.Err);

        var api = new StringBuilder();
        using (var peft = PeftModel.FromPretrained(CausalLM.Load(_base), adapter))
            ((CausalLM)peft.Model).Generate("", new GenerationOptions(12, 0f, 1f, 0, 0UL), piece => api.Append(piece));

        Assert.That(withAdapter.Out.TrimEnd('\n'), Is.EqualTo(api.ToString()));
        Assert.That(merged.Out, Is.EqualTo(withAdapter.Out));
        Assert.That(plain.Out, Is.Not.EqualTo(withAdapter.Out));
    }

    [Test]
    public async Task EvalWithAdapter_EqualsPeftApi_AndDiffersFromBase()
    {
        string adapter = MakeAdapter("stories15M", "adapter", new[] { "q_proj", "v_proj" });
        string data = _dir.File("story.txt");
        File.WriteAllText(data, "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.");

        var withAdapter = await Nq("eval", "--model", "stories15M", "--adapter", adapter, "--data", data, "--json");
        var plain = await Nq("eval", "--model", "stories15M", "--data", data, "--json");
        Assert.That(withAdapter.Code, Is.EqualTo(0), withAdapter.Err);

        double expected;
        using (var peft = PeftModel.FromPretrained(CausalLM.Load("stories15M"), adapter))
            expected = ((CausalLM)peft.Model).Perplexity(File.ReadAllText(data)).Perplexity;
        double Ppl(string json) => JsonDocument.Parse(json).RootElement.GetProperty("perplexity").GetDouble();
        Assert.That(Ppl(withAdapter.Out), Is.EqualTo(expected));
        Assert.That(Ppl(plain.Out), Is.Not.EqualTo(expected).Within(1e-3));
    }

    [Test]
    public async Task Merge_MissingAdapterDirectory_Exit1AndNoOutput()
    {
        string outDir = _dir.File("merged");
        var (code, _, err) = await Nq("merge", "--model", _base, "--adapter", _dir.File("nope"), "--output", outDir);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("not a PEFT adapter directory"));
        Assert.That(Directory.Exists(outDir), Is.False);
    }

    [Test]
    public async Task Merge_AdapterForAnotherModel_Exit1AndNoOutput()
    {
        string adapter = MakeAdapter("stories15M", "adapter15M", new[] { "q_proj" });
        string outDir = _dir.File("merged");
        var (code, _, err) = await Nq("merge", "--model", _base, "--adapter", adapter, "--output", outDir);
        Assert.That(code, Is.EqualTo(1), err);
        Assert.That(err, Does.Contain("adapter_model.safetensors").And.Contain("the base model (with target_modules [q_proj]) does not have"));
        Assert.That(Directory.Exists(outDir), Is.False);
        Assert.That(Directory.GetDirectories(_dir.Path, ".partial-*"), Is.Empty);

        var generate = await Nq("generate", "--model", _base, "--adapter", adapter, "--max-new-tokens", "2");
        Assert.That(generate.Code, Is.EqualTo(1));
        Assert.That(generate.Err, Does.Contain("does not have"));
    }

    [Test]
    public async Task Merge_NonEmptyOutput_Exit1AndLeftIntact()
    {
        string adapter = MakeAdapter(_base, "adapter", new[] { "q_proj" });
        string outDir = Directory.CreateDirectory(_dir.File("merged")).FullName;
        File.WriteAllText(Path.Combine(outDir, "keep.txt"), "mine");
        var (code, _, err) = await Nq("merge", "--model", _base, "--adapter", adapter, "--output", outDir);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("not empty"));
        Assert.That(Directory.GetFiles(outDir).Select(Path.GetFileName), Is.EqualTo(new[] { "keep.txt" }));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "keep.txt")), Is.EqualTo("mine"));
    }
}
