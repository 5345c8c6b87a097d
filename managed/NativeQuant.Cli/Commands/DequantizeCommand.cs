using System.CommandLine;
using NativeQuant.IO;
using NativeQuant.Quantization;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq dequantize`: turn a quantized safetensors file back into float32 weights.</summary>
public static class DequantizeCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--input") { Description = "Quantized .safetensors file", Required = true };
        var output = new Option<string>("--output") { Description = "Output .safetensors file (replaced atomically)", Required = true };
        var command = new Command("dequantize", "Dequantize a quantized safetensors file to float32") { input, output };
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            string inPath = ctx.Value(input)!, outPath = ctx.Value(output)!;
            ModelInput.RequireDistinct(inPath, outPath);
            if (!File.Exists(inPath)) throw new UserException($"--input {inPath}: file not found");
            using var source = SafeTensorsFile.Open(inPath);
            var names = ModelDequantizer.Dequantize(source, outPath);
            ctx.Out.WriteLine($"dequantized {names.Count} weights to float32; wrote {outPath}");
            return Task.FromResult(CommandRunner.Ok);
        });
        return command;
    }
}
