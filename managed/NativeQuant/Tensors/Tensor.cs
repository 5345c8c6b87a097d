using System.Numerics.Tensors;
using Tensor = NativeQuant.Tensors.Tensor;
using System.Runtime.InteropServices;
using NativeQuant.Autograd;

namespace NativeQuant.Tensors;

/// <summary>
/// An n-dimensional array over 64-byte aligned native memory (nq_buffer_alloc), row-major with explicit strides.
/// Views (Reshape/Transpose/Narrow) share the storage. Memory is released deterministically by
/// <see cref="Dispose"/> or by the <see cref="TensorScope"/> that owns the tensor; the GC never frees it.
/// Autograd state (RequiresGrad, Grad, GradFn) lives here as in PyTorch.
/// </summary>
public unsafe class Tensor : IDisposable
{
    private Storage? _storage;
    private readonly int[] _shape;
    private readonly int[] _strides;

    public DType DType { get; }
    /// <summary>Element offset of this view into its storage.</summary>
    public long Offset { get; }
    public long NumElements { get; }
    internal TensorScope? Scope { get; set; }

    // ---- autograd state ----
    private bool _requiresGrad;
    /// <summary>Whether gradients flow to (leaf) or through (non-leaf) this tensor.</summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (value && DType != DType.Float32) throw new InvalidOperationException($"only fp32 tensors can require grad (this is {DType})");
            if (!value && GradFn != null) throw new InvalidOperationException("cannot clear RequiresGrad on a non-leaf tensor; use Detach()");
            _requiresGrad = value;
        }
    }
    /// <summary>Accumulated gradient of a leaf tensor after <see cref="Backward"/> (owned by this tensor).</summary>
    public Tensor? Grad { get; set; }
    /// <summary>The tape node that produced this tensor (null for leaves).</summary>
    public Node? GradFn { get; internal set; }
    public bool IsLeaf => GradFn == null;
    /// <summary>Whether a tape node reads this tensor's data in backward (see <see cref="Node"/>).</summary>
    internal bool SavedForBackward { get; set; }

    internal Tensor(Storage storage, DType dtype, int[] shape, int[] strides, long offset)
        : this(storage, dtype, shape, strides, offset, TensorScope.Current) { }

    private Tensor(Storage storage, DType dtype, int[] shape, int[] strides, long offset, TensorScope? scope)
    {
        _storage = storage;
        DType = dtype;
        _shape = shape;
        _strides = strides;
        Offset = offset;
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(", ", shape)}]");
            n *= d;
        }
        if (n > int.MaxValue) throw new ArgumentException($"tensor of shape [{string.Join(", ", shape)}] has more than 2^31-1 elements");
        NumElements = n;
        Scope = scope;
        Scope?.Track(this);
    }

    /// <summary>Shares <paramref name="other"/>'s storage and shape (used by <see cref="NN.Parameter"/>).</summary>
    /// A parameter is owned by its module, never by a scope.
    protected Tensor(Tensor other) : this(other.Storage, other.DType, other._shape, other._strides, other.Offset, null)
    {
        other.Storage.AddRef();
    }

    // ---- factories ----
    public static Tensor Empty(ReadOnlySpan<int> shape, DType dtype = DType.Float32)
    {
        var s = shape.ToArray();
        long n = 1;
        foreach (int d in s) n *= d;
        return new Tensor(Storage.Allocate(n * dtype.SizeInBytes()), dtype, s, ContiguousStrides(s), 0);
    }

    public static Tensor Zeros(ReadOnlySpan<int> shape, DType dtype = DType.Float32)
    {
        var t = Empty(shape, dtype);
        NativeMemory.Clear(t.RawPointer, (nuint)(t.NumElements * dtype.SizeInBytes()));
        return t;
    }

    public static Tensor Full(ReadOnlySpan<int> shape, float value)
    {
        var t = Empty(shape);
        t.AsSpan<float>().Fill(value);
        return t;
    }

    public static Tensor FromArray(float[] data, params int[] shape) => FromSpan<float>(data, shape, DType.Float32);
    public static Tensor FromArray(int[] data, params int[] shape) => FromSpan<int>(data, shape, DType.Int32);

    public static Tensor FromSpan<T>(ReadOnlySpan<T> data, ReadOnlySpan<int> shape, DType dtype) where T : unmanaged
    {
        var t = Empty(shape, dtype);
        if (sizeof(T) != dtype.SizeInBytes()) throw new ArgumentException($"{typeof(T).Name} does not match dtype {dtype}");
        if (data.Length != t.NumElements)
            throw new ArgumentException($"data has {data.Length} elements but shape [{string.Join(", ", shape.ToArray())}] needs {t.NumElements}");
        data.CopyTo(t.AsSpan<T>());
        return t;
    }

    /// <summary>Normal(0, std) values from a seeded generator (Box-Muller), for initialisation and tests.</summary>
    public static Tensor RandN(ReadOnlySpan<int> shape, Random rng, float std = 1f)
    {
        var t = Empty(shape);
        var s = t.AsSpan<float>();
        for (int i = 0; i < s.Length; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            s[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return t;
    }

    internal static int[] ContiguousStrides(int[] shape)
    {
        var strides = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { strides[i] = acc; acc *= Math.Max(shape[i], 1); }
        return strides;
    }

    // ---- shape ----
    public ReadOnlySpan<int> Shape => _shape;
    public ReadOnlySpan<int> Strides => _strides;
    public int Rank => _shape.Length;
    /// <summary>Size of dimension <paramref name="dim"/>; negative counts from the end.</summary>
    public int Size(int dim) => _shape[dim < 0 ? dim + _shape.Length : dim];
    public string ShapeString => "[" + string.Join(", ", _shape) + "]";

    public bool IsContiguous
    {
        get
        {
            int acc = 1;
            for (int i = _shape.Length - 1; i >= 0; i--)
            {
                if (_shape[i] != 1 && _strides[i] != acc) return false;
                acc *= _shape[i];
            }
            return true;
        }
    }

    public bool IsDisposed => _storage == null;

    internal Storage Storage => _storage ?? throw new ObjectDisposedException(nameof(Tensor), $"tensor {ShapeString} was disposed");

    /// <summary>Pointer to element 0 of this view.</summary>
    public void* RawPointer => Storage.Pointer + Offset * DType.SizeInBytes();

    /// <summary>fp32 pointer to element 0 (checks the dtype).</summary>
    public float* DataPointer
    {
        get
        {
            RequireDType(DType.Float32);
            return (float*)RawPointer;
        }
    }

    /// <summary>The elements of a contiguous tensor as a span of <typeparamref name="T"/>.</summary>
    public Span<T> AsSpan<T>() where T : unmanaged
    {
        if (sizeof(T) != DType.SizeInBytes() || (typeof(T) == typeof(float) && DType != DType.Float32) || (typeof(T) == typeof(int) && DType != DType.Int32))
            throw new InvalidOperationException($"cannot view a {DType} tensor as {typeof(T).Name}");
        if (!IsContiguous) throw new InvalidOperationException($"tensor {ShapeString} is not contiguous; call Contiguous() first");
        return new Span<T>(RawPointer, (int)NumElements);
    }

    /// <summary>fp32 elements of a contiguous tensor.</summary>
    public Span<float> Data => AsSpan<float>();

    public void RequireDType(DType dtype)
    {
        if (DType != dtype) throw new InvalidOperationException($"expected a {dtype} tensor, got {DType}");
    }

    /// <summary>Same storage, new shape (one dimension may be -1). The tensor must be contiguous.
    /// Tracked by autograd.</summary>
    public Tensor Reshape(params int[] shape) => Functional.Reshape(this, shape);

    /// <summary>Raw view with a new shape, not recorded on the tape.</summary>
    internal Tensor ViewRaw(int[] shape)
    {
        if (!IsContiguous) throw new InvalidOperationException($"cannot reshape non-contiguous tensor {ShapeString}");
        shape = ResolveShape(shape);
        Storage.AddRef();
        return new Tensor(Storage, DType, shape, ContiguousStrides(shape), Offset);
    }

    internal int[] ResolveShape(int[] shape)
    {
        shape = (int[])shape.Clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException("only one dimension may be -1");
                infer = i;
            }
            else known *= shape[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || NumElements % known != 0) throw new ArgumentException($"cannot reshape {ShapeString} to [{string.Join(", ", shape)}]");
            shape[infer] = (int)(NumElements / known);
            known *= shape[infer];
        }
        if (known != NumElements) throw new ArgumentException($"cannot reshape {ShapeString} ({NumElements} elements) to [{string.Join(", ", shape)}]");
        return shape;
    }

    /// <summary>Strided view with dimensions <paramref name="d0"/> and <paramref name="d1"/> swapped (no copy,
    /// not recorded on the tape; use Functional.Transpose for a differentiable copy).</summary>
    public Tensor TransposeView(int d0, int d1)
    {
        var shape = (int[])_shape.Clone();
        var strides = (int[])_strides.Clone();
        d0 = d0 < 0 ? d0 + Rank : d0;
        d1 = d1 < 0 ? d1 + Rank : d1;
        (shape[d0], shape[d1]) = (shape[d1], shape[d0]);
        (strides[d0], strides[d1]) = (strides[d1], strides[d0]);
        Storage.AddRef();
        return new Tensor(Storage, DType, shape, strides, Offset);
    }

    /// <summary>View of <paramref name="length"/> entries of dimension <paramref name="dim"/> from
    /// <paramref name="start"/> (no copy, not recorded on the tape).</summary>
    public Tensor NarrowView(int dim, int start, int length)
    {
        dim = dim < 0 ? dim + Rank : dim;
        if (start < 0 || length < 0 || start + length > _shape[dim])
            throw new ArgumentOutOfRangeException(nameof(start), $"narrow [{start}, {start + length}) out of range for dim {dim} of {ShapeString}");
        var shape = (int[])_shape.Clone();
        shape[dim] = length;
        Storage.AddRef();
        return new Tensor(Storage, DType, shape, (int[])_strides.Clone(), Offset + (long)start * _strides[dim]);
    }

    /// <summary>A contiguous copy (or this tensor's data shared in a new view when already contiguous).</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return ViewRaw(_shape);
        var dst = Empty(_shape, DType);
        CopyStrided(dst);
        return dst;
    }

    private void CopyStrided(Tensor dst)
    {
        int es = DType.SizeInBytes();
        var idx = new int[Rank];
        byte* src = (byte*)RawPointer;
        byte* d = (byte*)dst.RawPointer;
        for (long n = 0; n < NumElements; n++)
        {
            long off = 0;
            for (int i = 0; i < Rank; i++) off += (long)idx[i] * _strides[i];
            Buffer.MemoryCopy(src + off * es, d + n * es, es, es);
            for (int i = Rank - 1; i >= 0; i--)
            {
                if (++idx[i] < _shape[i]) break;
                idx[i] = 0;
            }
        }
    }

    /// <summary>A contiguous deep copy, detached from the tape.</summary>
    public Tensor Clone()
    {
        if (!IsContiguous) return Contiguous();
        var dst = Empty(_shape, DType);
        Buffer.MemoryCopy(RawPointer, dst.RawPointer, NumElements * DType.SizeInBytes(), NumElements * DType.SizeInBytes());
        return dst;
    }

    /// <summary>Copies <paramref name="src"/> (same shape and dtype) into this tensor in place.</summary>
    public void CopyFrom(Tensor src)
    {
        if (!Shape.SequenceEqual(src.Shape) || DType != src.DType)
            throw new ArgumentException($"CopyFrom: expected {DType}{ShapeString}, got {src.DType}{src.ShapeString}");
        using var c = src.IsContiguous ? null : src.Contiguous();
        var s = c ?? src;
        long bytes = NumElements * DType.SizeInBytes();
        Buffer.MemoryCopy(s.RawPointer, RawPointer, bytes, bytes);
    }

    /// <summary>A tensor sharing this data with no autograd history.</summary>
    public Tensor Detach() => ViewRaw(_shape);

    /// <summary>fp32 copy of a tensor of any floating dtype (bf16/fp16 widened exactly).</summary>
    public Tensor ToFloat32()
    {
        using var c = Contiguous();
        var dst = Empty(_shape);
        var d = dst.Data;
        switch (DType)
        {
            case DType.Float32: c.Data.CopyTo(d); break;
            case DType.BFloat16: BFloat16.ToFloat32(c.AsSpan<ushort>(), d); break;
            case DType.Float16: TensorPrimitives.ConvertToSingle(c.AsSpan<Half>(), d); break;
            default: dst.Dispose(); throw new InvalidOperationException($"ToFloat32: {DType} is not a floating type");
        }
        return dst;
    }

    public float[] ToArray() => Contiguous().DisposeAfter(t => t.Data.ToArray());

    /// <summary>The single value of a one-element fp32 tensor.</summary>
    public float Item()
    {
        if (NumElements != 1) throw new InvalidOperationException($"Item() needs one element, tensor is {ShapeString}");
        return *DataPointer;
    }

    private TResult DisposeAfter<TResult>(Func<Tensor, TResult> f)
    {
        try { return f(this); }
        finally { Dispose(); }
    }

    /// <summary>Backpropagates from this scalar (or with an explicit output gradient) into every leaf that
    /// requires grad.</summary>
    public void Backward(Tensor? gradOutput = null) => Engine.Backward(this, gradOutput);

    public override string ToString() => $"Tensor({DType}, {ShapeString}{(RequiresGrad ? ", requires_grad" : "")})";

    public void Dispose()
    {
        if (_storage == null) return;
        _storage.Release();
        _storage = null;
        GradFn = null;
        Grad?.Dispose();
        Grad = null;
        GC.SuppressFinalize(this);
    }

    internal void DisposeFromScope() => Dispose();

    // Frees the data but keeps shape and grad_fn: the tensor stays an edge of the tape (TensorScope.KeepSaved).
    internal void FreeData()
    {
        _storage?.Release();
        _storage = null;
    }
}
