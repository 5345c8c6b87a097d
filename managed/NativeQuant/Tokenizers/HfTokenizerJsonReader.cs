using System.Text.Json;

namespace NativeQuant.Tokenizers;

/// <summary>
/// Reads a Hugging Face tokenizer.json whose model is BPE, in one of the two shapes used by the models we load:
/// SentencePiece-style (Llama: byte_fallback, dummy-prefix "▁" via a Prepend+Replace normalizer or a Metaspace
/// pre-tokenizer) or byte-level (GPT-2: ByteLevel pre-tokenizer). Merge priority is the merge's rank.
/// </summary>
internal static class HfTokenizerJsonReader
{
    public static ITokenizer Read(string path, JsonElement root)
    {
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException(path, "expected a Hugging Face tokenizer.json with a \"model\" object");
        string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "BPE";
        if (type != "BPE")
            throw new TokenizerFormatException(path, $"model type '{type}' is not supported (expected BPE)");
        if (!model.TryGetProperty("vocab", out var vocabJson) || vocabJson.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException(path, "model.vocab must be an object of token -> id");
        var vocab = Gpt2VocabReader.ParseVocab(vocabJson, path);
        foreach (var added in root.TryGetProperty("added_tokens", out var a) && a.ValueKind == JsonValueKind.Array ? a.EnumerateArray() : default)
            vocab.TryAdd(added.GetProperty("content").GetString()!, added.GetProperty("id").GetInt32());
        var merges = ParseMerges(model, path);

        if (IsByteLevel(root)) return new ByteLevelBpeTokenizer(vocab, merges, path, path);
        if (!HasDummyPrefixAndEscapedSpaces(root))
            throw new TokenizerFormatException(path,
                "unsupported BPE setup: expected a ByteLevel pre-tokenizer (GPT-2) or a Prepend(\"▁\")+Replace(\" \",\"▁\") normalizer / Metaspace pre-tokenizer (Llama)");
        return SentencePieceFromVocab(vocab, merges, model, path);
    }

    private static List<(string, string)> ParseMerges(JsonElement model, string path)
    {
        if (!model.TryGetProperty("merges", out var m) || m.ValueKind != JsonValueKind.Array)
            throw new TokenizerFormatException(path, "model.merges must be an array");
        var merges = new List<(string, string)>();
        foreach (var e in m.EnumerateArray())
        {
            // Two spellings exist: "left right" (tokenizers < 0.20) and ["left", "right"].
            if (e.ValueKind == JsonValueKind.String && e.GetString()!.Split(' ') is [var l, var r]) merges.Add((l, r));
            else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2)
                merges.Add((e[0].GetString()!, e[1].GetString()!));
            else throw new TokenizerFormatException(path, $"merge #{merges.Count + 1} is not \"left right\" or [left, right]");
        }
        return merges;
    }

    private static bool IsByteLevel(JsonElement root) =>
        root.TryGetProperty("pre_tokenizer", out var p) && p.ValueKind == JsonValueKind.Object
        && Flatten(p, "pretokenizers").Any(x => TypeOf(x) == "ByteLevel");

    private static bool HasDummyPrefixAndEscapedSpaces(JsonElement root)
    {
        var normalizers = root.TryGetProperty("normalizer", out var n) && n.ValueKind == JsonValueKind.Object
            ? Flatten(n, "normalizers").ToList() : [];
        bool prepend = normalizers.Any(x => TypeOf(x) == "Prepend" && x.GetProperty("prepend").GetString() == "\u2581");
        bool replace = normalizers.Any(x => TypeOf(x) == "Replace" && x.GetProperty("content").GetString() == "\u2581"
            && x.GetProperty("pattern").TryGetProperty("String", out var s) && s.GetString() == " ");
        if (prepend && replace) return true;
        var pre = root.TryGetProperty("pre_tokenizer", out var p) && p.ValueKind == JsonValueKind.Object
            ? Flatten(p, "pretokenizers").ToList() : [];
        return pre.Any(x => TypeOf(x) == "Metaspace" && x.GetProperty("replacement").GetString() == "\u2581"
            && !(x.TryGetProperty("split", out var sp) && sp.ValueKind == JsonValueKind.True)
            && (x.TryGetProperty("prepend_scheme", out var ps) ? ps.GetString() is "first" or "always"
                : x.TryGetProperty("add_prefix_space", out var ap) && ap.ValueKind == JsonValueKind.True));
    }

    private static IEnumerable<JsonElement> Flatten(JsonElement e, string listName) =>
        TypeOf(e) == "Sequence" && e.TryGetProperty(listName, out var list) ? list.EnumerateArray().SelectMany(x => Flatten(x, listName)) : [e];

    private static string? TypeOf(JsonElement e) => e.TryGetProperty("type", out var t) ? t.GetString() : null;

    private static SentencePieceBpeTokenizer SentencePieceFromVocab(Dictionary<string, int> vocab,
        List<(string Left, string Right)> merges, JsonElement model, string path)
    {
        var pieces = new string[vocab.Count];
        foreach (var (piece, id) in vocab)
        {
            if ((uint)id >= (uint)pieces.Length || pieces[id] is not null)
                throw new TokenizerFormatException(path, $"token ids must be 0..{vocab.Count - 1}, each used once (id {id})");
            pieces[id] = piece;
        }
        string unk = model.TryGetProperty("unk_token", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString()! : "<unk>";
        bool byteFallback = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True;
        int Find(string p) => vocab.TryGetValue(p, out int id) ? id : -1;
        int unkId = Find(unk), bosId = Find("<s>"), eosId = Find("</s>");
        var kinds = new PieceKind[pieces.Length];
        for (int id = 0; id < pieces.Length; id++)
            kinds[id] = id == unkId ? PieceKind.Unknown
                : id == bosId || id == eosId ? PieceKind.Control
                : byteFallback && pieces[id] is { Length: 6 } p && p.StartsWith("<0x") && p.EndsWith('>') ? PieceKind.Byte
                : PieceKind.Normal;

        var table = new BpeMergeTable();
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (l, r) = merges[rank];
            int a = Find(l), b = Find(r), m = Find(l + r);
            if (a < 0 || b < 0 || m < 0)
                throw new TokenizerFormatException(path, $"merge #{rank + 1} '{l} {r}' uses a token missing from the vocabulary");
            table.Add(a, b, -rank, m);
        }
        return new SentencePieceBpeTokenizer(pieces, kinds, table, unkId, bosId, eosId, path);
    }
}
