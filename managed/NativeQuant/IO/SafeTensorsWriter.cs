using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace NativeQuant.IO;

/// <summary>
/// Builds a .safetensors file: tensors are sorted by name (ordinal) so the same content always gives the same
/// bytes, "__metadata__" comes first, the header is padded with spaces to a multiple of 8 bytes (so the data
/// buffer is 8-byte aligned, as the format recommends), and <see cref="Save"/> replaces the destination
/// atomically.
/// </summary>
public sealed class SafeTensorsWriter
{
    private readonly SortedDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    private sealed record Entry(TensorDType DType, long[] Shape, long ByteLength, Action<Stream> WriteData);

    public SortedDictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    public void Add(string name, TensorDType dtype, IReadOnlyList<long> shape, ReadOnlyMemory<byte> data) =>
        Add(name, dtype, shape, data.Length, s => s.Write(data.Span));

    /// <summary>Adds a tensor whose bytes are copied from an open source at save time.</summary>
    public void Add(TensorInfo tensor, string? name = null) =>
        Add(name ?? tensor.Name, tensor.DType, tensor.Shape, tensor.ByteLength, s => s.Write(tensor.Data));

    /// <summary>Adds a tensor from typed values (copied now).</summary>
    public void AddValues<T>(string name, TensorDType dtype, IReadOnlyList<long> shape, T[] values) where T : unmanaged =>
        Add(name, dtype, shape, new ReadOnlyMemory<byte>(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));

    /// <summary>Adds a tensor whose <paramref name="byteLength"/> bytes are produced by <paramref name="writeData"/> at save time.</summary>
    public void Add(string name, TensorDType dtype, IReadOnlyList<long> shape, long byteLength, Action<Stream> writeData)
    {
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("tensor name must not be empty", nameof(name));
        if (name == SafeTensorsFile.MetadataKey) throw new ArgumentException($"'{name}' is reserved for metadata", nameof(name));
        if (_entries.ContainsKey(name)) throw new ArgumentException($"tensor '{name}' was added twice", nameof(name));
        long elements = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"tensor '{name}': negative dimension in shape [{string.Join(", ", shape)}]", nameof(shape));
            elements = checked(elements * d);
        }
        if (checked(elements * dtype.ItemSize()) != byteLength)
            throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", shape)}] of {dtype.SafeTensorsName()} needs {elements * dtype.ItemSize()} bytes, got {byteLength}", nameof(shape));
        _entries.Add(name, new Entry(dtype, shape.ToArray(), byteLength, writeData));
    }

    /// <summary>Writes to <paramref name="path"/> atomically; on failure the destination is untouched.</summary>
    public void Save(string path) => AtomicFile.Write(path, WriteTo);

    public void WriteTo(Stream stream)
    {
        byte[] header = BuildHeader();
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (var (name, e) in _entries)
        {
            long before = stream.CanSeek ? stream.Position : -1;
            e.WriteData(stream);
            if (before >= 0 && stream.Position - before != e.ByteLength)
                throw new InvalidOperationException($"tensor '{name}': wrote {stream.Position - before} bytes, expected {e.ByteLength}");
        }
    }

    public byte[] ToArray()
    {
        using var ms = new MemoryStream();
        WriteTo(ms);
        return ms.ToArray();
    }

    private byte[] BuildHeader()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (Metadata.Count > 0)
            {
                w.WriteStartObject(SafeTensorsFile.MetadataKey);
                foreach (var (k, v) in Metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, e) in _entries)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", e.DType.SafeTensorsName());
                w.WriteStartArray("shape");
                foreach (long d in e.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + e.ByteLength);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += e.ByteLength;
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }
}
