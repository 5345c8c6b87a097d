using NativeQuant.IO;

namespace NativeQuant.Quantization;

/// <summary>Turns a quantized safetensors file back into float32 weights; other tensors are copied unchanged.</summary>
public static class ModelDequantizer
{
    /// <returns>The names of the weights that were dequantized.</returns>
    public static IReadOnlyList<string> Dequantize(ITensorSource source, string outputPath)
    {
        var quantized = QuantizedModelReader.ReadAll(source);
        if (quantized.Count == 0)
            throw new InvalidDataException($"{source.SourcePath}: no quantized weights found (neither '{QuantizedModelFormat.EntriesKey}' metadata nor bitsandbytes quant_state/SCB tensors)");
        var writer = new SafeTensorsWriter();
        var components = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, q) in quantized)
        {
            components.UnionWith(q.Components(name).Select(c => c.Name));
            writer.AddValues(name, TensorDType.F32, q.Shape, q.Dequantize());
        }
        foreach (var name in source.Names)
            if (!components.Contains(name)) writer.Add(source.Get(name));
        foreach (var (k, v) in source.Metadata)
            if (k != QuantizedModelFormat.EntriesKey && k != QuantizedModelFormat.VersionKey) writer.Metadata[k] = v;
        writer.Save(outputPath);
        return quantized.Keys.Order(StringComparer.Ordinal).ToList();
    }
}
