using NativeQuant.IO;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Peft;

/// <summary>
/// PEFT's adapter directory: adapter_config.json plus adapter_model.safetensors holding fp32 tensors under
/// PEFT's saved names — the in-memory names without the adapter segment, e.g.
/// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" (r, in) and "...lora_B.weight" (out, r) —
/// with metadata {"format": "pt"}. Loading checks the adapter against the base model before copying anything.
/// </summary>
public static class PeftAdapterFiles
{
    public const string WeightsFileName = "adapter_model.safetensors";
    private const string AdapterSegment = "." + LoraLinear.AdapterName;

    public static void Save(PeftModel model, string directory)
    {
        Directory.CreateDirectory(directory);
        var writer = new SafeTensorsWriter();
        writer.Metadata["format"] = "pt";
        foreach (var (key, t) in AdapterState(model))
            writer.AddValues(key, TensorDType.F32, t.Shape.ToArray().Select(d => (long)d).ToList(), t.Data.ToArray());
        writer.Save(Path.Combine(directory, WeightsFileName));
        byte[] json = System.Text.Encoding.UTF8.GetBytes(AdapterConfigJson.Serialize(model.Config));
        AtomicFile.Write(Path.Combine(directory, AdapterConfigJson.FileName), s => s.Write(json));
    }

    /// <summary>The tensors an adapter file holds, by saved name: LoRA A/B, biases the bias policy trains, and
    /// the parameters of modules_to_save (as PEFT, which saves them under the module's own path).</summary>
    public static OrderedDictionary<string, Tensor> AdapterState(PeftModel model)
    {
        var state = new OrderedDictionary<string, Tensor>();
        foreach (var (name, p) in model.NamedParameters())
        {
            bool lora = name.Contains(".lora_A.", StringComparison.Ordinal) || name.Contains(".lora_B.", StringComparison.Ordinal);
            bool bias = model.Config.Bias != "none" && p.RequiresGrad && name.EndsWith(".bias", StringComparison.Ordinal);
            if (lora || bias) state[SavedName(name)] = p;
        }
        const string prefix = "base_model.model.";
        foreach (var path in model.BaseModel.ModulesToSavePaths)
            foreach (var (local, t) in model.Model.GetSubmodule(path).StateDict())
                state[prefix + path + "." + local] = t;
        return state;
    }

    /// <summary>PEFT's key.replace(".default", "").</summary>
    public static string SavedName(string inMemoryName) => inMemoryName.Replace(AdapterSegment, "", StringComparison.Ordinal);

    public static PeftModel Load(Module model, string directory, bool isTrainable)
    {
        string configPath = Path.Combine(directory, AdapterConfigJson.FileName);
        string weightsPath = Path.Combine(directory, WeightsFileName);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{directory}: no {AdapterConfigJson.FileName} (not a PEFT adapter directory)", configPath);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"{directory}: no {WeightsFileName} (only safetensors adapters are read)", weightsPath);
        var config = AdapterConfigJson.Parse(File.ReadAllText(configPath), configPath) with { InferenceMode = !isTrainable };

        PeftModel peft;
        try { peft = PeftModel.GetPeftModel(model, config); }
        catch (ArgumentException e) { throw new InvalidDataException($"{configPath}: the adapter does not fit the base model: {e.Message}", e); }
        try
        {
            using var file = SafeTensorsFile.Open(weightsPath);
            CopyWeights(peft, file, config);
        }
        catch
        {
            peft.BaseModel.Unload();  // the caller's model gets its original layers back
            peft.Dispose();
            throw;
        }
        if (!isTrainable)
        {
            peft.RequiresGrad(false);
            peft.Eval();  // as PEFT's from_pretrained: inference, dropout off
        }
        return peft;
    }

    private static void CopyWeights(PeftModel peft, SafeTensorsFile file, LoraConfig config)
    {
        var expected = AdapterState(peft);
        var missing = expected.Keys.Where(k => !file.TryGet(k, out _)).ToList();
        var unexpected = file.Names.Where(k => !expected.ContainsKey(k)).ToList();
        if (unexpected.Count > 0)
            throw new InvalidDataException($"{file.SourcePath}: weights for modules the base model (with target_modules {config.TargetModules}) does not have: [{string.Join(", ", unexpected.Take(8))}{(unexpected.Count > 8 ? ", ..." : "")}]");
        if (missing.Count > 0)
            throw new InvalidDataException($"{file.SourcePath}: missing weights [{string.Join(", ", missing.Take(8))}{(missing.Count > 8 ? ", ..." : "")}]");
        foreach (var (key, dst) in expected)
        {
            var src = file.Get(key);
            if (!src.Shape.Select(d => (int)d).SequenceEqual(dst.Shape.ToArray()))
                throw new InvalidDataException($"{file.SourcePath}: '{key}' is {src.ShapeText}, the model expects {dst.ShapeString}{ShapeHint(key, src, config)}");
            if (!src.DType.IsFloating())
                throw new InvalidDataException($"{file.SourcePath}: '{key}' has dtype {src.DType.SafeTensorsName()}, expected a floating-point type");
            TensorConvert.ToFloat32(src.DType, src.Data, dst.Data);
        }
    }

    private static string ShapeHint(string key, TensorInfo src, LoraConfig config)
    {
        if (src.Shape.Count != 2) return "";
        if (key.EndsWith(".lora_A.weight", StringComparison.Ordinal) && src.Shape[0] != config.R)
            return $" (rank mismatch: adapter_config.json has r={config.R}, the tensor has rank {src.Shape[0]})";
        if (key.EndsWith(".lora_B.weight", StringComparison.Ordinal) && src.Shape[1] != config.R)
            return $" (rank mismatch: adapter_config.json has r={config.R}, the tensor has rank {src.Shape[1]})";
        return " (the adapter was trained on a base model with different layer sizes)";
    }
}
