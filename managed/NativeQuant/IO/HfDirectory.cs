using System.Text.Json;

namespace NativeQuant.IO;

/// <summary>
/// A Hugging Face model directory: config.json plus either model.safetensors or a sharded set described by
/// model.safetensors.index.json ({"weight_map": {tensor: shard file}}). Every shard is memory-mapped.
/// </summary>
public sealed class HfDirectory : ITensorSource
{
    public const string ConfigFile = "config.json";
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    private readonly List<SafeTensorsFile> _shards;
    private readonly Dictionary<string, SafeTensorsFile> _owner;

    private HfDirectory(string dir, JsonElement config, List<SafeTensorsFile> shards, Dictionary<string, SafeTensorsFile> owner, List<string> names)
    {
        SourcePath = dir;
        Config = config;
        _shards = shards;
        _owner = owner;
        Names = names;
    }

    public string SourcePath { get; }

    /// <summary>The parsed config.json (model_type, hidden_size, num_hidden_layers, ...).</summary>
    public JsonElement Config { get; }

    public IReadOnlyList<string> Names { get; }
    public bool InterleavedRope => false;
    public IReadOnlyDictionary<string, string> Metadata => _shards[0].Metadata;
    public bool IsDisposed { get; private set; }

    public bool TryGet(string name, out TensorInfo tensor)
    {
        tensor = null!;
        return _owner.TryGetValue(name, out var shard) && shard.TryGet(name, out tensor);
    }

    public static HfDirectory Open(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: directory not found");
        string configPath = Path.Combine(dir, ConfigFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{dir}: not a Hugging Face model directory: {ConfigFile} is missing", configPath);
        JsonElement config = ReadJson(configPath);

        var shards = new List<SafeTensorsFile>();
        try
        {
            var owner = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            var names = new List<string>();
            string single = Path.Combine(dir, SingleFile), index = Path.Combine(dir, IndexFile);
            if (File.Exists(index))
            {
                var map = ReadJson(index);
                if (!map.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{index}: expected an object field 'weight_map' mapping tensor names to shard files");
                var byFile = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
                foreach (var entry in wm.EnumerateObject())
                {
                    string file = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! :
                        throw new InvalidDataException($"{index}: weight_map['{entry.Name}'] must be a file name");
                    if (file.Contains('/') || file.Contains('\\') || file.StartsWith('.'))
                        throw new InvalidDataException($"{index}: weight_map['{entry.Name}'] = '{file}' must be a plain file name inside the directory");
                    if (!byFile.TryGetValue(file, out var shard))
                    {
                        string shardPath = Path.Combine(dir, file);
                        if (!File.Exists(shardPath)) throw new FileNotFoundException($"{index}: shard '{file}' (holding '{entry.Name}') is missing", shardPath);
                        shard = SafeTensorsFile.Open(shardPath);
                        shards.Add(shard);
                        byFile[file] = shard;
                    }
                    if (!shard.TryGet(entry.Name, out _))
                        throw new InvalidDataException($"{index}: tensor '{entry.Name}' is mapped to '{file}' but that shard does not contain it");
                    owner[entry.Name] = shard;
                    names.Add(entry.Name);
                }
                if (shards.Count == 0) throw new InvalidDataException($"{index}: weight_map is empty");
            }
            else if (File.Exists(single))
            {
                var file = SafeTensorsFile.Open(single);
                shards.Add(file);
                foreach (var n in file.Names) { owner[n] = file; names.Add(n); }
            }
            else
            {
                throw new FileNotFoundException($"{dir}: neither {SingleFile} nor {IndexFile} found");
            }
            return new HfDirectory(dir, config, shards, owner, names);
        }
        catch
        {
            foreach (var s in shards) s.Dispose();
            throw;
        }
    }

    /// <summary>A JSON object file (config.json, the shard index), errors naming the file.</summary>
    internal static JsonElement ReadJson(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.ValueKind == JsonValueKind.Object
                ? doc.RootElement.Clone()
                : throw new InvalidDataException($"{path}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid JSON: {e.Message}");
        }
    }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        foreach (var s in _shards) s.Dispose();
    }
}
