using System.Buffers.Binary;
using System.Text;

namespace NativeQuant.Tokenizers;

/// <summary>
/// Reads llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 byte length, bytes.
/// Conventions of llama2.c's exporter: ids 0/1/2 are &lt;unk&gt;/BOS/EOS, "▁" was written as a space, and the 256
/// byte-fallback pieces follow the specials (spelled &lt;0xNN&gt;, as the raw byte, or as U+00NN in UTF-8, depending on
/// the exporter). Merge priority is the merged piece's score, as in sentencepiece.
/// </summary>
internal static class LlamaTokenizerBinReader
{
    private const int MaxTokenLength = 1 << 16; // far above any real vocabulary; rejects garbage headers early
    private const int FirstBytePiece = 3;

    public static SentencePieceBpeTokenizer Read(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        if (data.Length < 4) throw new TokenizerFormatException(path, "too short for a llama2.c tokenizer.bin header");
        int maxLen = BinaryPrimitives.ReadInt32LittleEndian(data);
        if (maxLen <= 0 || maxLen > MaxTokenLength)
            throw new TokenizerFormatException(path, $"max_token_length {maxLen} is not in [1, {MaxTokenLength}] (not a llama2.c tokenizer.bin?)");

        var raw = new List<byte[]>();
        var scores = new List<float>();
        for (int off = 4; off < data.Length;)
        {
            if (data.Length - off < 8)
                throw new TokenizerFormatException(path, $"token {raw.Count} at byte {off}: truncated score/length record");
            float score = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(off));
            int len = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(off + 4));
            if (float.IsNaN(score)) throw new TokenizerFormatException(path, $"token {raw.Count}: score is NaN");
            if (len < 0 || len > maxLen || len > data.Length - off - 8)
                throw new TokenizerFormatException(path, $"token {raw.Count} at byte {off}: length {len} is not in [0, {Math.Min(maxLen, data.Length - off - 8)}]");
            raw.Add(data.AsSpan(off + 8, len).ToArray());
            scores.Add(score);
            off += 8 + len;
        }
        if (raw.Count < FirstBytePiece) throw new TokenizerFormatException(path, $"only {raw.Count} tokens; expected <unk>, BOS, EOS first");

        bool byteBlock = raw.Count >= FirstBytePiece + 256 && Enumerable.Range(0, 256).All(b => SpellsByte(raw[FirstBytePiece + b], b));
        var pieces = new string[raw.Count];
        var kinds = new PieceKind[raw.Count];
        var utf8 = new UTF8Encoding(false, true);
        for (int id = 0; id < raw.Count; id++)
        {
            (pieces[id], kinds[id]) = id switch
            {
                0 => ("<unk>", PieceKind.Unknown),
                1 => ("<s>", PieceKind.Control),
                2 => ("</s>", PieceKind.Control),
                _ when byteBlock && id < FirstBytePiece + 256 => ($"<0x{id - FirstBytePiece:X2}>", PieceKind.Byte),
                _ => (Utf8Piece(utf8, raw[id], id, path).Replace(' ', '\u2581'), PieceKind.Normal),
            };
        }
        return new SentencePieceBpeTokenizer(pieces, kinds, MergesFromScores(pieces, kinds, scores), 0, 1, 2, path);
    }

    private static bool SpellsByte(byte[] piece, int b) =>
        (piece.Length == 1 && piece[0] == b)
        || piece.AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(((char)b).ToString()))
        || piece.AsSpan().SequenceEqual(Encoding.ASCII.GetBytes($"<0x{b:X2}>"));

    private static string Utf8Piece(UTF8Encoding utf8, byte[] bytes, int id, string path)
    {
        try { return utf8.GetString(bytes); }
        catch (DecoderFallbackException) { throw new TokenizerFormatException(path, $"token {id} is not valid UTF-8"); }
    }

    /// <summary>sentencepiece merges two adjacent symbols whenever their concatenation is a piece, with that piece's score.</summary>
    private static BpeMergeTable MergesFromScores(string[] pieces, PieceKind[] kinds, List<float> scores)
    {
        var ids = new Dictionary<string, int>();
        for (int id = 0; id < pieces.Length; id++)
            if (kinds[id] == PieceKind.Normal) ids.TryAdd(pieces[id], id);
        var table = new BpeMergeTable();
        foreach (var (piece, merged) in ids)
            for (int split = 1; split < piece.Length; split++)
            {
                if (char.IsLowSurrogate(piece[split])) continue;
                if (ids.TryGetValue(piece[..split], out int left) && ids.TryGetValue(piece[split..], out int right))
                    table.Add(left, right, scores[merged], merged);
            }
        return table;
    }
}
