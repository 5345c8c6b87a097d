namespace NativeQuant.IO;

/// <summary>
/// One named tensor inside an open <see cref="ITensorSource"/>: dtype, shape and its bytes, read in place
/// from the source's memory mapping (no copy). <see cref="Data"/> is valid only while the source is open.
/// </summary>
public sealed unsafe class TensorInfo
{
    private readonly byte* _data;
    private readonly ITensorSource _owner;

    internal TensorInfo(ITensorSource owner, string name, TensorDType dtype, long[] shape, byte* data, long byteLength)
    {
        _owner = owner;
        Name = name;
        DType = dtype;
        Shape = shape;
        _data = data;
        ByteLength = byteLength;
    }

    public string Name { get; }
    public TensorDType DType { get; }
    public IReadOnlyList<long> Shape { get; }
    public long ByteLength { get; }
    public long ElementCount => ByteLength / DType.ItemSize();

    /// <summary>The raw little-endian bytes.</summary>
    public ReadOnlySpan<byte> Data
    {
        get
        {
            if (_owner.IsDisposed) throw new ObjectDisposedException(_owner.SourcePath, $"tensor '{Name}' was read from a source that has been disposed");
            if (ByteLength > int.MaxValue)
                throw new NotSupportedException($"{_owner.SourcePath}: tensor '{Name}' has {ByteLength} bytes, more than one span can address (2 GiB)");
            return new ReadOnlySpan<byte>(_data, (int)ByteLength);
        }
    }

    /// <summary>Unmanaged address of the first byte (for passing straight to native kernels).</summary>
    public byte* Pointer => _owner.IsDisposed ? throw new ObjectDisposedException(_owner.SourcePath) : _data;

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    public override string ToString() => $"{Name} {DType.SafeTensorsName()} {ShapeText}";
}
