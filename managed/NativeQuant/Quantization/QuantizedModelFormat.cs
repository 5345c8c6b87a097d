using System.Text.Json;
using System.Text.Json.Serialization;

namespace NativeQuant.Quantization;

/// <summary>How one weight of a quantized file is stored (an entry of the metadata map).</summary>
public sealed record QuantEntry(
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("shape")] long[] Shape,
    [property: JsonPropertyName("blocksize")] int? Blocksize = null,
    [property: JsonPropertyName("double_quant")] bool DoubleQuant = false,
    [property: JsonPropertyName("source_dtype")] string? SourceDType = null);

/// <summary>
/// The safetensors __metadata__ keys this engine writes into quantized files: "nativequant.quantization" maps
/// each quantized weight name to a <see cref="QuantEntry"/>, so dequantization never has to guess (the 4-bit
/// and row-wise layouts are also recognised without it, as bitsandbytes writes them).
/// </summary>
public static class QuantizedModelFormat
{
    public const string EntriesKey = "nativequant.quantization";
    public const string VersionKey = "nativequant.format_version";
    public const string Version = "1";

    public static string Serialize(IReadOnlyDictionary<string, QuantEntry> entries) =>
        JsonSerializer.Serialize(new SortedDictionary<string, QuantEntry>(entries.ToDictionary(), StringComparer.Ordinal),
            new JsonSerializerOptions { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull });

    public static Dictionary<string, QuantEntry> Parse(string json, string origin)
    {
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, QuantEntry>>(json)
                ?? throw new InvalidDataException($"{origin}: metadata '{EntriesKey}' is null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{origin}: metadata '{EntriesKey}' is not valid JSON: {e.Message}");
        }
    }
}
