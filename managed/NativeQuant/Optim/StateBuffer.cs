using NativeQuant.Interop;

namespace NativeQuant.Optim;

/// <summary>One zero-initialised block of optimizer state (a moment, or the absmax of 8-bit blocks), either
/// resident native memory or a buffer of a <see cref="Pager"/>.</summary>
internal abstract class StateBuffer : IDisposable
{
    protected StateBuffer(long bytes) => Bytes = bytes;

    public long Bytes { get; }
    public abstract bool IsPaged { get; }

    public abstract void CopyTo(Span<byte> destination);
    public abstract void CopyFrom(ReadOnlySpan<byte> source);
    public abstract void Dispose();

    public static StateBuffer Create(long bytes, Pager? pager) =>
        pager == null ? new Resident(bytes) : new Paged(bytes, pager);

    internal sealed unsafe class Resident : StateBuffer
    {
        private readonly NativeBuffer _buffer;

        public Resident(long bytes) : base(bytes)
        {
            _buffer = new NativeBuffer(bytes);
            _buffer.AsSpan<byte>().Clear();
        }

        public override bool IsPaged => false;
        public void* Pointer => _buffer.Pointer;
        public override void CopyTo(Span<byte> destination) => _buffer.AsSpan<byte>().CopyTo(destination);
        public override void CopyFrom(ReadOnlySpan<byte> source) => source.CopyTo(_buffer.AsSpan<byte>());
        public override void Dispose() => _buffer.Dispose();
    }

    internal sealed unsafe class Paged : StateBuffer
    {
        private readonly Pager _pager;

        public Paged(long bytes, Pager pager) : base(bytes)
        {
            _pager = pager;
            Id = pager.Alloc(bytes);
        }

        public override bool IsPaged => true;
        public long Id { get; }

        public override void CopyTo(Span<byte> destination)
        {
            fixed (byte* dst = destination)
            {
                byte* d = dst;
                _pager.ForEachPinnedChunk(Id, Bytes, (ptr, offset, length) =>
                    new ReadOnlySpan<byte>((void*)ptr, length).CopyTo(new Span<byte>(d + offset, length)));
            }
        }

        public override void CopyFrom(ReadOnlySpan<byte> source)
        {
            fixed (byte* src = source)
            {
                byte* s = src;
                _pager.ForEachPinnedChunk(Id, Bytes, (ptr, offset, length) =>
                    new ReadOnlySpan<byte>(s + offset, length).CopyTo(new Span<byte>((void*)ptr, length)));
            }
        }

        public override void Dispose() => _pager.Free(Id);
    }
}
