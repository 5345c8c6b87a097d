using System.CommandLine;
using NativeQuant.NN;
using NativeQuant.Peft;
using NativeQuant.Quantization;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq merge`: fold a LoRA adapter into its base model and write a Hugging Face model directory, fp32 or
/// (--requantize) pre-quantized in bitsandbytes' layout with the requantization error per layer and in total.</summary>
public static class MergeCommand
{
    /// <summary>Tokenizer files ModelLoader finds in a model directory (see Tokenizer.Load).</summary>
    private static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "encoder.json", "vocab.bpe", "tokenizer.bin"];

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Base model: llama2.c .bin, HF model directory, or stories15M", Required = true };
        var quant = new Option<string>("--quant") { Description = "How the base is loaded before merging: nf4 | fp4 | int8 | none (a pre-quantized checkpoint loads as stored)", DefaultValueFactory = _ => "none" };
        var doubleQuant = new Option<bool>("--double-quant") { Description = "Quantize the 4-bit absmax scales too" };
        var blockSize = new Option<int>("--blocksize") { Description = "4-bit block size", DefaultValueFactory = _ => 64 };
        var adapter = ModelInput.AdapterOption();
        adapter.Required = true;
        var output = new Option<string>("--output") { Description = "Output model directory (must not exist or be empty)", Required = true };
        var requantize = new Option<string>("--requantize")
        {
            Description = "Save the merged model quantized (bitsandbytes layout): in the base's format, or nf4 | fp4 | int8 (with --double-quant / --blocksize when it differs from the base's)",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var command = new Command("merge", "Merge a LoRA adapter into its base model and save the result") { model, quant, doubleQuant, blockSize, adapter, output, requantize };
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            string outDir = ctx.Value(output)!;
            // Checked before the (slow) load; MergedModelWriter checks again right before writing.
            if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
                throw new UserException($"--output {outDir}: directory exists and is not empty");
            var q = new QuantConfig(ModelInput.Quant(ctx, quant, ctx.Value(model)!), ctx.Value(doubleQuant), ctx.Value(blockSize));
            // --requantize alone: the base's format; with a value: that one (the base's settings when it is the base's type).
            string? requantizeAs = ctx.Parse.GetResult(requantize) is null ? null : ctx.Value(requantize) ?? "";
            var outFormat = requantizeAs is null or "" ? null : QuantConfig.Parse(requantizeAs) switch
            {
                QuantType.None => throw new UserException("--requantize none: expected nf4, fp4 or int8 (omit --requantize for an fp32 output)"),
                var t when t == q.Type => null,
                var t => new QuantConfig(t, ctx.Value(doubleQuant), ctx.Value(blockSize)),
            };
            using var loaded = ModelInput.Load(ctx.Value(model)!, q, ctx.Value(adapter));
            var peft = loaded.Peft!;
            string targets = peft.Config.TargetModules!.ToString();
            // The PeftModel is empty after merging; the merged model is ours to dispose.
            using var merged = loaded.Lm;
            if (requantizeAs == null)
            {
                foreach (var e in peft.MergeAndUnload().RoundingErrors) ctx.Out.WriteLine(e);
                MergedModelWriter.Save(merged, outDir, FindTokenizerFiles(ctx.Value(model)!));
                ctx.Out.WriteLine($"merged {targets} into {outDir} (fp32)");
                return Task.FromResult(CommandRunner.Ok);
            }
            RequantizedMergeResult r;
            try { r = RequantizedMerge.Apply(peft, outFormat); }
            catch (ArgumentException e) { throw new UserException($"--requantize: {e.Message}"); }
            foreach (var e in r.Errors) ctx.Out.WriteLine(e);
            ctx.Out.WriteLine(r.Total);
            MergedModelWriter.Save(merged, outDir, FindTokenizerFiles(ctx.Value(model)!), BnbQuantizationConfig.From(r.Format));
            ctx.Out.WriteLine($"merged {targets} into {outDir} ({r.Format.Type.ToString().ToLowerInvariant()}{(r.Format.DoubleQuant ? " + double quant" : "")}, bitsandbytes layout)");
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
