using System.Text.Json;
using NativeQuant.IO;
using NativeQuant.Quantization;
using NativeQuant.Tests.IO;
using NativeQuant.Tests.Quantization;
using NUnit.Framework;

namespace NativeQuant.Tests.Cli;

public class CliTests
{
    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    private static Task<(int Code, string Out, string Err)> Nq(params string[] args) => NqRun.Invoke(args);

    /// <summary>A small model: two N(0,1) weights and a 1-D norm that must be copied as is.</summary>
    private string WriteModel()
    {
        var w = new SafeTensorsWriter();
        w.AddValues("layer.weight", TensorDType.F32, [128, 256], Randn.Sample(128 * 256, 5));
        w.AddValues("layer2.weight", TensorDType.F32, [64, 128], Randn.Sample(64 * 128, 6));
        w.AddValues("norm.weight", TensorDType.F32, [256], Enumerable.Range(0, 256).Select(i => 1f + i / 256f).ToArray());
        string path = _dir.File("model.safetensors");
        w.Save(path);
        return path;
    }

    /// <summary>Upper bounds of MAE on N(0,1) weights per method (see QuantizedTensorTests for the reasoning).</summary>
    [TestCase("int8-absmax", 0.010)]
    [TestCase("int8-rowwise", 0.008)]
    [TestCase("int8-zeropoint", 0.008)]
    [TestCase("blockwise8", 0.011, "--blocksize", "256")]
    [TestCase("nf4", 0.077, "--blocksize", "64")]
    [TestCase("nf4", 0.077, "--double-quant")]
    [TestCase("fp4", 0.11)]
    public async Task QuantizeThenDequantizeRoundTrips(string method, double maxMae, params string[] extra)
    {
        string model = WriteModel(), q = _dir.File("q.safetensors"), f = _dir.File("f.safetensors");
        var (code, stdout, err) = await Nq(["quantize", "--method", method, "--input", model, "--output", q, "--json", .. extra]);
        Assert.That(code, Is.Zero, err);
        using var report = JsonDocument.Parse(stdout);
        Assert.That(report.RootElement.GetProperty("totals").GetProperty("quantized_tensors").GetInt32(), Is.EqualTo(2));

        (code, _, err) = await Nq("dequantize", "--input", q, "--output", f);
        Assert.That(code, Is.Zero, err);
        using var original = SafeTensorsFile.Open(model);
        using var restored = SafeTensorsFile.Open(f);
        Assert.That(restored.Names.Order(), Is.EqualTo(original.Names.Order()));
        Assert.That(restored.Get("norm.weight").Data.ToArray(), Is.EqualTo(original.Get("norm.weight").Data.ToArray()), "1-D tensors are copied unchanged");
        foreach (var name in new[] { "layer.weight", "layer2.weight" })
        {
            Assert.That(restored.Get(name).Shape, Is.EqualTo(original.Get(name).Shape));
            var stats = QuantKernels.ErrorStats(TensorConvert.ToFloat32(original.Get(name)), TensorConvert.ToFloat32(restored.Get(name)));
            Assert.That(stats.MeanAbsError, Is.LessThan(maxMae).And.GreaterThan(0), name);
        }
    }

    [Test]
    public async Task QuantizedFileUsesBnbNamesAndDescribesItself()
    {
        string model = WriteModel(), q = _dir.File("q.safetensors");
        var (code, _, err) = await Nq("quantize", "--method", "nf4", "--double-quant", "--input", model, "--output", q);
        Assert.That(code, Is.Zero, err);
        using var file = SafeTensorsFile.Open(q);
        Assert.That(file.Names, Does.Contain("layer.weight.quant_state.bitsandbytes__nf4").And.Contain("layer.weight.nested_absmax").And.Contain("norm.weight"));
        Assert.That(file.Get("norm.weight").DType, Is.EqualTo(TensorDType.F32));
        var entries = QuantizedModelFormat.Parse(file.Metadata[QuantizedModelFormat.EntriesKey], q);
        Assert.That(entries["layer.weight"], Is.EqualTo(new QuantEntry("nf4", [128, 256], 64, true, "F32")).Using<QuantEntry>((a, b) =>
            a.Method == b.Method && a.Shape.SequenceEqual(b.Shape) && a.Blocksize == b.Blocksize && a.DoubleQuant == b.DoubleQuant));
        var (infoCode, info, _) = await Nq("info", q);
        Assert.That(infoCode, Is.Zero);
        Assert.That(info, Does.Contain("quantized weights: 2 (nf4)").And.Contain("layer.weight.absmax"));
    }

