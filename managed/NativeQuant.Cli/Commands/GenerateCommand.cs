using System.CommandLine;
using NativeQuant.Generation;
using NativeQuant.Models;
using NativeQuant.NN;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq generate`: sample a continuation, streaming text, then report tokens/s.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "llama2.c .bin, HF model directory, or stories15M", Required = true };
        var quant = new Option<string>("--quant") { Description = "nf4 | fp4 | int8 | none (a pre-quantized checkpoint loads as stored)", DefaultValueFactory = _ => "none" };
        var doubleQuant = new Option<bool>("--double-quant") { Description = "Quantize the 4-bit absmax scales too" };
        var blockSize = new Option<int>("--blocksize") { Description = "4-bit block size", DefaultValueFactory = _ => 64 };
        var quantizeHead = ModelInput.QuantizeHeadOption();
        var computeDtype = ModelInput.ComputeDtypeOption();
        var adapter = ModelInput.AdapterOption();
        var prompt = new Option<string>("--prompt") { Description = "Prompt text (BOS is prepended)", DefaultValueFactory = _ => "" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens to generate", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 1f };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling mass", DefaultValueFactory = _ => 1f };
        var topK = new Option<int>("--top-k") { Description = "0 = no top-k filter", DefaultValueFactory = _ => 0 };
        var seed = new Option<ulong>("--seed") { Description = "Sampling seed", DefaultValueFactory = _ => 0UL };
        var command = new Command("generate", "Generate text with a causal language model")
            { model, quant, doubleQuant, blockSize, quantizeHead, computeDtype, adapter, prompt, maxNew, temperature, topP, topK, seed };
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            var q = new QuantConfig(ModelInput.Quant(ctx, quant, ctx.Value(model)!), ctx.Value(doubleQuant), ctx.Value(blockSize),
                                    QuantizeHead: ctx.Value(quantizeHead), ComputeDtype: ModelInput.ComputeDtype(ctx, computeDtype));
            using var loaded = ModelInput.Load(ctx.Value(model)!, q, ctx.Value(adapter));
            var lm = loaded.Lm;
            if (lm.Tokenizer == null) throw new UserException($"--model {ctx.Value(model)}: no tokenizer found next to the weights (tokenizer.json / tokenizer.bin)");
            var options = new GenerationOptions(ctx.Value(maxNew), ctx.Value(temperature), ctx.Value(topP), ctx.Value(topK), ctx.Value(seed));
            string text = ctx.Value(prompt)!;
            ctx.Out.Write(text);
            var result = lm.Generate(text, options, piece => { ctx.Out.Write(piece); ctx.Out.Flush(); });
            ctx.Out.WriteLine();
            ctx.Error.WriteLine($"prompt {result.PromptIds.Length} tokens ({result.PrefillTokensPerSecond:F0} tok/s), " +
                                $"generated {result.Tokens.Length} tokens ({result.DecodeTokensPerSecond:F1} tok/s)");
            return Task.FromResult(CommandRunner.Ok);
        });
        return command;
    }
}
