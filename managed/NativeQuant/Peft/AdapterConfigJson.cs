using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using NativeQuant.Quantization;

namespace NativeQuant.Peft;

/// <summary>
/// adapter_config.json as PEFT 0.14's save_pretrained writes it: LoraConfig.to_dict() with every field, keys
/// sorted, two-space indent, Python number spelling (lora_dropout 0.0, not 0), inference_mode true. Reading
/// accepts files from other PEFT versions (unknown fields ignored) but rejects features this engine does not
/// implement, naming the field.
/// </summary>
public static class AdapterConfigJson
{
    public const string FileName = "adapter_config.json";

    public static string Serialize(LoraConfig c)
    {
        // Field name -> writer; SortedDictionary gives json.dumps(sort_keys=True) order.
        var fields = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal)
        {
            ["alpha_pattern"] = w => EmptyObject(w),
            ["auto_mapping"] = w => w.WriteNullValue(),
            ["base_model_name_or_path"] = w => StringOrNull(w, c.BaseModelNameOrPath),
            ["bias"] = w => w.WriteStringValue(c.Bias),
            ["eva_config"] = w => w.WriteNullValue(),
            ["exclude_modules"] = w => w.WriteNullValue(),
            ["fan_in_fan_out"] = w => w.WriteBooleanValue(c.FanInFanOut),
            ["inference_mode"] = w => w.WriteBooleanValue(true),
            ["init_lora_weights"] = w =>
            {
                if (c.InitLoraWeights == LoraInit.Gaussian) w.WriteStringValue("gaussian");
                else w.WriteBooleanValue(c.InitLoraWeights == LoraInit.Default);
            },
            ["layer_replication"] = w => w.WriteNullValue(),
            ["layers_pattern"] = w => w.WriteNullValue(),
            ["layers_to_transform"] = w => w.WriteNullValue(),
            ["loftq_config"] = w => EmptyObject(w),
            // PEFT types lora_alpha as int; a fractional alpha is written as Python writes a float.
            ["lora_alpha"] = w => w.WriteRawValue(c.LoraAlpha == MathF.Round(c.LoraAlpha)
                ? ((long)c.LoraAlpha).ToString(CultureInfo.InvariantCulture) : PythonRepr(c.LoraAlpha)),
            ["lora_bias"] = w => w.WriteBooleanValue(false),
            ["lora_dropout"] = w => w.WriteRawValue(PythonRepr(c.LoraDropout)),
            ["megatron_config"] = w => w.WriteNullValue(),
            ["megatron_core"] = w => w.WriteStringValue("megatron.core"),
            ["modules_to_save"] = w => StringListOrNull(w, c.ModulesToSave),
            ["peft_type"] = w => w.WriteStringValue(LoraConfig.PeftType),
            ["r"] = w => w.WriteNumberValue(c.R),
            ["rank_pattern"] = w => EmptyObject(w),
            ["revision"] = w => StringOrNull(w, c.Revision),
            ["target_modules"] = w =>
            {
                var t = c.TargetModules!;
                // PEFT keeps names in a set (arbitrary order); sorted here so equal configs give equal bytes.
                if (t.Names != null) StringListOrNull(w, t.Names.Order(StringComparer.Ordinal).ToList());
                else w.WriteStringValue(t.Pattern);
            },
            ["task_type"] = w => w.WriteStringValue(c.TaskType),
            ["use_dora"] = w => w.WriteBooleanValue(false),
            ["use_rslora"] = w => w.WriteBooleanValue(c.UseRslora),
        };
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, IndentSize = 2, NewLine = "\n", Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            foreach (var (name, write) in fields)
            {
                w.WritePropertyName(name);
                write(w);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void EmptyObject(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteEndObject();
    }

    private static void StringOrNull(Utf8JsonWriter w, string? s)
    {
        if (s == null) w.WriteNullValue();
        else w.WriteStringValue(s);
    }

    private static void StringListOrNull(Utf8JsonWriter w, IReadOnlyList<string>? list)
    {
        if (list == null) { w.WriteNullValue(); return; }
        w.WriteStartArray();
        foreach (var s in list) w.WriteStringValue(s);
        w.WriteEndArray();
    }

    // The float's shortest decimal, then Python's repr of that double (0.05f -> "0.05", 0f -> "0.0").
    private static string PythonRepr(float v) => PythonFloat.Repr(double.Parse(v.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));

    public static LoraConfig Parse(string json, string path)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(json).RootElement; }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object");
        var f = new Fields(root, path);

