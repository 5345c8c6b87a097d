using Microsoft.Win32.SafeHandles;

namespace NativeQuant.Interop;

/// <summary>A 64-byte aligned native allocation from nq_buffer_alloc, counted in
/// <see cref="NativeRuntime.MemoryStats"/> until disposed (or finalized).</summary>
public sealed unsafe class NativeBuffer : SafeHandleZeroOrMinusOneIsInvalid
{
    /// <summary>Allocates <paramref name="length"/> bytes (&gt; 0); contents are uninitialised.</summary>
    public NativeBuffer(long length) : base(ownsHandle: true)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        void* ptr;
        Nq.Check(NativeMethods.nq_buffer_alloc((ulong)length, &ptr));
        SetHandle((nint)ptr);
        Length = length;
    }

    /// <summary>Size in bytes.</summary>
    public long Length { get; }

    /// <summary>Start of the buffer; valid until disposal.</summary>
    public void* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsClosed, this);
            return (void*)handle;
        }
    }

    /// <summary>The buffer as elements of <typeparamref name="T"/>; trailing bytes that do not fill a
    /// whole element are not included.</summary>
    public Span<T> AsSpan<T>() where T : unmanaged
    {
        var count = Length / sizeof(T);
        if (count > int.MaxValue)
            throw new InvalidOperationException(
                $"buffer of {Length} bytes holds {count} {typeof(T).Name} elements, more than a Span can address");
        return new Span<T>(Pointer, (int)count);
    }

    protected override bool ReleaseHandle() => NativeMethods.nq_buffer_free((void*)handle) == NqStatus.Ok;
}
