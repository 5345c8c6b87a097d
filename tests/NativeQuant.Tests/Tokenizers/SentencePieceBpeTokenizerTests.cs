using System.Text;
using System.Text.Json;
using NativeQuant.Tokenizers;
using NUnit.Framework;

namespace NativeQuant.Tests.Tokenizers;

public class SentencePieceBpeTokenizerTests
{
    private static readonly Lazy<ITokenizer> FromBin = new(() => Tokenizer.Load(TokenizerReference.LlamaTokenizerBin));
    private static readonly Lazy<ITokenizer> FromJson = new(() => Tokenizer.Load(TokenizerReference.LlamaTokenizerJson));

    /// <summary>The tokenizer.bin vocabulary written as a HF tokenizer.json (merge ranks instead of scores).</summary>
    private static readonly Lazy<ITokenizer> FromConvertedBin = new(() =>
    {
        string path = Path.Combine(Path.GetTempPath(), $"nq-llama-tokenizer-{Environment.ProcessId}.json");
        File.WriteAllText(path, LlamaTokenizerJsonWriter.Convert(TokenizerReference.LlamaTokenizerBin));
        try { return Tokenizer.Load(path); }
        finally { File.Delete(path); }
    });

    [Test]
    public void KnownIdsAndSpecials()
    {
        var tok = FromBin.Value;
        Assert.That(tok.Encode("Hello world", addBos: true), Is.EqualTo(new[] { 1, 15043, 3186 }));
        Assert.That(tok.Encode("Hello world", addBos: true, addEos: true), Is.EqualTo(new[] { 1, 15043, 3186, 2 }));
        Assert.That((tok.VocabSize, tok.BosId, tok.EosId), Is.EqualTo((32000, 1, 2)));
        Assert.That(tok.Encode(""), Is.Empty);
    }

    [Test]
    public void TokenizerBinMatchesSentencePieceOnCorpus() => AssertCorpus(FromBin.Value, e => e.Llama);

    [Test]
    public void SameVocabularyAsTokenizerJsonMatchesSentencePieceOnCorpus() => AssertCorpus(FromConvertedBin.Value, e => e.Llama);

    [Test]
    public void TokenizerJsonMatchesSentencePieceOnCorpus() => AssertCorpus(FromJson.Value, e => e.TokenizerJson);

    private static void AssertCorpus(ITokenizer tok, Func<CorpusEntry, int[]> expected)
    {
        var failures = TokenizerReference.Corpus.Where(e => !tok.Encode(e.Text).SequenceEqual(expected(e))).Take(5).ToList();
        Assert.That(failures, Is.Empty, () => string.Join("\n", failures.Select(f =>
            $"{f}\n  expected {string.Join(",", expected(f))}\n  actual   {string.Join(",", tok.Encode(f.Text))}")));
    }

    [Test]
    public void BinAndJsonAgreeOnWholeDocuments()
    {
        // Long inputs exercise the merge queue far beyond the short corpus snippets.
        foreach (string line in File.ReadLines(NativeQuant.Assets.Path("datasets/sotu/data.jsonl")).Where(l => l.Length > 0).Take(20))
        {
            string text = JsonDocument.Parse(line).RootElement.GetProperty("text").GetString()!;
            Assert.That(FromConvertedBin.Value.Encode(text), Is.EqualTo(FromBin.Value.Encode(text)));
        }
    }

    [Test]
    public void DecodeInvertsEncodeOnCorpus()
    {
        // Lossless with byte fallback and an identity normalizer: Decode drops exactly the dummy-prefix space.
        foreach (var e in TokenizerReference.Corpus)
        {
            Assert.That(FromBin.Value.Decode(e.Llama), Is.EqualTo(e.Text), e.ToString());
            Assert.That(FromJson.Value.Decode(e.TokenizerJson), Is.EqualTo(e.Text), e.ToString());
        }
    }

    [Test]
    public void StreamingDecodeOfByteFallbackYieldsOnlyWholeCharacters()
    {
        var tok = FromBin.Value;
        const string text = "Emoji 🤖👋🏽 and 𠀀 fall back to bytes";
        int[] ids = tok.Encode(text, addBos: true);
        Assert.That(ids.Count(id => id is >= 3 and < 259), Is.GreaterThanOrEqualTo(8), "expected byte-fallback pieces");
        var decoder = tok.CreateStreamingDecoder();
        var sb = new StringBuilder();
        foreach (int id in ids)
        {
            string piece = decoder.Push(id);
            Assert.That(piece, Does.Not.Contain("\uFFFD"));
            Assert.That(piece.Length == 0 || !char.IsHighSurrogate(piece[^1]), "a surrogate pair was split");
            sb.Append(piece);
        }
        Assert.That(sb.Append(decoder.Flush()).ToString(), Is.EqualTo(text));
    }

    [Test]
    public void StoriesGreedyContinuationDecodes()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TokenizerReference.Directory, "stories15m_reference.json")));
        int[] ids = doc.RootElement.GetProperty("greedy_from_bos").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        string text = FromBin.Value.Decode(ids);
        Assert.That(text, Is.EqualTo(doc.RootElement.GetProperty("greedy_text").GetString()));
        Assert.That(text, Does.StartWith("Once upon a time, there was a little girl named Lily. She loved to play outside"));
    }
}
