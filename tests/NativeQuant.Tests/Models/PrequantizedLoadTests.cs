using System.Text.Json.Nodes;
using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.IO;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Quantization;
using NativeQuant.Tensors;
using NativeQuant.Tests.Cli;
using NativeQuant.Tests.IO;
using NUnit.Framework;

namespace NativeQuant.Tests.Models;

/// <summary>
/// Hugging Face directories saved pre-quantized by transformers + bitsandbytes (config.json quantization_config,
/// Params4bit / Int8Params tensors per linear). The fixtures are written here from tests/reference's fp32 tiny
/// models with the tensor-level quantizers (<see cref="QuantizedTensor"/>), independently of the loader: linear
/// weights only, GPT-2's Conv1D transposed to (out, in) first, as transformers does.
/// </summary>
public class PrequantizedLoadTests
{
    private static readonly int[] Ids = [1, 5, 9, 42, 7, 300, 11, 2];

    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    private static string Reference(string model) => Path.Combine(ReferenceDump.Dir, model);

    private static bool IsLinearWeight(string name, out bool conv1D)
    {
        conv1D = name.Contains(".attn.c_") || name.Contains(".mlp.c_");
        return name.EndsWith(".weight", StringComparison.Ordinal) && (conv1D || name.EndsWith("_proj.weight", StringComparison.Ordinal));
    }

