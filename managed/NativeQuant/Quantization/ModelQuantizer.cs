using NativeQuant.IO;

namespace NativeQuant.Quantization;

/// <summary>
/// Quantizes every 2-D floating-point tensor of a source into a safetensors file in bitsandbytes' layout;
/// everything else (1-D norms, biases, integer tensors, sizes the method cannot take) is copied unchanged,
/// as bitsandbytes leaves non-Linear parameters alone. Error statistics compare each quantized tensor with
/// its float32 original.
/// </summary>
public static class ModelQuantizer
{
    public static QuantReport Quantize(ITensorSource source, string outputPath, QuantOptions options, IProgress<string>? progress = null)
    {
        options.Validate();
        var writer = new SafeTensorsWriter();
        var rows = new List<TensorQuantRow>();
        var entries = new Dictionary<string, QuantEntry>(StringComparer.Ordinal);
        foreach (var name in source.Names)
        {
            var t = source.Get(name);
            if (!QuantizedTensor.CanQuantize(t.DType, t.Shape, options, out string reason))
            {
                writer.Add(t);
                rows.Add(new TensorQuantRow(name, t.Shape, "copy", t.ElementCount, null, null, null, null, t.DType.ItemSize() * 8.0, reason));
                continue;
            }
            progress?.Report(name);
            float[] x = TensorConvert.ToFloat32(t);
            long[] shape = t.Shape.ToArray();
            var q = QuantizedTensor.Quantize(x, shape, options, t.DType);
            var components = q.Components(name);
            foreach (var c in components) writer.Add(c.Name, c.DType, c.Shape, c.Data);
            var stats = QuantKernels.ErrorStats(x, q.Dequantize());
            rows.Add(new TensorQuantRow(name, shape, options.Method.Name(), q.ElementCount, stats.MeanAbsError, stats.Rmse,
                stats.MaxAbsError, stats.SnrDb, components.Sum(c => (long)c.Data.Length) * 8.0 / q.ElementCount));
            entries[name] = new QuantEntry(options.Method.Name(), shape,
                options.Method.IsBlockwise() ? options.EffectiveBlocksize : null, options.DoubleQuant, t.DType.SafeTensorsName());
        }
        foreach (var (k, v) in source.Metadata)
            if (k != QuantizedModelFormat.EntriesKey && k != QuantizedModelFormat.VersionKey) writer.Metadata[k] = v;
        writer.Metadata[QuantizedModelFormat.VersionKey] = QuantizedModelFormat.Version;
        writer.Metadata[QuantizedModelFormat.EntriesKey] = QuantizedModelFormat.Serialize(entries);
        writer.Save(outputPath);
        return new QuantReport(source.SourcePath, outputPath, options.Method.Name(), rows, new FileInfo(outputPath).Length);
    }
}
