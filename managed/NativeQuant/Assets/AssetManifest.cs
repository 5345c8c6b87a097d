using System.Text.Json;
using System.Text.Json.Serialization;

namespace NativeQuant.Fetch;

/// <summary>
/// One kept file of an asset, produced from the extracted npm package in one of three ways:
/// a copy of <see cref="Source"/>; a byte range of it (<see cref="Offset"/>, <see cref="Length"/>; to the end
/// when Length is null); or, with <see cref="Jsonl"/>, the one-line JSON files under that directory joined
/// into JSON Lines (in the order of the <see cref="Order"/> file list when given, else ordinal by path).
/// </summary>
public sealed record AssetFile(
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("sha256")] string Sha256,
    [property: JsonPropertyName("source")] string? Source = null,
    [property: JsonPropertyName("offset")] long Offset = 0,
    [property: JsonPropertyName("length")] long? Length = null,
    [property: JsonPropertyName("jsonl")] string? Jsonl = null,
    [property: JsonPropertyName("order")] string? Order = null,
    [property: JsonPropertyName("lines")] int? Lines = null);

/// <summary>An asset: the npm package it comes from and the files kept under NQ_HOME/<see cref="Name"/>/.</summary>
public sealed record AssetSpec(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("package")] string Package,
    [property: JsonPropertyName("version")] string Version,
    [property: JsonPropertyName("description")] string Description,
    [property: JsonPropertyName("files")] IReadOnlyList<AssetFile> Files)
{
    public string PackageSpec => $"{Package}@{Version}";
}

/// <summary>The checked-in list of assets with the SHA-256 of every kept file (Assets/assets.json).</summary>
public sealed record AssetManifest([property: JsonPropertyName("assets")] IReadOnlyList<AssetSpec> Assets)
{
    private const string ResourceName = "NativeQuant.Assets.assets.json";

    /// <summary>The manifest built into this assembly.</summary>
    public static AssetManifest Embedded { get; } = LoadEmbedded();

    public static AssetManifest Parse(string json, string origin)
    {
        AssetManifest? m;
        try { m = JsonSerializer.Deserialize<AssetManifest>(json); }
        catch (JsonException e) { throw new InvalidDataException($"{origin}: invalid asset manifest: {e.Message}"); }
        if (m?.Assets is null || m.Assets.Count == 0) throw new InvalidDataException($"{origin}: asset manifest lists no assets");
        foreach (var a in m.Assets)
        foreach (var f in a.Files)
        {
            if ((f.Source is null) == (f.Jsonl is null))
                throw new InvalidDataException($"{origin}: {a.Name}/{f.Path}: exactly one of 'source' or 'jsonl' is required");
            if (f.Sha256 is not { Length: 64 })
                throw new InvalidDataException($"{origin}: {a.Name}/{f.Path}: 'sha256' must be 64 hex digits");
        }
        return m;
    }

    public AssetSpec Find(string name) =>
        Assets.FirstOrDefault(a => a.Name == name)
        ?? throw new ArgumentException($"unknown asset '{name}' (known: {string.Join(", ", Assets.Select(a => a.Name))})");

    private static AssetManifest LoadEmbedded()
    {
        using var stream = typeof(AssetManifest).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"embedded resource {ResourceName} is missing from the NativeQuant assembly (build problem)");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), ResourceName);
    }
}
