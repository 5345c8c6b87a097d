using NativeQuant.Interop;

namespace NativeQuant.Tensors;

/// <summary>A reference-counted, 64-byte aligned native buffer shared by a tensor and its views.
/// Freed deterministically when the last tensor referencing it is disposed (never by the GC).</summary>
internal sealed unsafe class Storage
{
    public readonly byte* Pointer;
    public readonly long Bytes;
    private int _refCount = 1;

    private Storage(byte* pointer, long bytes)
    {
        Pointer = pointer;
        Bytes = bytes;
    }

    public static Storage Allocate(long bytes)
    {
        void* p;
        Nq.Check(NativeMethods.nq_buffer_alloc((ulong)Math.Max(bytes, 1), &p));
        return new Storage((byte*)p, bytes);
    }

    public void AddRef()
    {
        if (Interlocked.Increment(ref _refCount) <= 1)
            throw new ObjectDisposedException(nameof(Tensor), "storage was already freed");
    }

    public void Release()
    {
        int left = Interlocked.Decrement(ref _refCount);
        if (left == 0) Nq.Check(NativeMethods.nq_buffer_free(Pointer));
        else if (left < 0) throw new InvalidOperationException("tensor storage released more often than referenced");
    }
}
