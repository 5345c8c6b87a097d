using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace NativeQuant.Tests.Tokenizers;

/// <summary>
/// Converts a llama2.c tokenizer.bin into a HF tokenizer.json the way transformers' LlamaConverter does: every split of
/// a piece into two pieces becomes a merge, ordered by the merged piece's score. Lets the tests load the same Llama
/// vocabulary through both readers (the fetched tokenizer.json asset holds a different vocabulary).
/// </summary>
internal static class LlamaTokenizerJsonWriter
{
    public static string Convert(string tokenizerBin)
    {
        byte[] data = File.ReadAllBytes(tokenizerBin);
        var pieces = new List<string>();
        var scores = new List<float>();
        for (int off = 4; off < data.Length;)
        {
            float score = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(off));
            int len = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(off + 4));
            int id = pieces.Count;
            pieces.Add(id switch
            {
                0 => "<unk>", 1 => "<s>", 2 => "</s>",
                < 259 => $"<0x{id - 3:X2}>",
                _ => Encoding.UTF8.GetString(data, off + 8, len).Replace(' ', '\u2581'),
            });
            scores.Add(score);
            off += 8 + len;
        }
        var ids = new Dictionary<string, int>();
        for (int id = 259; id < pieces.Count; id++) ids.TryAdd(pieces[id], id);
        var merges = new List<(float Score, int Left, int Right, string[] Pair)>();
        foreach (var (piece, id) in ids)
            for (int k = 1; k < piece.Length; k++)
                if (!char.IsLowSurrogate(piece[k]) && ids.TryGetValue(piece[..k], out int l) && ids.TryGetValue(piece[k..], out int r))
                    merges.Add((scores[id], l, r, [piece[..k], piece[k..]]));
        var ordered = merges.OrderByDescending(m => m.Score).ThenBy(m => m.Left).ThenBy(m => m.Right).Select(m => string.Join(' ', m.Pair));
        return JsonSerializer.Serialize(new
        {
            version = "1.0",
            added_tokens = new[] { new { id = 0, content = "<unk>" }, new { id = 1, content = "<s>" }, new { id = 2, content = "</s>" } },
            normalizer = new
            {
                type = "Sequence",
                normalizers = new object[]
                {
                    new { type = "Prepend", prepend = "\u2581" },
                    new { type = "Replace", pattern = new { String = " " }, content = "\u2581" },
                },
            },
            pre_tokenizer = (object?)null,
            model = new
            {
                type = "BPE", unk_token = "<unk>", byte_fallback = true, fuse_unk = true,
                vocab = pieces.Select((p, i) => (p, i)).ToDictionary(x => x.p, x => x.i),
                merges = ordered,
            },
        });
    }
}
