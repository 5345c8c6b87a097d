using System.Globalization;
using System.Text;
using System.Text.Json;
using NativeQuant.Interop;

namespace NativeQuant.Quantization;

/// <summary>
/// The non-tensor part of bitsandbytes' 4-bit QuantState as QuantState.as_dict(packed=True) stores it: the
/// UTF-8 bytes of json.dumps({quant_type, blocksize, dtype, shape[, nested_blocksize, nested_dtype,
/// nested_offset]}) in a uint8 tensor named `W.quant_state.bitsandbytes__nf4` (or __fp4). Key order and
/// Python's ", " / ": " separators are reproduced so the bytes equal what bnb writes.
/// </summary>
public sealed record BnbQuantState(string QuantType, int Blocksize, string DType, long[] Shape,
    int? NestedBlocksize = null, string? NestedDType = null, float? NestedOffset = null)
{
    public const string KeyPrefix = ".quant_state.bitsandbytes__";

    public bool Nested => NestedBlocksize is not null;

    public static string TypeName(NqQuant4Type t) => t == NqQuant4Type.Nf4 ? "nf4" : "fp4";

    /// <summary>str(torch dtype) without "torch.", as bnb records the original weight dtype.</summary>
    public static string TorchName(IO.TensorDType d) => d switch
    {
        IO.TensorDType.F16 => "float16",
        IO.TensorDType.BF16 => "bfloat16",
        IO.TensorDType.F64 => "float64",
        _ => "float32",
    };

    public string ToJson()
    {
        var sb = new StringBuilder();
        sb.Append("{\"quant_type\": \"").Append(QuantType).Append("\", \"blocksize\": ").Append(Blocksize.ToString(CultureInfo.InvariantCulture))
          .Append(", \"dtype\": \"").Append(DType).Append("\", \"shape\": [")
          .Append(string.Join(", ", Shape.Select(s => s.ToString(CultureInfo.InvariantCulture)))).Append(']');
        if (Nested)
        {
            sb.Append(", \"nested_blocksize\": ").Append(NestedBlocksize!.Value.ToString(CultureInfo.InvariantCulture))
              .Append(", \"nested_dtype\": \"").Append(NestedDType).Append('"')
              .Append(", \"nested_offset\": ").Append(PythonFloat.Repr(NestedOffset!.Value));
        }
        return sb.Append('}').ToString();
    }

    public byte[] ToBytes() => Encoding.UTF8.GetBytes(ToJson());

    public static BnbQuantState Parse(ReadOnlySpan<byte> bytes, string origin)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes.ToArray());
            var r = doc.RootElement;
            string quantType = r.GetProperty("quant_type").GetString()!;
            if (quantType is not ("nf4" or "fp4")) throw new InvalidDataException($"{origin}: quant_type '{quantType}' is not nf4 or fp4");
            var shape = r.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            bool nested = r.TryGetProperty("nested_blocksize", out var nb);
            return new BnbQuantState(quantType, r.GetProperty("blocksize").GetInt32(), r.GetProperty("dtype").GetString()!, shape,
                nested ? nb.GetInt32() : null,
                nested ? r.GetProperty("nested_dtype").GetString() : null,
                nested ? (float)r.GetProperty("nested_offset").GetDouble() : null);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{origin}: invalid bitsandbytes quant_state JSON: {e.Message}");
        }
    }
}
