using System.Text.Json;

namespace NativeQuant.Tokenizers;

/// <summary>Loads a tokenizer, picking the format from the file (or the files in a model directory).</summary>
public static class Tokenizer
{
    private static readonly (string Vocab, string Merges)[] VocabPairs = [("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")];

    /// <summary>
    /// Accepts a HF tokenizer.json, GPT-2 encoder.json/vocab.json (with vocab.bpe/merges.txt beside it) or either merges
    /// file, a llama2.c tokenizer.bin, or a directory holding one of those (tried in that order).
    /// </summary>
    public static ITokenizer Load(string path)
    {
        if (Directory.Exists(path)) return LoadDirectory(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer file '{path}' does not exist", path);
        string name = Path.GetFileName(path);
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        foreach (var (vocab, merges) in VocabPairs)
            if (name == merges) return Gpt2VocabReader.Read(RequireSibling(path, dir, vocab), path);
        if (Path.GetExtension(path) == ".model")
            throw new TokenizerFormatException(path,
                "SentencePiece .model (protobuf) files are not supported; use the model's tokenizer.json or a llama2.c tokenizer.bin");
        return FirstNonSpaceByte(path) == '{' ? LoadJson(path, dir) : LlamaTokenizerBinReader.Read(path);
    }

    private static ITokenizer LoadDirectory(string dir)
    {
        string Child(string name) => Path.Combine(dir, name);
        if (File.Exists(Child("tokenizer.json"))) return Load(Child("tokenizer.json"));
        foreach (var (vocab, merges) in VocabPairs)
            if (File.Exists(Child(vocab)) && File.Exists(Child(merges))) return Gpt2VocabReader.Read(Child(vocab), Child(merges));
        if (File.Exists(Child("tokenizer.bin"))) return LlamaTokenizerBinReader.Read(Child("tokenizer.bin"));
        throw new FileNotFoundException(
            $"directory '{dir}' has no tokenizer: expected tokenizer.json, vocab.json+merges.txt, encoder.json+vocab.bpe or tokenizer.bin");
    }

    private static ITokenizer LoadJson(string path, string dir)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 256 }); }
        catch (JsonException e) { throw new TokenizerFormatException(path, $"invalid JSON: {e.Message}"); }
        using (doc)
        {
            // An object-valued "model" marks tokenizer.json; GPT-2's encoder.json has a token "model" mapping to an id.
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("model", out var m)
                && m.ValueKind == JsonValueKind.Object)
                return HfTokenizerJsonReader.Read(path, doc.RootElement);
        }
        // A bare token -> id map: GPT-2's encoder.json / vocab.json, whose merges live in a sibling file.
        foreach (var (vocab, merges) in VocabPairs)
            if (File.Exists(Path.Combine(dir, merges))) return Gpt2VocabReader.Read(path, Path.Combine(dir, merges));
        throw new TokenizerFormatException(path,
            "JSON is neither a tokenizer.json (no \"model\") nor a vocabulary with merges.txt / vocab.bpe beside it");
    }

    private static string RequireSibling(string path, string dir, string sibling)
    {
        string p = Path.Combine(dir, sibling);
        return File.Exists(p) ? p : throw new TokenizerFormatException(path, $"merges file needs its vocabulary '{sibling}' in the same directory");
    }

    private static int FirstNonSpaceByte(string path)
    {
        using var f = File.OpenRead(path);
        int b;
        while ((b = f.ReadByte()) is ' ' or '\t' or '\r' or '\n') { }
        return b;
    }
}
