using System.Text;
using System.Text.Json;
using NativeQuant.Cli;
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

    private static async Task<(int Code, string Out, string Err)> Nq(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = await NqCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

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
