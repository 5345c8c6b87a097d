using System.CommandLine;
using NativeQuant.IO;

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

    /// <summary>--quantize-head of the commands that load a model for inference (QuantConfig.QuantizeHead).</summary>
    public static Option<bool> QuantizeHeadOption() => new("--quantize-head")
    {
        Description = "Quantize the output head too, in the --quant format (a tied head gets a quantized copy; the embedding stays fp32)",
    };

    /// <summary>Rejects writing over the file being read (it is memory-mapped while we write).</summary>
    public static void RequireDistinct(string input, string output)
    {
        if (string.Equals(Path.GetFullPath(Resolve(input)), Path.GetFullPath(output), StringComparison.Ordinal))
            throw new UserException($"--output {output}: must differ from --input (the input is read while the output is written)");
    }
}
