using System.Text;

namespace NativeQuant.Tokenizers;

/// <summary>
/// GPT-2 byte-level BPE: pre-tokenize with the GPT-2 pattern, map each pre-token's UTF-8 bytes to byte symbols, merge by
/// rank. Lossless: every byte has a symbol, so Decode(Encode(x)) == x for any string.
/// </summary>
public sealed class ByteLevelBpeTokenizer : ITokenizer
{
    private readonly int[] _byteIds = new int[256];
    private readonly BpeMergeTable _merges;
    private readonly byte[][] _tokenBytes;
    private readonly PieceCache _cache = new();
    private readonly Func<ReadOnlySpan<char>, int[]> _encodePiece;

    public int VocabSize => _tokenBytes.Length;
    public int BosId { get; }
    public int EosId { get; }

    /// <param name="vocab">Token text (in the byte-level alphabet) -&gt; id.</param>
    /// <param name="merges">Merge rules in rank order.</param>
    /// <param name="source">Vocabulary file named in error messages.</param>
    /// <param name="mergesSource">Merges file named in error messages (the same file for tokenizer.json).</param>
    internal ByteLevelBpeTokenizer(IReadOnlyDictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges,
        string source, string mergesSource)
    {
        int size = vocab.Count == 0 ? 0 : vocab.Values.Max() + 1;
        if (size != vocab.Count)
            throw new TokenizerFormatException(source, $"vocabulary ids must be 0..{vocab.Count - 1} without gaps");
        _tokenBytes = new byte[size][];
        foreach (var (text, id) in vocab)
            _tokenBytes[id] = _tokenBytes[id] is null ? TextToBytes(text)
                : throw new TokenizerFormatException(source, $"id {id} is assigned to two tokens");
        for (int b = 0; b < 256; b++)
            if (!vocab.TryGetValue(ByteLevelAlphabet.ByteToChar[b].ToString(), out _byteIds[b]))
                throw new TokenizerFormatException(source,
                    $"byte-level vocabulary lacks the symbol for byte 0x{b:X2} ('{ByteLevelAlphabet.ByteToChar[b]}')");
        _merges = new BpeMergeTable();
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (l, r) = merges[rank];
            if (!vocab.TryGetValue(l, out int a) || !vocab.TryGetValue(r, out int c) || !vocab.TryGetValue(l + r, out int m))
                throw new TokenizerFormatException(mergesSource, $"merge #{rank + 1} '{l} {r}' uses a token missing from the vocabulary");
            _merges.Add(a, c, -rank, m);
        }
        BosId = EosId = vocab.TryGetValue("<|endoftext|>", out int eot) ? eot : -1;
        _encodePiece = EncodePiece;
    }

    /// <summary>Token text in the byte-level alphabet -&gt; bytes; added tokens outside it decode as their UTF-8.</summary>
    private static byte[] TextToBytes(string text)
    {
        var bytes = new byte[text.Length];
        for (int i = 0; i < text.Length; i++)
            if (!ByteLevelAlphabet.TryCharToByte(text[i], out bytes[i])) return Encoding.UTF8.GetBytes(text);
        return bytes;
    }

    public int[] Encode(string text, bool addBos = false, bool addEos = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos) ids.Add(RequireSpecial(BosId, "BOS"));
        Gpt2PreTokenizer.Split(text, (start, length) => ids.AddRange(_cache.GetOrAdd(text.AsSpan(start, length), _encodePiece)));
        if (addEos) ids.Add(RequireSpecial(EosId, "EOS"));
        return ids.ToArray();
    }

    private int[] EncodePiece(ReadOnlySpan<char> piece)
    {
        int n = Encoding.UTF8.GetByteCount(piece);
        Span<byte> bytes = n <= 256 ? stackalloc byte[n] : new byte[n];
        Encoding.UTF8.GetBytes(piece, bytes);
        var symbols = new int[n];
        for (int i = 0; i < n; i++) symbols[i] = _byteIds[bytes[i]];
        return symbols.AsSpan(0, _merges.Merge(symbols)).ToArray();
    }

    private static int RequireSpecial(int id, string name) =>
        id >= 0 ? id : throw new InvalidOperationException($"this vocabulary has no {name} token (<|endoftext|>)");

    public ReadOnlySpan<byte> TokenBytes(int id, bool atStart) => _tokenBytes[id];
}
