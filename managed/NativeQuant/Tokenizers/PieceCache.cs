using System.Collections.Concurrent;

namespace NativeQuant.Tokenizers;

/// <summary>
/// Memoizes the BPE result of a pre-token (text is dominated by repeated words). Looked up by span, so hits allocate
/// nothing; bounded by clearing when full, which is cheap and rare on real text.
/// </summary>
internal sealed class PieceCache
{
    private const int MaxEntries = 1 << 17;

    private readonly ConcurrentDictionary<string, int[]> _entries = new();
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public PieceCache() => _lookup = _entries.GetAlternateLookup<ReadOnlySpan<char>>();

    public int[] GetOrAdd(ReadOnlySpan<char> piece, Func<ReadOnlySpan<char>, int[]> compute)
    {
        if (_lookup.TryGetValue(piece, out var ids)) return ids;
        ids = compute(piece);
        if (_entries.Count >= MaxEntries) _entries.Clear();
        _lookup.TryAdd(piece, ids);
        return ids;
    }
}
