using System.CommandLine;
using NativeQuant.NN;
using NativeQuant.Peft;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq merge`: fold a LoRA adapter into its base model and write an fp32 Hugging Face model directory.</summary>
public static class MergeCommand
{
    /// <summary>Tokenizer files ModelLoader finds in a model directory (see Tokenizer.Load).</summary>
    private static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "encoder.json", "vocab.bpe", "tokenizer.bin"];

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Base model: llama2.c .bin, HF model directory, or stories15M", Required = true };
        var quant = new Option<string>("--quant") { Description = "How the base is loaded before merging: nf4 | fp4 | int8 | none", DefaultValueFactory = _ => "none" };
        var doubleQuant = new Option<bool>("--double-quant") { Description = "Quantize the 4-bit absmax scales too" };
        var blockSize = new Option<int>("--blocksize") { Description = "4-bit block size", DefaultValueFactory = _ => 64 };
        var adapter = ModelInput.AdapterOption();
        adapter.Required = true;
        var output = new Option<string>("--output") { Description = "Output model directory (must not exist or be empty)", Required = true };
        var command = new Command("merge", "Merge a LoRA adapter into its base model and save the result") { model, quant, doubleQuant, blockSize, adapter, output };
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            string outDir = ctx.Value(output)!;
            // Checked before the (slow) load; MergedModelWriter checks again right before writing.
            if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
                throw new UserException($"--output {outDir}: directory exists and is not empty");
            var q = new QuantConfig(QuantConfig.Parse(ctx.Value(quant)!), ctx.Value(doubleQuant), ctx.Value(blockSize));
            using var loaded = ModelInput.Load(ctx.Value(model)!, q, ctx.Value(adapter));
            var merge = loaded.Peft!.MergeAndUnload();
            // The PeftModel is empty after unloading; the merged model is ours to dispose.
            using var merged = loaded.Lm;
            foreach (var e in merge.RoundingErrors) ctx.Out.WriteLine(e);
            MergedModelWriter.Save(merged, outDir, FindTokenizerFiles(ctx.Value(model)!));
            ctx.Out.WriteLine($"merged {loaded.Peft.Config.TargetModules} into {outDir} (fp32)");
            return Task.FromResult(CommandRunner.Ok);
        });
        return command;
    }

    /// <summary>The base's tokenizer files: those in a model directory, or tokenizer.bin next to a checkpoint file.</summary>
    private static IEnumerable<string> FindTokenizerFiles(string model)
    {
        string path = ModelInput.Resolve(model);
        string dir = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        var names = Directory.Exists(path) ? TokenizerFiles : ["tokenizer.bin"];
        return names.Select(n => Path.Combine(dir, n)).Where(File.Exists);
    }
}