        string peftType = f.String("peft_type") ?? throw f.Missing("peft_type");
        if (peftType != LoraConfig.PeftType) throw new InvalidDataException($"{path}: peft_type '{peftType}' is not supported (expected '{LoraConfig.PeftType}')");
        f.RequireAbsentOr("use_dora", JsonValueKind.False, "DoRA adapters are not supported");
        f.RequireAbsentOr("lora_bias", JsonValueKind.False, "a bias on lora_B is not supported");
        f.RequireEmpty("rank_pattern", "per-module ranks are not supported");
        f.RequireEmpty("alpha_pattern", "per-module alphas are not supported");
        f.RequireEmpty("layers_to_transform", "restricting LoRA to some layers is not supported");
        f.RequireEmpty("layer_replication", "layer replication is not supported");
        f.RequireEmpty("exclude_modules", "exclude_modules is not supported");

        var config = new LoraConfig
        {
            R = f.Int("r") ?? throw f.Missing("r"),
            LoraAlpha = f.Float("lora_alpha") ?? throw f.Missing("lora_alpha"),
            LoraDropout = f.Float("lora_dropout") ?? 0f,
            TargetModules = f.TargetModules(),
            Bias = f.String("bias") ?? "none",
            UseRslora = f.Bool("use_rslora") ?? false,
            InitLoraWeights = f.Init(),
            ModulesToSave = f.StringList("modules_to_save"),
            FanInFanOut = f.Bool("fan_in_fan_out") ?? false,
            TaskType = f.String("task_type") ?? LoraConfig.CausalLmTaskType,
            BaseModelNameOrPath = f.String("base_model_name_or_path"),
            Revision = f.String("revision"),
            InferenceMode = f.Bool("inference_mode") ?? true,
        };
        try { config.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        return config;
    }

    /// <summary>Typed optional fields with errors naming the file and field.</summary>
    private sealed class Fields(JsonElement root, string path)
    {
        private JsonElement? Get(string name) =>
            root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

        public InvalidDataException Missing(string name) => new($"{path}: required field '{name}' is missing");

        private InvalidDataException Wrong(string name, string expected, JsonElement v) =>
            new($"{path}: field '{name}' must be {expected}, got {v.GetRawText()}");

        public string? String(string name) => Get(name) is not { } v ? null
            : v.ValueKind == JsonValueKind.String ? v.GetString() : throw Wrong(name, "a string", v);

        public int? Int(string name) => Get(name) is not { } v ? null
            : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw Wrong(name, "an integer", v);

        public float? Float(string name) => Get(name) is not { } v ? null
            : v.ValueKind == JsonValueKind.Number ? v.GetSingle() : throw Wrong(name, "a number", v);

        public bool? Bool(string name) => Get(name) is not { } v ? null
            : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Wrong(name, "true or false", v);

        public List<string>? StringList(string name)
        {
            if (Get(name) is not { } v) return null;
            if (v.ValueKind != JsonValueKind.Array) throw Wrong(name, "a list of strings", v);
            return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Wrong(name, "a list of strings", v)).ToList();
        }

        public TargetModules TargetModules()
        {
            if (Get("target_modules") is not { } v) throw Missing("target_modules");
            return v.ValueKind == JsonValueKind.String ? Peft.TargetModules.FromPattern(v.GetString()!)
                : Peft.TargetModules.FromNames(StringList("target_modules")!.ToArray());
        }

        public LoraInit Init()
        {
            if (Get("init_lora_weights") is not { } v) return LoraInit.Default;
            return v.ValueKind switch
            {
                JsonValueKind.True => LoraInit.Default,
                JsonValueKind.False => LoraInit.Random,
                JsonValueKind.String when v.GetString() == "gaussian" => LoraInit.Gaussian,
                // PiSSA/OLoRA/LoftQ also rewrite the base weights, so the adapter alone does not describe the model.
                _ => throw Wrong("init_lora_weights", "true, false or \"gaussian\" (PiSSA/OLoRA/LoftQ adapters are not supported)", v),
            };
        }

        public void RequireAbsentOr(string name, JsonValueKind allowed, string why)
        {
            if (Get(name) is { } v && v.ValueKind != allowed) throw new InvalidDataException($"{path}: field '{name}' is {v.GetRawText()}: {why}");
        }

        public void RequireEmpty(string name, string why)
        {
            if (Get(name) is not { } v) return;
            bool empty = v.ValueKind switch
            {
                JsonValueKind.Object => !v.EnumerateObject().Any(),
                JsonValueKind.Array => v.GetArrayLength() == 0,
                _ => false,
            };
            if (!empty) throw new InvalidDataException($"{path}: field '{name}' is {v.GetRawText()}: {why}");
        }
    }
}
