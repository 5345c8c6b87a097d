using NativeQuant.Interop;

namespace NativeQuant.Optim;

/// <summary>Owner of one native pager (nq_pager_*): optimizer state beyond <see cref="BudgetBytes"/> lives in an
/// unnamed file and is paged in chunk by chunk during a step.</summary>
public sealed unsafe class Pager : IDisposable
{
    /// <summary>Paging granularity: large enough for sequential I/O, small enough that a LoRA-sized state is a few pages.</summary>
    public const long DefaultPageBytes = 64 * 1024;

    private NqPager* _pager;

    public Pager(long budgetBytes, string directory, long pageBytes = DefaultPageBytes)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"pager directory '{directory}' does not exist");
        var dir = Nq.Utf8Z(directory);
        NqPager* pager;
        fixed (byte* d = dir) Nq.Check(NativeMethods.nq_pager_create((ulong)budgetBytes, (ulong)pageBytes, d, &pager));
        _pager = pager;
        BudgetBytes = budgetBytes;
    }

    public long BudgetBytes { get; }

    internal NqPager* Handle => _pager != null ? _pager : throw new ObjectDisposedException(nameof(Pager));

    public long Alloc(long bytes)
    {
        long id;
        Nq.Check(NativeMethods.nq_pager_alloc(Handle, (ulong)bytes, &id));
        return id;
    }

    public void Free(long buffer) => Nq.Check(NativeMethods.nq_pager_free(Handle, buffer));

    /// <summary>Visits [0, bytes) of a buffer pinned in chunks of at most half the budget (so pinning never
    /// fails for lack of room); <paramref name="body"/> gets (chunk start, chunk offset, chunk length).</summary>
    public void ForEachPinnedChunk(long buffer, long bytes, Action<nint, long, int> body)
    {
        long chunk = Math.Min(BudgetBytes / 2, 1L << 30);
        for (long offset = 0; offset < bytes; offset += chunk)
        {
            int length = (int)Math.Min(chunk, bytes - offset);
            void* ptr;
            Nq.Check(NativeMethods.nq_pager_acquire(Handle, buffer, (ulong)offset, (ulong)length, &ptr));
            try { body((nint)ptr, offset, length); }
            finally { Nq.Check(NativeMethods.nq_pager_release(Handle, buffer, (ulong)offset, (ulong)length)); }
        }
    }

    public NqPagerStats Stats
    {
        get
        {
            NqPagerStats s;
            Nq.Check(NativeMethods.nq_pager_stats_get(Handle, &s));
            return s;
        }
    }

    public void Dispose()
    {
        if (_pager == null) return;
        NativeMethods.nq_pager_destroy(_pager);
        _pager = null;
    }
}
