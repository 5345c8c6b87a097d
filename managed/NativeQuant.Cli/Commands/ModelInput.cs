using System.CommandLine;
using NativeQuant.Interop;
using NativeQuant.IO;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Peft;

namespace NativeQuant.Cli.Commands;

/// <summary>Resolves a model argument: a fetched asset name ("stories15M") or a path to a tensor container.</summary>
public static class ModelInput
{
    private static readonly Dictionary<string, string> KnownModels = new(StringComparer.OrdinalIgnoreCase)
    {
        ["stories15M"] = "stories15M/model.bin",
    };

    public static string Resolve(string input) =>
        KnownModels.TryGetValue(input, out var asset) && !File.Exists(input) && !Directory.Exists(input) ? Assets.Path(asset) : input;

    public static ITensorSource Open(string input, string optionName)
    {
        string path = Resolve(input);
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new UserException($"{optionName} {input}: no such file or directory (expected a .safetensors file, a llama2.c .bin, a Hugging Face model directory or one of: {string.Join(", ", KnownModels.Keys)})");
        return TensorSources.Open(path);
    }

    /// <summary>The quantization to load <paramref name="model"/> with: --quant when given (it must match a
    /// pre-quantized checkpoint), else the checkpoint's own format, else --quant's default.</summary>
    public static QuantType Quant(CommandContext ctx, Option<string> quant, string model) =>
        ModelLoader.ResolveQuant(Resolve(model), ctx.Parse.GetResult(quant) is { Implicit: false } ? ctx.Value(quant) : null,
                                 QuantConfig.Parse(ctx.Value(quant)!));

    /// <summary>--pack-head of the training commands (QuantConfig.PackHead).</summary>
    public static Option<bool> PackHeadOption() => new("--pack-head")
    {
        Description = "keep a packed fp16 copy of a frozen fp32 output head under f16 compute: about the head's fp32 size in memory for ~10% of its time (default true)",
        DefaultValueFactory = _ => true,
    };

    /// <summary>--quantize-head of the commands that load a model for inference (QuantConfig.QuantizeHead).</summary>
    public static Option<bool> QuantizeHeadOption() => new("--quantize-head")
    {
        Description = "Quantize the output head too, in the --quant format (a tied head gets a quantized copy; the embedding stays fp32)",
    };

    /// <summary>--compute-dtype of the commands that load or train a 4-bit model (QuantConfig.ComputeDtype).</summary>
    public static Option<string?> ComputeDtypeOption() => new("--compute-dtype")
    {
        Description = "f32 | f16 | int8: precision of the NF4/FP4 matmuls (bitsandbytes' bnb_4bit_compute_dtype; default f32, or float16 when a pre-quantized checkpoint says so). int8: SwitchBack-style int8 products (~1% error, fastest on VNNI CPUs); the fp32 head then computes in f16",
    };

    /// <summary>The --compute-dtype value, or null when not given.</summary>
    public static NqComputeType? ComputeDtype(CommandContext ctx, Option<string?> option)
    {
        if (ctx.Value(option) is not { } text) return null;
        try { return QuantConfig.ParseComputeDtype(text); }
        catch (ArgumentException e) { throw new UserException("--compute-dtype: " + e.Message); }
    }

    /// <summary>--adapter of the commands that run a model: a PEFT adapter directory applied on top of it.</summary>
    public static Option<string> AdapterOption() => new("--adapter")
    {
        Description = "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) to apply to the model",
    };

    /// <summary>Loads the base model and, when <paramref name="adapter"/> is given, attaches it for inference.</summary>
    public static LoadedModel Load(string model, QuantConfig quant, string? adapter)
    {
        var lm = CausalLM.Load(model, quant);
        if (adapter == null) return new LoadedModel(lm, null);
        try { return new LoadedModel(lm, PeftModel.FromPretrained(lm, adapter, isTrainable: false)); }
        catch
        {
            lm.Dispose();
            throw;
        }
    }

    /// <summary>Rejects writing over the file being read (it is memory-mapped while we write).</summary>
    public static void RequireDistinct(string input, string output)
    {
        if (string.Equals(Path.GetFullPath(Resolve(input)), Path.GetFullPath(output), StringComparison.Ordinal))
            throw new UserException($"--output {output}: must differ from --input (the input is read while the output is written)");
    }
}

/// <summary>A loaded model, with the adapter attached in place when there is one (<see cref="Peft"/> then owns <see cref="Lm"/>).</summary>
public sealed class LoadedModel(CausalLM lm, PeftModel? peft) : IDisposable
{
    public CausalLM Lm { get; } = lm;
    public PeftModel? Peft { get; } = peft;

    public void Dispose() => ((Module?)Peft ?? Lm).Dispose();
}
