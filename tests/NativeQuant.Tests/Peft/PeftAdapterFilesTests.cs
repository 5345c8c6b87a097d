using NativeQuant.IO;
using NativeQuant.Peft;
using NativeQuant.Tensors;
using NativeQuant.Tests.IO;
using NUnit.Framework;

namespace NativeQuant.Tests.Peft;

/// <summary>Round trips against the adapter written by tests/reference/peft/make_peft_reference.py (torch).</summary>
public class PeftAdapterFilesTests
{
    // Two fp32 blocks of width 16 vs torch's fp32: summation order differs, values are O(1).
    private const float OutputTol = 2e-5f;

    private static string AdapterDir => Path.Combine(PeftReference.Dir(), "adapter");
    private static TinyStack Base() => TinyStack.Load(Path.Combine(PeftReference.Dir(), "tiny_base.safetensors"));

    private static float[] Run(PeftModel peft)
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray(PeftReference.Expected("x"), PeftReference.ExpectedShape("x"));
        return ((TinyStack)peft.Model).Forward(x).ToArray();
    }

    [Test]
    public void LoadsPeftAdapter_AndReproducesTorchOutputs()
    {
        using var peft = PeftModel.FromPretrained(Base(), AdapterDir);
        Assert.That(peft.Config.R, Is.EqualTo(4));
        Assert.That(peft.Config.Scaling, Is.EqualTo(2f));
        Assert.That(Run(peft), Is.EqualTo(PeftReference.Expected("y_lora")).Within(OutputTol));
        peft.SetAdapterEnabled(false);
        Assert.That(Run(peft), Is.EqualTo(PeftReference.Expected("y_base")).Within(OutputTol));
        Assert.That(peft.Parameters().Any(p => p.RequiresGrad), Is.False, "inference mode freezes the adapter");
    }

    [Test]
    public void SavedAdapter_IsByteIdenticalToPeftFiles()
    {
        using var dir = new TempDir();
        using (var peft = PeftModel.FromPretrained(Base(), AdapterDir))
            peft.SavePretrained(dir.Path);
        foreach (var name in new[] { PeftAdapterFiles.WeightsFileName, AdapterConfigJson.FileName })
            Assert.That(File.ReadAllBytes(dir.File(name)), Is.EqualTo(File.ReadAllBytes(Path.Combine(AdapterDir, name))), name);
    }

    [Test]
    public void TrainedAdapter_RoundTripsThroughFiles()
    {
        using var dir = new TempDir();
        var config = new LoraConfig { R = 4, LoraAlpha = 6, LoraDropout = 0.1f, TargetModules = new[] { "v_proj" }, UseRslora = true,
                                      InitLoraWeights = LoraInit.Random, BaseModelNameOrPath = "tiny-stack" };
        float[] expected;
        using (var peft = PeftModel.GetPeftModel(Base(), config))
        {
            peft.Eval();
            expected = Run(peft);
            peft.SavePretrained(dir.Path);
        }
        using var loaded = PeftModel.FromPretrained(Base(), dir.Path, isTrainable: true);
        loaded.Eval();
        Assert.That(loaded.Config with { InferenceMode = false, Seed = 0 }, Is.EqualTo(config with { InitLoraWeights = LoraInit.Random, TargetModules = loaded.Config.TargetModules }));
        Assert.That(loaded.Config.TargetModules!.Names, Is.EqualTo(new[] { "v_proj" }));
        Assert.That(loaded.Parameters().Count(p => p.RequiresGrad), Is.EqualTo(4));
        Assert.That(Run(loaded), Is.EqualTo(expected));
        string json = File.ReadAllText(dir.File(AdapterConfigJson.FileName));
        Assert.That(json, Does.Contain("\"lora_dropout\": 0.1,").And.Contain("\"use_rslora\": true\n").And.Contain("\"lora_alpha\": 6,"));
    }

    private static string CopyAdapter(TempDir dir, Func<string, string>? editConfig = null)
    {
        string target = Directory.CreateDirectory(dir.File("adapter")).FullName;
        foreach (var f in Directory.GetFiles(AdapterDir)) File.Copy(f, Path.Combine(target, Path.GetFileName(f)));
        if (editConfig != null)
        {
            string p = Path.Combine(target, AdapterConfigJson.FileName);
            File.WriteAllText(p, editConfig(File.ReadAllText(p)));
        }
        return target;
    }

    [Test]
    public void RankMismatch_IsReported()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<InvalidDataException>(() => PeftModel.FromPretrained(Base(), CopyAdapter(dir, j => j.Replace("\"r\": 4", "\"r\": 8"))));
        Assert.That(e!.Message, Does.Contain("rank mismatch").And.Contain("r=8"));
    }

    [Test]
    public void ModuleMissingFromBase_IsReported_AndTheModelIsLeftUnchanged()
    {
        using var dir = new TempDir();
        string adapter = CopyAdapter(dir, j => j.Replace("\"v_proj\"", "\"o_proj\""));
        using var model = Base();
        var e = Assert.Throws<InvalidDataException>(() => PeftModel.FromPretrained(model, adapter));
        Assert.That(e!.Message, Does.Contain("o_proj").And.Contain("[q_proj, v_proj]"));

        string onlyQ = CopyAdapter(new TempDir(), j => j.Replace("\"q_proj\",\n    \"v_proj\"", "\"q_proj\""));
        var unexpected = Assert.Throws<InvalidDataException>(() => PeftModel.FromPretrained(model, onlyQ));
        Assert.That(unexpected!.Message, Does.Contain("v_proj.lora_A.weight"));
        Assert.That(model.NamedModules().Any(m => m.Module is LoraLinear), Is.False, "a failed load must restore the base layers");
    }

    [Test]
    public void ShapeMismatch_NamesTheTensor()
    {
        using var dir = new TempDir();
        using var wide = TinyStack.Random(2, 32, 1);
        var e = Assert.Throws<InvalidDataException>(() => PeftModel.FromPretrained(wide, CopyAdapter(dir)));
        Assert.That(e!.Message, Does.Contain("layers.0.q_proj.lora_A.weight").And.Contain("[4, 16]").And.Contain("[4, 32]"));
    }

    [Test]
    public void UnsupportedAdapterKinds_AreRejectedByField()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<InvalidDataException>(() => PeftModel.FromPretrained(Base(), CopyAdapter(dir, j => j.Replace("\"use_dora\": false", "\"use_dora\": true"))));
        Assert.That(e!.Message, Does.Contain("use_dora"));
    }
}
