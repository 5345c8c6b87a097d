using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace NativeQuant.Tests.Tokenizers;

/// <summary>One text of tests/reference/tokenizer_corpus.json.gz with the ids of the reference implementations.</summary>
/// <param name="Llama">sentencepiece ids with the stories15M tokenizer.bin vocabulary (Llama 2).</param>
/// <param name="TokenizerJson">sentencepiece ids with the llama2-tokenizer/tokenizer.json vocabulary (Mistral's).</param>
/// <param name="Gpt2">gpt-3-encoder ids.</param>
public sealed record CorpusEntry(string Source, string Text, int[] Llama, int[] TokenizerJson, int[] Gpt2)
{
    public override string ToString() => $"{Source}: {(Text.Length > 40 ? Text[..40] + "…" : Text)}";
}

/// <summary>Locates the committed reference dumps and the fetched tokenizer assets.</summary>
public static class TokenizerReference
{
    public static string Directory { get; } = FindReferenceDirectory();

    public static string LlamaTokenizerBin => NativeQuant.Assets.Path("stories15M/tokenizer.bin");
    public static string LlamaTokenizerJson => NativeQuant.Assets.Path("llama2-tokenizer/tokenizer.json");
    public static string Gpt2EncoderJson => NativeQuant.Assets.Path("gpt2/encoder.json");
    public static string Gpt2VocabBpe => NativeQuant.Assets.Path("gpt2/vocab.bpe");

    private static readonly Lazy<IReadOnlyList<CorpusEntry>> LazyCorpus = new(LoadCorpus);
    public static IReadOnlyList<CorpusEntry> Corpus => LazyCorpus.Value;

    /// <summary>Searches above the test binaries, then above this source file (builds with --artifacts-path live elsewhere).</summary>
    private static string FindReferenceDirectory([CallerFilePath] string sourceFile = "")
    {
        foreach (string start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) ?? "" })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "tests", "reference");
                if (File.Exists(Path.Combine(candidate, "make_reference.py"))) return candidate;
            }
        throw new DirectoryNotFoundException($"tests/reference not found above {AppContext.BaseDirectory} or {sourceFile}");
    }

    private static IReadOnlyList<CorpusEntry> LoadCorpus()
    {
        using var gz = new GZipStream(File.OpenRead(Path.Combine(Directory, "tokenizer_corpus.json.gz")), CompressionMode.Decompress);
        using var doc = JsonDocument.Parse(gz);
        return doc.RootElement.GetProperty("entries").EnumerateArray().Select(e => new CorpusEntry(
            e.GetProperty("source").GetString()!, e.GetProperty("text").GetString()!,
            Ids(e, "llama"), Ids(e, "tokenizer_json"), Ids(e, "gpt2"))).ToList();
    }

    private static int[] Ids(JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(x => x.GetInt32()).ToArray();
}