    [Test]
    public async Task BnbFileWithoutOurMetadataStillDequantizes()
    {
        var w = new SafeTensorsWriter();
        var x = Randn.Sample(64 * 64, 9);
        var q = QuantizedTensor.Quantize(x, [64, 64], new QuantOptions(QuantMethod.Nf4, 64, DoubleQuant: true));
        foreach (var c in q.Components("m.weight")) w.Add(c.Name, c.DType, c.Shape, c.Data);
        var r = QuantizedTensor.Quantize(x, [64, 64], new QuantOptions(QuantMethod.Int8Rowwise));
        foreach (var c in r.Components("lin.weight")) w.Add(c.Name, c.DType, c.Shape, c.Data);
        string path = _dir.File("bnb.safetensors"), outPath = _dir.File("out.safetensors");
        w.Save(path);
        var (code, stdout, err) = await Nq("dequantize", "--input", path, "--output", outPath);
        Assert.That(code, Is.Zero, err);
        Assert.That(stdout, Does.Contain("dequantized 2 weights"));
        using var f = SafeTensorsFile.Open(outPath);
        Assert.That(f.Names.Order(), Is.EqualTo(new[] { "lin.weight", "m.weight" }));
    }

    [Test]
    public async Task Stories15MNf4DoubleQuantReport()
    {
        Llama2CheckpointTests.Stories15M();
        string q = _dir.File("s15.safetensors");
        var (code, stdout, err) = await Nq("quantize", "--input", "stories15M", "--method", "nf4", "--double-quant", "--report", "--output", q);
        Assert.That(code, Is.Zero, err);
        Assert.That(stdout, Does.Contain("model.layers.5.mlp.down_proj.weight").And.Contain("total (quantized)").And.Contain("copy (1-D)"));
        using var file = SafeTensorsFile.Open(q);
        Assert.That(file.Names, Does.Contain("model.embed_tokens.weight.quant_state.bitsandbytes__nf4"));
        Assert.That(new FileInfo(q).Length, Is.LessThan(60_816_028 / 6), "4-bit storage is about an eighth of fp32");
    }

    [Test]
    public async Task MissingInputIsUserErrorNamingTheFile()
    {
        string missing = _dir.File("nope.safetensors");
        var (code, _, err) = await Nq("quantize", "--method", "nf4", "--input", missing, "--output", _dir.File("o.safetensors"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(err, Does.Contain(missing));
    }

    [TestCase("--method", "int3")]
    [TestCase("--blocksize", "100")]
    [TestCase("--double-quant")]
    [TestCase("--threads", "0")]
    public async Task BadArgumentsAreUserErrors(params string[] bad)
    {
        string model = WriteModel(), output = _dir.File("o.safetensors");
        var args = new List<string> { "quantize", "--input", model, "--output", output };
        if (bad[0] != "--method") args.AddRange(["--method", bad[0] == "--double-quant" ? "int8-rowwise" : "nf4"]);
        args.AddRange(bad);
        var (code, _, err) = await Nq(args.ToArray());
        Assert.That(code, Is.EqualTo(1), err);
        Assert.That(err, Is.Not.Empty);
        Assert.That(File.Exists(output), Is.False);
    }

    [Test]
    public async Task CorruptInputLeavesExistingOutputUntouched()
    {
        string bad = _dir.File("bad.safetensors"), output = _dir.File("o.safetensors");
        File.WriteAllBytes(bad, [200, 0, 0, 0, 0, 0, 0, 0, (byte)'{']);
        File.WriteAllText(output, "precious");
        var (code, _, err) = await Nq("quantize", "--method", "nf4", "--input", bad, "--output", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain(bad).And.Contain("header length 200 exceeds"));
        Assert.That(File.ReadAllText(output), Is.EqualTo("precious"));
    }

    [Test]
    public async Task DequantizingAPlainFileIsUserError()
    {
        string model = WriteModel();
        var (code, _, err) = await Nq("dequantize", "--input", model, "--output", _dir.File("o.safetensors"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("no quantized weights found"));
    }

    [Test]
    public async Task OutputEqualToInputIsRejected()
    {
        string model = WriteModel();
        var (code, _, err) = await Nq("quantize", "--method", "nf4", "--input", model, "--output", model);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("must differ from --input"));
    }

    [Test]
    public async Task VersionReportsLibraryIsaAndThreads()
    {
        var (code, stdout, err) = await Nq("version", "--threads", "1");
        Assert.That(code, Is.Zero, err);
        Assert.That(stdout, Does.Contain("native library: ").And.Contain("isa: ").And.Contain("threads: 1"));
    }

    [Test]
    public async Task InfoDescribesLlama2Checkpoint()
    {
        Llama2CheckpointTests.Stories15M();
        var (code, stdout, err) = await Nq("info", "stories15M");
        Assert.That(code, Is.Zero, err);
        Assert.That(stdout, Does.Contain("llama2.c checkpoint").And.Contain("Dim = 288").And.Contain("interleaved"));
    }
}
