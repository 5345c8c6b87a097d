using System.CommandLine;
using NativeQuant.Quantization;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq quantize`: quantize a model's 2-D weights into a bitsandbytes-layout safetensors file.</summary>
public static class QuantizeCommand
{
    public static Command Create()
    {
        var method = new Option<string>("--method") { Description = "Quantization method", Required = true };
        method.AcceptOnlyFromAmong(QuantMethods.AllNames.ToArray());
        var blocksize = new Option<int?>("--blocksize") { Description = "Block size of blockwise methods (default 64 for nf4/fp4, 4096 for blockwise8)" };
        var doubleQuant = new Option<bool>("--double-quant") { Description = "Quantize the 4-bit absmax again (bnb compress_statistics)" };
        var input = new Option<string>("--input") { Description = "Model: .safetensors, llama2.c .bin, HF directory, or stories15M", Required = true };
        var output = new Option<string>("--output") { Description = "Output .safetensors file (replaced atomically)", Required = true };
        var report = new Option<bool>("--report") { Description = "Print per-tensor error statistics" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON on stdout" };
        var command = new Command("quantize", "Quantize a model's weights (int8, blockwise8, NF4, FP4)") { method, blocksize, doubleQuant, input, output, report, json };
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            QuantMethods.TryParse(ctx.Value(method)!, out var m);
            var options = new QuantOptions(m, ctx.Value(blocksize), ctx.Value(doubleQuant));
            options.Validate();
            string inPath = ctx.Value(input)!, outPath = ctx.Value(output)!;
            ModelInput.RequireDistinct(inPath, outPath);
            using var source = ModelInput.Open(inPath, "--input");
            var result = ModelQuantizer.Quantize(source, outPath, options);
            if (ctx.Value(json)) ctx.Out.WriteLine(ReportView.ToJson(result, options));
            else if (ctx.Value(report)) ReportView.Table(ctx.Console, result);
            else ctx.Out.WriteLine(ReportView.Summary(result));
            return Task.FromResult(CommandRunner.Ok);
        });
        return command;
    }
}
