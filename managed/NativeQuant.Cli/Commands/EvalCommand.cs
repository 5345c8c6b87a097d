using System.CommandLine;
using System.Text.Json;
using NativeQuant.Data;
using NativeQuant.Models;
using NativeQuant.NN;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq eval --metric perplexity`: sliding-window perplexity of a text file or embedded dataset.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "llama2.c .bin, HF model directory, or stories15M", Required = true };
        var quant = new Option<string>("--quant") { Description = "nf4 | fp4 | int8 | none (a pre-quantized checkpoint loads as stored)", DefaultValueFactory = _ => "none" };
        var quantizeHead = ModelInput.QuantizeHeadOption();
        var computeDtype = ModelInput.ComputeDtypeOption();
        var adapter = ModelInput.AdapterOption();
        var data = new Option<string>("--data") { Description = "UTF-8 text file to score, or a dataset: moby-dick, sotu (documents joined by blank lines)", Required = true };
        var metric = new Option<string>("--metric") { Description = "perplexity", DefaultValueFactory = _ => "perplexity" };
        var window = new Option<int>("--window") { Description = "Tokens per window (0 = the model's context)" };
        var stride = new Option<int>("--stride") { Description = "Window advance (0 = window)" };
        var json = new Option<bool>("--json") { Description = "Print {\"tokens\",\"nll\",\"perplexity\"} as JSON" };
        var command = new Command("eval", "Evaluate a model on a text file or an embedded dataset") { model, quant, quantizeHead, computeDtype, adapter, data, metric, window, stride, json };
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            if (ctx.Value(metric) != "perplexity") throw new UserException($"--metric {ctx.Value(metric)}: only 'perplexity' is supported");
            string path = ctx.Value(data)!;
            string text;
            try
            {
                text = File.Exists(path) ? File.ReadAllText(path) : string.Join("\n\n", TextDocuments.Read(path));
            }
            catch (FileNotFoundException e) { throw new UserException(e.Message); }
            using var loaded = ModelInput.Load(ctx.Value(model)!, new QuantConfig(ModelInput.Quant(ctx, quant, ctx.Value(model)!), QuantizeHead: ctx.Value(quantizeHead),
                                                               ComputeDtype: ModelInput.ComputeDtype(ctx, computeDtype)),
                                               ctx.Value(adapter));
            var lm = loaded.Lm;
            if (lm.Tokenizer == null) throw new UserException($"--model {ctx.Value(model)}: no tokenizer found next to the weights (tokenizer.json / tokenizer.bin)");
            var r = lm.Perplexity(text, ctx.Value(window), ctx.Value(stride));
            ctx.Out.WriteLine(ctx.Value(json)
                ? JsonSerializer.Serialize(new { tokens = r.Tokens, nll = r.Nll, perplexity = r.Perplexity })
                : $"tokens {r.Tokens}  nll {r.Nll:F4}  perplexity {r.Perplexity:F3}");
            return Task.FromResult(CommandRunner.Ok);
        });
        return command;
    }
}
