using System.Text.Json;

namespace NativeQuant.Tokenizers;

/// <summary>
/// Reads GPT-2's two-file vocabulary: encoder.json / vocab.json (token -&gt; id, byte-level alphabet) and
/// vocab.bpe / merges.txt (a "#version" line, then one "left right" merge per line in rank order).
/// </summary>
internal static class Gpt2VocabReader
{
    public static ByteLevelBpeTokenizer Read(string vocabPath, string mergesPath)
    {
        Dictionary<string, int> vocab;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(vocabPath));
            vocab = ParseVocab(doc.RootElement, vocabPath);
        }
        catch (JsonException e) { throw new TokenizerFormatException(vocabPath, $"invalid JSON: {e.Message}"); }
        return new ByteLevelBpeTokenizer(vocab, ReadMerges(mergesPath), vocabPath, mergesPath);
    }

    public static Dictionary<string, int> ParseVocab(JsonElement obj, string path)
    {
        if (obj.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException(path, "expected a JSON object mapping token -> id");
        var vocab = new Dictionary<string, int>();
        foreach (var p in obj.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                throw new TokenizerFormatException(path, $"token '{p.Name}' must map to a non-negative integer id");
            vocab[p.Name] = id;
        }
        return vocab;
    }

    private static List<(string, string)> ReadMerges(string path)
    {
        var merges = new List<(string, string)>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if ((lineNo == 1 && line.StartsWith("#version")) || line.Length == 0) continue;
            if (line.Split(' ') is not [var l, var r] || l.Length == 0 || r.Length == 0)
                throw new TokenizerFormatException(path, $"line {lineNo}: expected a merge \"left right\", got '{Truncate(line)}'");
            merges.Add((l, r));
        }
        return merges;
    }

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