    /// <summary>Writes <paramref name="model"/> quantized with <paramref name="options"/> and the given
    /// quantization_config into a new directory.</summary>
    internal static string WriteBnbCheckpoint(TempDir dir, string model, QuantOptions options, JsonObject quantizationConfig, string name = "bnb",
                                              Func<string, long[], long[]>? storedShape = null)
    {
        string outDir = Directory.CreateDirectory(dir.File(name)).FullName;
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Reference(model), "config.json")))!.AsObject();
        config["quantization_config"] = quantizationConfig;
        File.WriteAllText(Path.Combine(outDir, "config.json"), config.ToJsonString());
        using var source = SafeTensorsFile.Open(Path.Combine(Reference(model), "model.safetensors"));
        var writer = new SafeTensorsWriter();
        foreach (var n in source.Names)
        {
            var t = source.Get(n);
            if (!IsLinearWeight(n, out bool conv1D)) { writer.Add(t); continue; }
            float[] x = TensorConvert.ToFloat32(t);
            long rows = t.Shape[0], cols = t.Shape[1];
            if (conv1D)
            {
                var xt = new float[x.Length];
                for (long i = 0; i < rows; i++)
                    for (long j = 0; j < cols; j++) xt[j * rows + i] = x[i * cols + j];
                (x, rows, cols) = (xt, cols, rows);
            }
            long[] shape = storedShape?.Invoke(n, [rows, cols]) ?? [rows, cols];
            foreach (var c in QuantizedTensor.Quantize(x, shape, options).Components(n)) writer.Add(c.Name, c.DType, c.Shape, c.Data);
        }
        writer.Save(Path.Combine(outDir, "model.safetensors"));
        return outDir;
    }

    /// <summary>quantization_config as transformers' BitsAndBytesConfig.to_dict() writes it.</summary>
    internal static JsonObject FourBitConfig(string type, bool doubleQuant) => new()
    {
        ["_load_in_4bit"] = true, ["_load_in_8bit"] = false, ["bnb_4bit_compute_dtype"] = "float16", ["bnb_4bit_quant_storage"] = "uint8",
        ["bnb_4bit_quant_type"] = type, ["bnb_4bit_use_double_quant"] = doubleQuant, ["llm_int8_enable_fp32_cpu_offload"] = false,
        ["llm_int8_has_fp16_weight"] = false, ["llm_int8_skip_modules"] = null, ["llm_int8_threshold"] = 6.0,
        ["load_in_4bit"] = true, ["load_in_8bit"] = false, ["quant_method"] = "bitsandbytes",
    };

    private static JsonObject EightBitConfig() => new()
    {
        ["load_in_4bit"] = false, ["load_in_8bit"] = true, ["llm_int8_threshold"] = 6.0, ["quant_method"] = "bitsandbytes",
    };

    internal static float[] Logits(CausalLM lm)
    {
        using var scope = new TensorScope();
        using var noGrad = GradMode.NoGrad();
        return lm.Forward(Tensor.FromArray(Ids, 1, Ids.Length)).ToArray();
    }

    /// <summary>Loading the stored tensors must give the model that quantizing the fp32 checkpoint on load gives:
    /// same kernels (the config's bnb_4bit_compute_dtype float16 selects F16 compute, so the on-load model asks
    /// for it too), so the logits are bit-identical only if every byte and the (out, in) orientation survived.</summary>
    [TestCase("tiny_llama", "nf4", true)]
    [TestCase("tiny_llama", "fp4", false)]
    [TestCase("tiny_gpt2", "nf4", true)]
    [TestCase("tiny_gpt2", "fp4", false)]
    public void FourBit_LogitsEqualQuantizingOnLoad(string model, string type, bool doubleQuant)
    {
        var method = type == "nf4" ? QuantMethod.Nf4 : QuantMethod.Fp4;
        string dir = WriteBnbCheckpoint(_dir, model, new QuantOptions(method, 64, doubleQuant), FourBitConfig(type, doubleQuant));
        var qtype = QuantConfig.Parse(type);
        using var stored = CausalLM.Load(dir);
        using var onLoad = CausalLM.Load(Reference(model), new QuantConfig(qtype, doubleQuant, ComputeDtype: NqComputeType.F16));
        Assert.That(Logits(stored), Is.EqualTo(Logits(onLoad)));
        var layers = stored.NamedModules().Select(m => m.Module).OfType<Linear4bit>().ToList();
        Assert.That(layers.All(l => l.ComputeDtype == NqComputeType.F16), Is.True, "bnb_4bit_compute_dtype float16");
        Assert.That(layers, Has.Count.EqualTo(model == "tiny_llama" ? 14 : 8));
        Assert.That(layers.All(l => l.DoubleQuant == doubleQuant), Is.True);
        Assert.That(stored.NamedModules().Any(m => m.Name == "lm_head" && m.Module is Linear4bit), Is.False, "the head stays as stored (fp32)");
    }

    [Test]
    public void FourBit_PackedBytesAreAdoptedAsStored()
    {
        string dir = WriteBnbCheckpoint(_dir, "tiny_gpt2", new QuantOptions(QuantMethod.Nf4, 64, true), FourBitConfig("nf4", true));
        using var lm = CausalLM.Load(dir);
        using var file = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors"));
        const string w = "transformer.h.1.mlp.c_fc.weight";
        var layer = (Linear4bit)lm.GetSubmodule("transformer.h.1.mlp.c_fc");
        var s = layer.Storage();
        Assert.That((layer.OutFeatures, layer.InFeatures), Is.EqualTo((256, 64)));
        Assert.That(s.Packed, Is.EqualTo(file.Get(w).Data.ToArray()));
        Assert.That(s.AbsmaxQ, Is.EqualTo(file.Get(w + ".absmax").Data.ToArray()));
        Assert.That(s.NestedAbsmax, Is.EqualTo(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(file.Get(w + ".nested_absmax").Data).ToArray()));
    }

    [TestCase("tiny_llama")]
    [TestCase("tiny_gpt2")]
    public void Int8_LogitsEqualQuantizingOnLoad(string model)
    {
        string dir = WriteBnbCheckpoint(_dir, model, new QuantOptions(QuantMethod.Int8Rowwise), EightBitConfig());
        using var stored = CausalLM.Load(dir);
        using var onLoad = CausalLM.Load(Reference(model), new QuantConfig(QuantType.Int8));
        Assert.That(Logits(stored), Is.EqualTo(Logits(onLoad)));
        Assert.That(stored.NamedModules().Count(m => m.Module is Linear8bitLt), Is.EqualTo(model == "tiny_llama" ? 14 : 8));
    }

    [Test]
    public void QuantizeHead_QuantizesTheStoredFp32HeadInTheCheckpointsFormat()
    {
        string dir = WriteBnbCheckpoint(_dir, "tiny_llama", new QuantOptions(QuantMethod.Nf4, 64, true), FourBitConfig("nf4", true));
        using var stored = CausalLM.Load(dir, new QuantConfig(QuantizeHead: true));
        using var onLoad = CausalLM.Load(Reference("tiny_llama"), new QuantConfig(QuantType.Nf4, DoubleQuant: true, QuantizeHead: true,
                                                                             ComputeDtype: NqComputeType.F16));
        Assert.That(stored.GetSubmodule("lm_head"), Is.InstanceOf<Linear4bit>());
        Assert.That(Logits(stored), Is.EqualTo(Logits(onLoad)));
    }

    [Test]
    public void ComputeDtype_FromTheConfigUnlessAsked()
    {
        var config = FourBitConfig("nf4", true);
        config["bnb_4bit_compute_dtype"] = "bfloat16";
        string dir = WriteBnbCheckpoint(_dir, "tiny_gpt2", new QuantOptions(QuantMethod.Nf4, 64, true), config);
        using (var lm = CausalLM.Load(dir))
            Assert.That(lm.NamedModules().Select(m => m.Module).OfType<Linear4bit>().Select(l => l.ComputeDtype), Is.All.EqualTo(NqComputeType.F32));
        string f16 = WriteBnbCheckpoint(_dir, "tiny_gpt2", new QuantOptions(QuantMethod.Nf4, 64, true), FourBitConfig("nf4", true), name: "f16");
        using var asked = CausalLM.Load(f16, new QuantConfig(ComputeDtype: NqComputeType.F32));
        Assert.That(asked.NamedModules().Select(m => m.Module).OfType<Linear4bit>().Select(l => l.ComputeDtype), Is.All.EqualTo(NqComputeType.F32));
    }

    [Test]
    public void QuantMismatch_IsRejectedNamingTheCheckpointAndItsFormat()
    {
        string dir = WriteBnbCheckpoint(_dir, "tiny_llama", new QuantOptions(QuantMethod.Nf4, 64, true), FourBitConfig("nf4", true));
        Assert.That(() => CausalLM.Load(dir, new QuantConfig(QuantType.Int8)),
            Throws.ArgumentException.With.Message.Contains(dir).And.Message.Contains("stored quantized as nf4").And.Message.Contains("--quant int8"));
        using var same = CausalLM.Load(dir, new QuantConfig(QuantType.Nf4));
        Assert.That(ModelLoader.ResolveQuant(dir, null, QuantType.None), Is.EqualTo(QuantType.Nf4));
        Assert.That(() => ModelLoader.ResolveQuant(dir, "none", QuantType.None), Throws.ArgumentException.With.Message.Contains("--quant none"));
        Assert.That(ModelLoader.ResolveQuant(Reference("tiny_llama"), null, QuantType.Nf4), Is.EqualTo(QuantType.Nf4));
    }

    [Test]
    public void ConfigSaysFp4ButTensorsAreNf4_ErrorNamesTheTensor()
    {
        string dir = WriteBnbCheckpoint(_dir, "tiny_llama", new QuantOptions(QuantMethod.Nf4, 64), FourBitConfig("fp4", false));
        Assert.That(() => CausalLM.Load(dir), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("model.layers.0.").And.Message.Contains("is stored nf4, but quantization_config says fp4"));
    }

    [Test]
    public void Conv1DStoredInInOutOrientation_ErrorExplainsTheLayout()
    {
        string dir = WriteBnbCheckpoint(_dir, "tiny_gpt2", new QuantOptions(QuantMethod.Nf4, 64), FourBitConfig("nf4", false),
                                        storedShape: (_, s) => [s[1], s[0]]);
        Assert.That(() => CausalLM.Load(dir), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("'transformer.h.0.attn.c_attn.weight' is stored quantized with shape [64, 192]").And.Message.Contains("(out, in)"));
    }

    [Test]
    public void UnsupportedQuantMethod_IsNamed()
    {
        string dir = WriteBnbCheckpoint(_dir, "tiny_llama", new QuantOptions(QuantMethod.Nf4, 64), new JsonObject { ["quant_method"] = "gptq", ["bits"] = 4 });
        Assert.That(() => CausalLM.Load(dir), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("quant_method 'gptq' is not supported"));
    }

    [Test]
    public async Task Cli_QuantOmittedLoadsAsStored_ExplicitMismatchExits1()
    {
        string dir = WriteBnbCheckpoint(_dir, "tiny_llama", new QuantOptions(QuantMethod.Nf4, 64, true), FourBitConfig("nf4", true));
        File.Copy(NativeQuant.Assets.Path("stories15M/tokenizer.bin"), Path.Combine(dir, "tokenizer.bin"));
        string[] gen = ["generate", "--model", dir, "--temperature", "0", "--max-new-tokens", "6"];
        var omitted = await NqRun.Invoke(gen);
        var same = await NqRun.Invoke([.. gen, "--quant", "nf4"]);
        Assert.That(omitted.Code, Is.EqualTo(0), omitted.Err);
        Assert.That(same.Out, Is.EqualTo(omitted.Out));
        foreach (var q in new[] { "none", "int8" })
        {
            var bad = await NqRun.Invoke([.. gen, "--quant", q]);
            Assert.That(bad.Code, Is.EqualTo(1));
            Assert.That(bad.Err, Does.Contain($"stored quantized as nf4").And.Contain($"--quant {q} does not match"));
        }
    }
}
