using System.CommandLine;
using NativeQuant.IO;
using NativeQuant.Quantization;
using Spectre.Console;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq info FILE`: format, configuration, metadata and tensors of a model file.</summary>
public static class InfoCommand
{
    /// <summary>Long metadata values (the per-weight quantization map) are summarised, not dumped.</summary>
    private const int MetadataPreviewChars = 120;

    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = ".safetensors, llama2.c .bin, HF directory, or stories15M" };
        var command = new Command("info", "Describe a model file: format, config, metadata, tensors") { file };
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            using var source = ModelInput.Open(ctx.Value(file)!, "FILE");
            var c = ctx.Console;
            c.WriteLine($"{source.SourcePath}");
            c.WriteLine($"format: {source switch { Llama2Checkpoint => "llama2.c checkpoint", HfDirectory => "Hugging Face directory", _ => "safetensors" }}");
            if (source is Llama2Checkpoint l) c.WriteLine($"config: {l.Config}");
            if (source is HfDirectory h) c.WriteLine($"config: {h.Config.GetRawText()}");
            if (source.InterleavedRope) c.WriteLine("rope: q/k rows in llama2.c's interleaved order");
            foreach (var (k, v) in source.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                c.WriteLine($"metadata {k}: {(v.Length <= MetadataPreviewChars ? v : $"{v[..MetadataPreviewChars]}... ({v.Length} chars)")}");
            var quantized = source is SafeTensorsFile ? QuantizedModelReader.ReadAll(source) : new Dictionary<string, QuantizedTensor>();
            if (quantized.Count > 0)
                c.WriteLine($"quantized weights: {quantized.Count} ({string.Join(", ", quantized.Values.Select(q => q.Method.Name()).Distinct())})");
            var table = new Table().Border(TableBorder.Simple);
            table.AddColumns("tensor", "dtype", "shape", "bytes");
            long total = 0;
            foreach (var n in source.Names)
            {
                var t = source.Get(n);
                total += t.ByteLength;
                table.AddRow(Markup.Escape(n), t.DType.SafeTensorsName(), Markup.Escape(t.ShapeText), t.ByteLength.ToString("N0"));
            }
            c.Write(table);
            c.WriteLine($"{source.Names.Count} tensors, {total:N0} bytes");
            return Task.FromResult(CommandRunner.Ok);
        });
        return command;
    }
}
