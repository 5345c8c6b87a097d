using System.Text;
using System.Text.Json;
using NativeQuant.Tokenizers;
using NUnit.Framework;

namespace NativeQuant.Tests.Tokenizers;

public class ByteLevelBpeTokenizerTests
{
    private static readonly Lazy<ITokenizer> Gpt2 = new(() => Tokenizer.Load(TokenizerReference.Gpt2EncoderJson));

    [Test]
    public void KnownIdsAndSpecials()
    {
        var tok = Gpt2.Value;
        Assert.That(tok.Encode("Hello world"), Is.EqualTo(new[] { 15496, 995 }));
        Assert.That((tok.VocabSize, tok.BosId, tok.EosId), Is.EqualTo((50257, 50256, 50256)));
        Assert.That(tok.Encode("hi", addEos: true), Is.EqualTo(new[] { 5303, 50256 }));
    }

    [Test]
    public void MatchesGpt3EncoderOnCorpus()
    {
        var tok = Gpt2.Value;
        var failures = TokenizerReference.Corpus.Where(e => !tok.Encode(e.Text).SequenceEqual(e.Gpt2)).Take(5).ToList();
        Assert.That(failures, Is.Empty, () => string.Join("\n", failures.Select(f =>
            $"{f}\n  expected {string.Join(",", f.Gpt2)}\n  actual   {string.Join(",", tok.Encode(f.Text))}")));
    }

    [Test]
    public void DecodeInvertsEncodeOnCorpus()
    {
        foreach (var e in TokenizerReference.Corpus)
            Assert.That(Gpt2.Value.Decode(Gpt2.Value.Encode(e.Text)), Is.EqualTo(e.Text), e.ToString());
    }

    [Test]
    public void StreamingDecodeHoldsBackSplitCharacters()
    {
        var tok = Gpt2.Value;
        const string text = "日本語 🤖 Zürich";
        var decoder = tok.CreateStreamingDecoder();
        var sb = new StringBuilder();
        foreach (int id in tok.Encode(text))
        {
            string piece = decoder.Push(id);
            Assert.That(piece, Does.Not.Contain("\uFFFD"));
            sb.Append(piece);
        }
        Assert.That(sb.Append(decoder.Flush()).ToString(), Is.EqualTo(text));
    }

    [Test]
    public void VocabJsonMergesTxtAndTokenizerJsonGiveTheSameIds()
    {
        string dir = Directory.CreateTempSubdirectory("nq-tok-").FullName;
        try
        {
            File.Copy(TokenizerReference.Gpt2EncoderJson, Path.Combine(dir, "vocab.json"));
            File.Copy(TokenizerReference.Gpt2VocabBpe, Path.Combine(dir, "merges.txt"));
            var fromPair = Tokenizer.Load(dir);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), ByteLevelTokenizerJson(dir));
            var fromJson = Tokenizer.Load(Path.Combine(dir, "tokenizer.json"));
            Assert.That(fromJson, Is.TypeOf<ByteLevelBpeTokenizer>());
            foreach (var e in TokenizerReference.Corpus)
            {
                Assert.That(fromPair.Encode(e.Text), Is.EqualTo(e.Gpt2), e.ToString());
                Assert.That(fromJson.Encode(e.Text), Is.EqualTo(e.Gpt2), e.ToString());
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>A HF tokenizer.json for GPT-2 (as transformers saves it), with merges in the ["a", "b"] spelling.</summary>
    private static string ByteLevelTokenizerJson(string dir)
    {
        var vocab = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "vocab.json"))).RootElement;
        var merges = File.ReadLines(Path.Combine(dir, "merges.txt")).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(' '));
        return JsonSerializer.Serialize(new
        {
            version = "1.0",
            added_tokens = new[] { new { id = 50256, content = "<|endoftext|>", special = true } },
            normalizer = (object?)null,
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            decoder = new { type = "ByteLevel" },
            model = new { type = "BPE", vocab, merges },
        });
    }
}
