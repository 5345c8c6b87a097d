using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace NativeQuant.IO;

/// <summary>
/// A memory-mapped .safetensors file: 8-byte little-endian header length N, N bytes of JSON header
/// ({name: {dtype, shape, data_offsets:[begin,end]}, "__metadata__": {str: str}}), then the data buffer that
/// the offsets index. The header is validated completely before any tensor is exposed.
/// </summary>
public sealed unsafe class SafeTensorsFile : ITensorSource
{
    /// <summary>Same limit as the reference implementation: a larger header is certainly corrupt.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public const string MetadataKey = "__metadata__";

    private readonly MappedFile _file;
    private readonly Dictionary<string, TensorInfo> _tensors;

    private SafeTensorsFile(MappedFile file, Dictionary<string, TensorInfo> tensors, List<string> names,
        Dictionary<string, string> metadata)
    {
        _file = file;
        _tensors = tensors;
        Names = names;
        Metadata = metadata;
    }

    public string SourcePath => _file.Path;
    public IReadOnlyList<string> Names { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public bool InterleavedRope => false;
    public bool IsDisposed { get; private set; }

    public bool TryGet(string name, out TensorInfo tensor) => _tensors.TryGetValue(name, out tensor!);

    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        var file = new MappedFile(path);
        try
        {
            var source = Parse(file);
            return source;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static SafeTensorsFile Parse(MappedFile file)
    {
        string path = file.Path;
        if (file.Length < 8)
            throw Corrupt(path, $"file is {file.Length} bytes, shorter than the 8-byte header length prefix");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file.Slice(0, 8));
        if (headerLength > (ulong)(file.Length - 8))
            throw Corrupt(path, $"header length {headerLength} exceeds the {file.Length - 8} bytes after the length prefix (truncated file or wrong format)");
        if (headerLength > MaxHeaderBytes)
            throw Corrupt(path, $"header length {headerLength} exceeds the limit of {MaxHeaderBytes} bytes");
        if (headerLength < 2)
            throw Corrupt(path, $"header length {headerLength} is too small for a JSON object");
        long dataStart = 8 + (long)headerLength;
        long dataLength = file.Length - dataStart;
        var headerBytes = file.Slice(8, (int)headerLength);

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw Corrupt(path, $"header is not valid JSON: {e.Message}");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Corrupt(path, $"header must be a JSON object, found {doc.RootElement.ValueKind}");

            var source = new SafeTensorsFile(file, new(StringComparer.Ordinal), new(), new(StringComparer.Ordinal));
            var spans = new List<(long Begin, long End, string Name)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw Corrupt(path, $"key '{prop.Name}' appears twice in the header");
                if (prop.Name == MetadataKey)
                {
                    ReadMetadata(path, prop.Value, (Dictionary<string, string>)source.Metadata);
                    continue;
                }
                var (dtype, shape, begin, end) = ReadEntry(path, prop.Name, prop.Value, dataLength);
                spans.Add((begin, end, prop.Name));
                source._tensors[prop.Name] = new TensorInfo(source, prop.Name, dtype, shape, file.Pointer + dataStart + begin, end - begin);
            }

            spans.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            for (int i = 1; i < spans.Count; i++)
            {
                var (prev, cur) = (spans[i - 1], spans[i]);
                // Zero-length tensors occupy no bytes, so they cannot overlap anything.
                if (cur.Begin < prev.End && cur.End > cur.Begin && prev.End > prev.Begin)
                    throw Corrupt(path, $"tensor '{cur.Name}' bytes [{cur.Begin}, {cur.End}) overlap tensor '{prev.Name}' bytes [{prev.Begin}, {prev.End})");
            }
            ((List<string>)source.Names).AddRange(spans.Select(s => s.Name));
            return source;
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> into)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Corrupt(path, $"'{MetadataKey}' must be an object of strings, found {value.ValueKind}");
        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw Corrupt(path, $"'{MetadataKey}' entry '{m.Name}' must be a string, found {m.Value.ValueKind}");
            into[m.Name] = m.Value.GetString()!;
        }
    }

    private static (TensorDType, long[], long, long) ReadEntry(string path, string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw Corrupt(path, $"tensor '{name}': entry must be an object with dtype, shape, data_offsets");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw Corrupt(path, $"tensor '{name}': missing string field 'dtype'");
        string dtName = dt.GetString()!;
        if (!TensorDTypes.TryParseSafeTensorsName(dtName, out var dtype))
            throw Corrupt(path, $"tensor '{name}': unknown or unsupported dtype '{dtName}' (expected one of {string.Join(", ", Enum.GetValues<TensorDType>().Select(d => d.SafeTensorsName()))})");

        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw Corrupt(path, $"tensor '{name}': missing array field 'shape'");
        var shape = new long[sh.GetArrayLength()];
        long elements = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw Corrupt(path, $"tensor '{name}': shape entries must be non-negative integers, found {d.GetRawText()}");
            shape[i++] = dim;
            try { elements = checked(elements * dim); }
            catch (OverflowException) { throw Corrupt(path, $"tensor '{name}': shape {sh.GetRawText()} overflows"); }
        }

        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Corrupt(path, $"tensor '{name}': 'data_offsets' must be an array [begin, end]");
        long begin = ReadOffset(path, name, off[0]), end = ReadOffset(path, name, off[1]);
        if (end < begin)
            throw Corrupt(path, $"tensor '{name}': data_offsets [{begin}, {end}] end before begin");
        if (end > dataLength)
            throw Corrupt(path, $"tensor '{name}': data_offsets [{begin}, {end}] out of bounds of the {dataLength}-byte data buffer");
        long expected;
        try { expected = checked(elements * dtype.ItemSize()); }
        catch (OverflowException) { throw Corrupt(path, $"tensor '{name}': shape {sh.GetRawText()} overflows"); }
        if (expected != end - begin)
            throw Corrupt(path, $"tensor '{name}': shape {sh.GetRawText()} of {dtName} needs {expected} bytes but data_offsets span {end - begin}");
        return (dtype, shape, begin, end);
    }

    private static long ReadOffset(string path, string name, JsonElement v) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x) && x >= 0
            ? x
            : throw Corrupt(path, $"tensor '{name}': data_offsets entries must be non-negative integers, found {v.GetRawText()}");

    private static InvalidDataException Corrupt(string path, string what) =>
        new($"{path}: invalid safetensors file: {what}");

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        _file.Dispose();
    }

    /// <summary>Header text as stored (for `nq info`).</summary>
    public string HeaderJson
    {
        get
        {
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(_file.Slice(0, 8));
            return Encoding.UTF8.GetString(_file.Slice(8, (int)n));
        }
    }
}
