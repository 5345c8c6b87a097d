using NativeQuant.IO;

namespace NativeQuant.Quantization;

/// <summary>
/// Finds the quantized weights of a safetensors source: from this engine's metadata map when present,
/// otherwise from bitsandbytes' markers (`*.quant_state.bitsandbytes__nf4|fp4` for 4-bit, `P.SCB` next to
/// an int8 `P.weight` for Linear8bitLt).
/// </summary>
public static class QuantizedModelReader
{
    public static IReadOnlyDictionary<string, QuantizedTensor> ReadAll(ITensorSource source)
    {
        var result = new Dictionary<string, QuantizedTensor>(StringComparer.Ordinal);
        if (source.Metadata.TryGetValue(QuantizedModelFormat.EntriesKey, out var json))
        {
            foreach (var (name, e) in QuantizedModelFormat.Parse(json, source.SourcePath))
                result[name] = Read(source, name, e);
            return result;
        }
        foreach (var n in source.Names)
        {
            int i = n.IndexOf(BnbQuantState.KeyPrefix, StringComparison.Ordinal);
            if (i > 0) result[n[..i]] = Quant4Tensor.Read(source, n[..i]);
            else if (n.EndsWith(".SCB", StringComparison.Ordinal) && source.TryGet(n[..^4] + ".weight", out var w) && w.DType == TensorDType.I8)
                result[w.Name] = Int8RowwiseTensor.Read(source, w.Name, w.Shape.ToArray());
        }
        return result;
    }

    private static QuantizedTensor Read(ITensorSource source, string name, QuantEntry e)
    {
        if (!QuantMethods.TryParse(e.Method, out var method))
            throw new InvalidDataException($"{source.SourcePath}: weight '{name}' has unknown quantization method '{e.Method}' (expected one of {string.Join(", ", QuantMethods.AllNames)})");
        if (e.Shape is not { Length: > 0 } || e.Shape.Any(d => d <= 0))
            throw new InvalidDataException($"{source.SourcePath}: weight '{name}' has an invalid shape in the quantization metadata");
        return method switch
        {
            QuantMethod.Int8Absmax => Int8AbsmaxTensor.Read(source, name, e.Shape),
            QuantMethod.Int8Rowwise => Int8RowwiseTensor.Read(source, name, e.Shape),
            QuantMethod.Int8Zeropoint => Int8ZeropointTensor.Read(source, name, e.Shape),
            QuantMethod.Blockwise8 => Blockwise8Tensor.Read(source, name, e.Shape,
                e.Blocksize ?? throw new InvalidDataException($"{source.SourcePath}: blockwise8 weight '{name}' has no blocksize in the quantization metadata")),
            _ => Quant4Tensor.Read(source, name),
        };
    }
}
