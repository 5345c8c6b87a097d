using System.Runtime.InteropServices;
using System.Text.Json;
using NativeQuant.Autograd;
using NativeQuant.IO;
using NativeQuant.Models;
using NativeQuant.Models.Gpt2;
using NativeQuant.Models.Llama;
using NativeQuant.NN;
using NativeQuant.Quantization;
using NativeQuant.Tensors;

namespace NativeQuant.Peft;

/// <summary>
/// Writes a (merged) <see cref="CausalLM"/> as a Hugging Face model directory that <see cref="CausalLM.Load"/>
/// reads back: config.json, model.safetensors with fp32 weights under HF names, and the given tokenizer files.
/// Quantized layers are dequantized, or, with <c>quantization</c>, written as they are in bitsandbytes' layout with
/// config.json's quantization_config, as transformers saves a bitsandbytes model (<see cref="BnbLayers"/>). The
/// directory is built next to its destination and renamed into place, so a failure never leaves a half-written
/// model behind.
/// </summary>
public static class MergedModelWriter
{
    public static void Save(CausalLM model, string directory, IEnumerable<string> tokenizerFiles, BnbQuantizationConfig? quantization = null)
    {
        string target = Path.GetFullPath(directory);
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            throw new IOException($"{directory}: output directory exists and is not empty");
        string staging = Path.Combine(Path.GetDirectoryName(target)!, $".partial-{Path.GetFileName(target)}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            var config = Config(model);
            if (quantization != null) config[BnbQuantizationConfig.Field] = quantization.ToJson();
            AtomicFile.Write(Path.Combine(staging, HfDirectory.ConfigFile), s => JsonSerializer.Serialize(s, config, JsonOptions));
            WriteWeights(model, Path.Combine(staging, HfDirectory.SingleFile), quantization);
            foreach (var file in tokenizerFiles) File.Copy(file, Path.Combine(staging, Path.GetFileName(file)));
            if (Directory.Exists(target)) Directory.Delete(target);
            Directory.Move(staging, target);
        }
        catch
        {
            Directory.Delete(staging, recursive: true);
            throw;
        }
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>config.json with exactly the fields ModelLoader reads for the model's architecture.</summary>
    private static Dictionary<string, object> Config(CausalLM model) => model switch
    {
        LlamaForCausalLM { Config: var c } when c.RopeStyle == RopeStyle.RotateHalf => new()
        {
            ["architectures"] = new[] { "LlamaForCausalLM" }, ["model_type"] = "llama",
            ["vocab_size"] = c.VocabSize, ["hidden_size"] = c.HiddenSize, ["intermediate_size"] = c.IntermediateSize,
            ["num_hidden_layers"] = c.NumHiddenLayers, ["num_attention_heads"] = c.NumAttentionHeads,
            ["num_key_value_heads"] = c.NumKeyValueHeads, ["max_position_embeddings"] = c.MaxPositionEmbeddings,
            ["rms_norm_eps"] = c.RmsNormEps, ["rope_theta"] = c.RopeTheta, ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = c.TieWordEmbeddings, ["torch_dtype"] = "float32",
        },
        Gpt2LMHeadModel { Config: var c } => new()
        {
            ["architectures"] = new[] { "GPT2LMHeadModel" }, ["model_type"] = "gpt2",
            ["vocab_size"] = c.VocabSize, ["n_positions"] = c.NPositions, ["n_embd"] = c.NEmbd, ["n_layer"] = c.NLayer,
            ["n_head"] = c.NHead, ["n_inner"] = c.NInner, ["layer_norm_epsilon"] = c.LayerNormEpsilon,
            ["activation_function"] = "gelu_new", ["torch_dtype"] = "float32",
        },
        _ => throw new NotSupportedException($"cannot write {model.GetType().Name} as a Hugging Face directory (supported: LlamaForCausalLM with rotate-half RoPE, GPT2LMHeadModel)"),
    };

    private static void WriteWeights(CausalLM model, string path, BnbQuantizationConfig? quantization)
    {
        var dequantized = new List<Tensor>();
        try
        {
            var writer = new SafeTensorsWriter();
            // Parameters are already fp32 under HF names; a tied head shares the embedding and is listed once.
            foreach (var (name, p) in model.NamedParameters()) Add(writer, name, p);
            foreach (var (name, m) in model.NamedModules())
            {
                if (quantization != null && BnbLayers.Components(m, name + ".weight") is { } stored)
                {
                    if (!quantization.Describes(m))
                        throw new InvalidOperationException($"{name} is a {m.GetType().Name} that the quantization_config ({quantization.TypeName}) does not describe");
                    foreach (var c in stored) writer.Add(c.Name, c.DType, c.Shape, c.Data);
                    continue;
                }
                if (Dequantize(m, model is Gpt2LMHeadModel) is not { } w) continue;
                dequantized.Add(w);
                Add(writer, name + ".weight", w);
            }
            writer.Metadata["format"] = "pt";
            writer.Save(path);
        }
        finally
        {
            foreach (var t in dequantized) t.Dispose();
        }
    }

    /// <summary>The fp32 weight of a quantized layer in the checkpoint's layout: (out, in), or (in, out) for
    /// GPT-2, whose quantized layers were all Conv1D (transposed at load like bitsandbytes does).</summary>
    private static Tensor? Dequantize(Module m, bool conv1D)
    {
        if (m is not (Linear4bit or Linear8bitLt)) return null;
        return TensorScope.Unscoped(() =>
        {
            var w = LinearLayers.WeightOutIn(m);
            if (!conv1D) return w;
            using (w)
            {
                using var t = w.TransposeView(0, 1);
                return t.Contiguous();
            }
        });
    }

    private static void Add(SafeTensorsWriter writer, string name, Tensor t) =>
        writer.Add(name, TensorDType.F32, Array.ConvertAll(t.Shape.ToArray(), d => (long)d), (long)t.NumElements * sizeof(float),
                   s => s.Write(MemoryMarshal.AsBytes(t.Data)));
}
