using System.Text;

namespace NativeQuant.Tokenizers;

/// <summary>What a SentencePiece vocabulary entry is (sentencepiece's ModelProto piece types that Llama uses).</summary>
public enum PieceKind { Normal, Unknown, Control, Byte }

/// <summary>
/// SentencePiece BPE as used by Llama: identity normalization with a dummy-prefix "▁" and spaces escaped to "▁", then
/// BPE over the whole text by merge priority, then byte fallback (&lt;0xNN&gt; pieces) for characters outside the
/// vocabulary. Matches sentencepiece's bpe_model.cc, not llama2.c's score-greedy approximation.
/// </summary>
public sealed class SentencePieceBpeTokenizer : ITokenizer
{
    private const char SpaceSymbol = '\u2581';
    private static readonly byte[] UnknownSurface = Encoding.UTF8.GetBytes(" \u2047 "); // sentencepiece's unk surface

    private readonly string[] _pieces;
    private readonly BpeMergeTable _merges;
    private readonly Dictionary<int, int> _charIds = new(); // code point -> id of its single-character piece
    private readonly int[]? _byteIds;                        // byte -> id of <0xNN>, null without byte fallback
    private readonly byte[][] _bytes, _bytesAtStart;
    private readonly PieceCache _cache = new();
    private readonly Func<ReadOnlySpan<char>, int[]> _mergeWord;

    // True when no piece has "▁" after another character (sentencepiece's split_by_whitespace training default): then
    // no merge can cross the start of a word, so words merge independently and repeated words hit the cache.
    private readonly bool _wordsAreIndependent;

    public int VocabSize => _pieces.Length;
    public int BosId { get; }
    public int EosId { get; }
    public int UnkId { get; }
    public bool ByteFallback => _byteIds is not null;

    /// <param name="pieces">Pieces with spaces spelled "▁"; byte pieces spelled &lt;0xNN&gt;.</param>
    /// <param name="merges">Merge rules between piece ids (by score or by rank, depending on the file format).</param>
    internal SentencePieceBpeTokenizer(string[] pieces, PieceKind[] kinds, BpeMergeTable merges, int unkId, int bosId,
        int eosId, string source)
    {
        _pieces = pieces;
        _merges = merges;
        (UnkId, BosId, EosId) = (unkId, bosId, eosId);
        var byteIds = new int[256];
        Array.Fill(byteIds, -1);
        _bytes = new byte[pieces.Length][];
        _bytesAtStart = new byte[pieces.Length][];
        for (int id = 0; id < pieces.Length; id++)
        {
            string p = pieces[id];
            _bytes[id] = kinds[id] switch
            {
                PieceKind.Control => [],
                PieceKind.Unknown => UnknownSurface,
                PieceKind.Byte => [ParseBytePiece(p, source)],
                _ => Encoding.UTF8.GetBytes(p.Replace(SpaceSymbol, ' ')),
            };
            _bytesAtStart[id] = kinds[id] == PieceKind.Normal && p.Length > 0 && p[0] == SpaceSymbol ? _bytes[id][1..] : _bytes[id];
            if (kinds[id] == PieceKind.Byte) byteIds[_bytes[id][0]] = id;
            else if (kinds[id] == PieceKind.Normal && Rune.DecodeFromUtf16(p, out Rune r, out int w) == System.Buffers.OperationStatus.Done && w == p.Length)
                _charIds.TryAdd(r.Value, id);
        }
        int bytesFound = byteIds.Count(id => id >= 0);
        if (bytesFound is not (0 or 256))
            throw new TokenizerFormatException(source, $"byte fallback needs all 256 distinct <0xNN> pieces, found {bytesFound}");
        _byteIds = bytesFound == 256 ? byteIds : null;
        _wordsAreIndependent = !pieces.Where((p, id) => kinds[id] == PieceKind.Normal)
            .Any(p => p.AsSpan().TrimStart(SpaceSymbol).Contains(SpaceSymbol));
        _mergeWord = MergeWord;
        if (_byteIds is null && (uint)unkId >= (uint)pieces.Length)
            throw new TokenizerFormatException(source, "vocabulary has neither byte-fallback pieces nor an <unk> piece");
    }

    private static byte ParseBytePiece(string p, string source) =>
        p.Length == 6 && p.StartsWith("<0x") && p[5] == '>' && byte.TryParse(p.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b)
            ? b : throw new TokenizerFormatException(source, $"byte piece '{p}' is not of the form <0xNN>");

    public string IdToPiece(int id) => _pieces[id];

    public int[] Encode(string text, bool addBos = false, bool addEos = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos) ids.Add(RequireSpecial(BosId, "BOS"));
        if (text.Length > 0)
        {
            string normalized = SpaceSymbol + text.Replace(' ', SpaceSymbol);
            bool lastWasUnk = false;
            Span<byte> utf8 = stackalloc byte[4];
            int start = 0;
            while (start < normalized.Length)
            {
                int end = _wordsAreIndependent ? WordEnd(normalized, start) : normalized.Length;
                foreach (int s in _cache.GetOrAdd(normalized.AsSpan(start, end - start), _mergeWord))
                {
                    if (s >= 0) { ids.Add(s); lastWasUnk = false; }
                    else if (_byteIds is not null)
                        foreach (byte b in utf8[..new Rune(~s).EncodeToUtf8(utf8)]) ids.Add(_byteIds[b]);
                    else if (!lastWasUnk) { ids.Add(UnkId); lastWasUnk = true; } // sentencepiece fuses adjacent unknowns
                }
                start = end;
            }
        }
        if (addEos) ids.Add(RequireSpecial(EosId, "EOS"));
        return ids.ToArray();
    }

    /// <summary>A word runs up to the next "▁" that follows another character.</summary>
    private static int WordEnd(string s, int start)
    {
        int i = start + 1;
        while (i < s.Length && !(s[i] == SpaceSymbol && s[i - 1] != SpaceSymbol)) i++;
        return i;
    }

    /// <summary>BPE over one word; out-of-vocabulary characters stay as ~code point for byte fallback.</summary>
    private int[] MergeWord(ReadOnlySpan<char> word)
    {
        var symbols = new int[word.Length];
        int n = 0;
        foreach (Rune r in word.EnumerateRunes()) symbols[n++] = SymbolOf(r.Value);
        return symbols.AsSpan(0, _merges.Merge(symbols.AsSpan(0, n))).ToArray();
    }

    private int SymbolOf(int codePoint) => _charIds.TryGetValue(codePoint, out int id) ? id : ~codePoint;

    private static int RequireSpecial(int id, string name) =>
        id >= 0 ? id : throw new InvalidOperationException($"this vocabulary has no {name} token");

    public ReadOnlySpan<byte> TokenBytes(int id, bool atStart) => atStart ? _bytesAtStart[id] : _bytes[id];
}
