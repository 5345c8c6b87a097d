using System.Text.Json;
using NativeQuant.Autograd;
using NativeQuant.IO;
using NativeQuant.Models.Gpt2;
using NativeQuant.Models.Llama;
using NativeQuant.NN;
using NativeQuant.Quantization;
using NativeQuant.Tensors;
using NativeQuant.Tokenizers;

namespace NativeQuant.Models;

/// <summary>Builds a <see cref="CausalLM"/> from a llama2.c checkpoint, an HF directory (LlamaForCausalLM,
/// GPT2LMHeadModel) or a named asset, validating the config against the weights.</summary>
public static class ModelLoader
{
    /// <summary>Asset names accepted in place of a path.</summary>
    private static readonly Dictionary<string, (string Model, string Tokenizer)> NamedAssets = new(StringComparer.OrdinalIgnoreCase)
    {
        ["stories15M"] = ("stories15M/model.bin", "stories15M/tokenizer.bin"),
    };

    public static CausalLM Load(string path, QuantConfig quant)
    {
        string? tokenizerPath = null;
        if (NamedAssets.TryGetValue(path, out var asset))
        {
            path = Assets.Path(asset.Model);
            tokenizerPath = Assets.Path(asset.Tokenizer);
        }
        using var source = TensorSources.Open(path);
        var model = source switch
        {
            Llama2Checkpoint ckpt => LoadLlama2(ckpt, quant),
            HfDirectory dir => LoadHf(dir, quant),
            _ => throw new InvalidDataException($"{path}: a bare safetensors file has no config; pass the model directory holding config.json"),
        };
        try
        {
            model.Tokenizer = LoadTokenizer(tokenizerPath ?? TokenizerNextTo(path));
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static string? TokenizerNextTo(string path)
    {
        if (Directory.Exists(path)) return path;
        string candidate = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!, "tokenizer.bin");
        return File.Exists(candidate) ? candidate : null;
    }

    private static ITokenizer? LoadTokenizer(string? path)
    {
        if (path == null) return null;
        try { return Tokenizer.Load(path); }
        catch (FileNotFoundException) { return null; }
    }

    private static CausalLM LoadLlama2(Llama2Checkpoint ckpt, QuantConfig quant)
    {
        var c = ckpt.Config;
        var config = new LlamaConfig(c.VocabSize, c.Dim, c.HiddenDim, c.NLayers, c.NHeads, c.NKvHeads, c.SeqLen,
                                     RmsNormEps: 1e-5f, RopeTheta: 10000f, TieWordEmbeddings: c.SharedClassifier);
        config.Validate(ckpt.SourcePath);
        return Build(ckpt, quant, w => new LlamaForCausalLM(config, w), RopePermutation.ToRotateHalf(config));
    }

    /// <summary>How the checkpoint at <paramref name="path"/> is stored quantized (config.json's bitsandbytes
    /// quantization_config), or null for unquantized checkpoints, llama2.c files and named assets.</summary>
    public static BnbQuantizationConfig? StoredQuantization(string path)
    {
        string config = System.IO.Path.Combine(path, HfDirectory.ConfigFile);
        return NamedAssets.ContainsKey(path) || !File.Exists(config) ? null : BnbQuantizationConfig.Read(HfDirectory.ReadJson(config), config);
    }

    /// <summary>The quantization to load <paramref name="path"/> with when <paramref name="requested"/> was asked
    /// for (null: not asked): a pre-quantized checkpoint loads in its own format and any other request, "none"
    /// included, is an error; otherwise the request, or <paramref name="fallback"/>.</summary>
    public static QuantType ResolveQuant(string path, string? requested, QuantType fallback)
    {
        QuantType? asked = requested == null ? null : QuantConfig.Parse(requested);
        var stored = StoredQuantization(path);
        if (stored != null && asked is { } a && a != stored.Type) throw stored.Mismatch(path, requested!);
        return asked ?? stored?.Type ?? fallback;
    }

    private static CausalLM LoadHf(HfDirectory dir, QuantConfig quant)
    {
        var json = new ConfigReader(dir.Config, System.IO.Path.Combine(dir.SourcePath, HfDirectory.ConfigFile));
        var stored = BnbQuantizationConfig.Read(dir.Config, json.Path);
        if (stored != null)
        {
            quant = stored.Effective(quant, dir.SourcePath);
            stored = stored with { ComputeDtype = quant.Compute };  // --compute-dtype overrides the file's
        }
        string arch = json.Architecture();
        switch (arch)
        {
            case "LlamaForCausalLM":
            {
                json.RequireNull("rope_scaling", "rope scaling variants are not supported");
                int heads = json.Int("num_attention_heads");
                var config = new LlamaConfig(json.Int("vocab_size"), json.Int("hidden_size"), json.Int("intermediate_size"),
                    json.Int("num_hidden_layers"), heads, json.Int("num_key_value_heads", heads), json.Int("max_position_embeddings"),
                    json.Float("rms_norm_eps", 1e-6f), json.Float("rope_theta", 10000f), json.Bool("tie_word_embeddings", false));
                if (json.Has("head_dim") && json.Int("head_dim") != config.HeadDim)
                    throw new InvalidDataException($"{json.Path}: head_dim {json.Int("head_dim")} differs from hidden_size / num_attention_heads = {config.HeadDim} (not supported)");
                config.Validate(json.Path);
                return Build(dir, quant, w => new LlamaForCausalLM(config, w), prequantized: stored);
            }
            case "GPT2LMHeadModel":
            {
                int nEmbd = json.Int("n_embd");
                var config = new Gpt2Config(json.Int("vocab_size"), json.Int("n_positions"), nEmbd, json.Int("n_layer"), json.Int("n_head"),
                                            json.Float("layer_norm_epsilon", 1e-5f)) { NInner = json.Int("n_inner", 4 * nEmbd) };
                string act = json.String("activation_function", "gelu_new");
                if (act is not ("gelu_new" or "gelu_pytorch_tanh"))
                    throw new InvalidDataException($"{json.Path}: activation_function '{act}' is not supported (expected gelu_new)");
                config.Validate(json.Path);
                // Checkpoints saved from GPT2Model lack the "transformer." prefix.
                Func<string, string>? rename = dir.TryGet("transformer.wte.weight", out _) ? null
                    : n => n.StartsWith("transformer.", StringComparison.Ordinal) ? n["transformer.".Length..] : n;
                return Build(dir, quant, w => new Gpt2LMHeadModel(config, w), rename: rename, prequantized: stored);
            }
            default:
                throw new NotSupportedException($"{json.Path}: unsupported architecture '{arch}' (supported: LlamaForCausalLM, GPT2LMHeadModel)");
        }
    }

    private static CausalLM Build(ITensorSource source, QuantConfig quant, Func<WeightFactory, CausalLM> create,
                                  Action<string, Tensor>? fixup = null, Func<string, string>? rename = null,
                                  BnbQuantizationConfig? prequantized = null)
    {
        var weights = new CheckpointWeights(source, quant, fixup, rename, prequantized);
        try
        {
            var model = create(weights);
            model.Eval();
            model.RequiresGrad(false);
            return model;
        }
        catch
        {
            weights.DisposeCreated();
            throw;
        }
    }

    /// <summary>Typed access to config.json fields with errors naming the file and field.</summary>
    private sealed class ConfigReader(JsonElement root, string path)
    {
        public string Path => path;

        public bool Has(string field) => root.TryGetProperty(field, out var v) && v.ValueKind != JsonValueKind.Null;

        public string Architecture()
        {
            if (root.TryGetProperty("architectures", out var a) && a.ValueKind == JsonValueKind.Array && a.GetArrayLength() > 0)
                return a[0].GetString() ?? "";
            return String("model_type", "") switch
            {
                "llama" => "LlamaForCausalLM",
                "gpt2" => "GPT2LMHeadModel",
                var t => throw new NotSupportedException($"{path}: no 'architectures' and unsupported model_type '{t}'"),
            };
        }

        public int Int(string field, int? fallback = null)
        {
            if (!Has(field)) return fallback ?? throw new InvalidDataException($"{path}: required field '{field}' is missing");
            var v = root.GetProperty(field);
            return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i
                : throw new InvalidDataException($"{path}: field '{field}' must be an integer, got {v.GetRawText()}");
        }

        public float Float(string field, float fallback)
        {
            if (!Has(field)) return fallback;
            var v = root.GetProperty(field);
            return v.ValueKind == JsonValueKind.Number ? v.GetSingle()
                : throw new InvalidDataException($"{path}: field '{field}' must be a number, got {v.GetRawText()}");
        }

        public bool Bool(string field, bool fallback)
        {
            if (!Has(field)) return fallback;
            var v = root.GetProperty(field);
            return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean()
                : throw new InvalidDataException($"{path}: field '{field}' must be true or false, got {v.GetRawText()}");
        }

        public string String(string field, string fallback)
        {
            if (!Has(field)) return fallback;
            var v = root.GetProperty(field);
            return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new InvalidDataException($"{path}: field '{field}' must be a string");
        }

        public void RequireNull(string field, string why)
        {
            if (Has(field)) throw new NotSupportedException($"{path}: field '{field}' is set: {why}");
        }
    }
}
