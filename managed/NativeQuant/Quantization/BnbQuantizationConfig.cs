using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using NativeQuant.Interop;
using NativeQuant.NN;

namespace NativeQuant.Quantization;

/// <summary>
/// transformers' BitsAndBytesConfig as config.json's "quantization_config" records it for a model saved with
/// its bitsandbytes-quantized weights: {"quant_method": "bitsandbytes", "load_in_4bit": true,
/// "bnb_4bit_quant_type": "nf4"|"fp4", "bnb_4bit_use_double_quant": ..., "bnb_4bit_quant_storage": "uint8"} or
/// {"load_in_8bit": true, "llm_int8_threshold": 6.0}. bnb_4bit_compute_dtype "float16" selects fp16 compute for
/// the 4-bit layers (<see cref="Linear4bit.ComputeDtype"/>); any other value computes in fp32. The per-tensor
/// quant states stay authoritative for block sizes and double quantization.
/// </summary>
public sealed record BnbQuantizationConfig(QuantType Type, bool DoubleQuant = false, float Int8Threshold = 6f,
                                           NqComputeType ComputeDtype = NqComputeType.F32)
{
    public const string Field = "quantization_config";

    public string TypeName => Type.ToString().ToLowerInvariant();

    /// <summary>The config's quantization_config, or null when the model is stored unquantized.</summary>
    public static BnbQuantizationConfig? Read(JsonElement config, string path)
    {
        if (!config.TryGetProperty(Field, out var q) || q.ValueKind == JsonValueKind.Null) return null;
        string where = $"{path}: {Field}";
        if (q.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where} must be an object");
        string method = String(q, "quant_method", "bitsandbytes", where);
        if (method != "bitsandbytes")
            throw new InvalidDataException($"{where}: quant_method '{method}' is not supported (only bitsandbytes checkpoints load pre-quantized)");
        bool four = Bool(q, "load_in_4bit", where), eight = Bool(q, "load_in_8bit", where);
        if (four == eight) throw new InvalidDataException($"{where}: expected exactly one of load_in_4bit / load_in_8bit to be true");
        if (eight)
        {
            if (Bool(q, "llm_int8_has_fp16_weight", where))
                throw new InvalidDataException($"{where}: llm_int8_has_fp16_weight is true (fp16 weights, not int8); only int8 checkpoints are supported");
            return new BnbQuantizationConfig(QuantType.Int8, Int8Threshold: (float)Number(q, "llm_int8_threshold", 6.0, where));
        }
        string storage = String(q, "bnb_4bit_quant_storage", "uint8", where);
        if (storage != "uint8") throw new InvalidDataException($"{where}: bnb_4bit_quant_storage '{storage}' is not supported (expected uint8)");
        var type = String(q, "bnb_4bit_quant_type", "fp4", where) switch  // BitsAndBytesConfig's default is fp4
        {
            "nf4" => QuantType.Nf4,
            "fp4" => QuantType.Fp4,
            var t => throw new InvalidDataException($"{where}: bnb_4bit_quant_type '{t}' is not nf4 or fp4"),
        };
        var compute = String(q, "bnb_4bit_compute_dtype", "float32", where) == "float16" ? NqComputeType.F16 : NqComputeType.F32;
        return new BnbQuantizationConfig(type, Bool(q, "bnb_4bit_use_double_quant", where), ComputeDtype: compute);
    }

    /// <summary>The checkpoint's format for loading, where <paramref name="requested"/> may only be None (not
    /// asked) or the same type; its QuantizeHead and BlockSize (for a head quantized on load) are kept, and its
    /// ComputeDtype when given (else the checkpoint's bnb_4bit_compute_dtype).</summary>
    public QuantConfig Effective(QuantConfig requested, string path)
    {
        if (requested.Type != QuantType.None && requested.Type != Type) throw Mismatch(path, requested.Type.ToString().ToLowerInvariant());
        return requested with { Type = Type, DoubleQuant = DoubleQuant, Int8Threshold = Int8Threshold, ComputeDtype = requested.ComputeDtype ?? ComputeDtype };
    }

    public ArgumentException Mismatch(string path, string requested) =>
        new($"{path}: the checkpoint is stored quantized as {TypeName} ({Field}); --quant {requested} does not match it: omit --quant or pass --quant {TypeName}");

    /// <summary>The on-load settings of a model written pre-quantized in <paramref name="quant"/>'s format.</summary>
    public static BnbQuantizationConfig From(QuantConfig quant) => quant.Type == QuantType.None
        ? throw new ArgumentException("an unquantized model has no quantization_config", nameof(quant))
        : new(quant.Type, quant.DoubleQuant, quant.Int8Threshold, quant.Compute);

    /// <summary>Whether layer <paramref name="m"/> is stored in this format (a writer refuses a mixed model).</summary>
    public bool Describes(Module m) => m switch
    {
        Linear4bit q => BnbQuantState.TypeName(q.Type) == TypeName && q.DoubleQuant == DoubleQuant,
        Linear8bitLt => Type == QuantType.Int8,
        _ => false,
    };

    /// <summary>The object BitsAndBytesConfig.to_dict() writes (compute dtype float32 or float16).</summary>
    public SortedDictionary<string, object?> ToJson()
    {
        bool four = Type != QuantType.Int8;
        return new(StringComparer.Ordinal)
        {
            ["_load_in_4bit"] = four, ["_load_in_8bit"] = !four,
            ["bnb_4bit_compute_dtype"] = ComputeDtype == NqComputeType.F16 ? "float16" : "float32", ["bnb_4bit_quant_storage"] = "uint8",
            ["bnb_4bit_quant_type"] = four ? TypeName : "fp4", ["bnb_4bit_use_double_quant"] = four && DoubleQuant,
            ["llm_int8_enable_fp32_cpu_offload"] = false, ["llm_int8_has_fp16_weight"] = false, ["llm_int8_skip_modules"] = null,
            ["llm_int8_threshold"] = new PyFloat(Int8Threshold), ["load_in_4bit"] = four, ["load_in_8bit"] = !four,
            ["quant_method"] = "bitsandbytes",
        };
    }

    private static bool Bool(JsonElement q, string field, string where) =>
        !q.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null ? false
        : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean()
        : throw new InvalidDataException($"{where}.{field} must be true or false, got {v.GetRawText()}");

    private static string String(JsonElement q, string field, string fallback, string where) =>
        !q.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null ? fallback
        : v.ValueKind == JsonValueKind.String ? v.GetString()!
        : throw new InvalidDataException($"{where}.{field} must be a string, got {v.GetRawText()}");

    private static double Number(JsonElement q, string field, double fallback, string where) =>
        !q.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null ? fallback
        : v.ValueKind == JsonValueKind.Number ? v.GetDouble()
        : throw new InvalidDataException($"{where}.{field} must be a number, got {v.GetRawText()}");
}

/// <summary>A float written as Python's json.dumps writes it ("6.0", not "6"): transformers' BitsAndBytesConfig
/// rejects an integer llm_int8_threshold.</summary>
[JsonConverter(typeof(Converter))]
internal readonly record struct PyFloat(float Value)
{
    private sealed class Converter : JsonConverter<PyFloat>
    {
        public override PyFloat Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => new(reader.GetSingle());

        public override void Write(Utf8JsonWriter writer, PyFloat value, JsonSerializerOptions options) =>
            writer.WriteRawValue(PythonFloat.Repr(double.Parse(value.Value.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture)));
    }
}
