using System.CommandLine;
using NativeQuant.Fetch;
using NativeQuant.Quantization;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq demo`: fetch stories15M if needed and quantize it to NF4 with double quantization, printing the report.</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var command = new Command("demo", "Fetch stories15M if needed, quantize it to NF4 + double quant, print the error table");
        CommandRunner.SetAction(command, async (ctx, ct) =>
        {
            var cache = AssetCache.CreateDefault();
            var spec = cache.Manifest.Find("stories15M");
            if (await cache.FetchAsync(spec, new Progress<string>(m => ctx.Error.WriteLine($"  {m}")), ct))
                await ctx.Out.WriteLineAsync($"fetched {spec.Name} into {cache.DirectoryOf(spec)}");
            string runDir = Path.Combine(cache.Root, "runs", $"demo-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
            Directory.CreateDirectory(runDir);
            var options = new QuantOptions(QuantMethod.Nf4, DoubleQuant: true);
            using var source = IO.Llama2Checkpoint.Open(cache.PathOf("stories15M/model.bin"));
            var report = ModelQuantizer.Quantize(source, Path.Combine(runDir, "stories15M-nf4-dq.safetensors"), options);
            ReportView.Table(ctx.Console, report);
            return CommandRunner.Ok;
        });
        return command;
    }
}
