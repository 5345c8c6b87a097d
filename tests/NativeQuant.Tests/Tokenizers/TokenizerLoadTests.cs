using System.Buffers.Binary;
using NativeQuant.Tokenizers;
using NUnit.Framework;

namespace NativeQuant.Tests.Tokenizers;

/// <summary>Format detection and clear errors for corrupt or unsupported tokenizer files.</summary>
public class TokenizerLoadTests
{
    private string _dir = "";

    [SetUp] public void CreateDir() => _dir = Directory.CreateTempSubdirectory("nq-tokload-").FullName;
    [TearDown] public void DeleteDir() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, byte[] bytes) { string p = Path.Combine(_dir, name); File.WriteAllBytes(p, bytes); return p; }
    private string Write(string name, string text) => Write(name, System.Text.Encoding.UTF8.GetBytes(text));

    private static void AssertFormatError(string path, string expected) =>
        Assert.That(() => Tokenizer.Load(path), Throws.InstanceOf<TokenizerFormatException>()
            .With.Message.Contains(Path.GetFileName(path)).And.Message.Contains(expected));

    [Test]
    public void PicksFormatFromFileOrDirectory()
    {
        Assert.That(Tokenizer.Load(TokenizerReference.LlamaTokenizerBin), Is.TypeOf<SentencePieceBpeTokenizer>());
        Assert.That(Tokenizer.Load(TokenizerReference.LlamaTokenizerJson), Is.TypeOf<SentencePieceBpeTokenizer>());
        Assert.That(Tokenizer.Load(TokenizerReference.Gpt2VocabBpe), Is.TypeOf<ByteLevelBpeTokenizer>());
        Assert.That(Tokenizer.Load(Path.GetDirectoryName(TokenizerReference.Gpt2EncoderJson)!), Is.TypeOf<ByteLevelBpeTokenizer>());
        Assert.That(Tokenizer.Load(Path.GetDirectoryName(TokenizerReference.LlamaTokenizerBin)!), Is.TypeOf<SentencePieceBpeTokenizer>());
    }

    [Test]
    public void TruncatedTokenizerBin()
    {
        byte[] real = File.ReadAllBytes(TokenizerReference.LlamaTokenizerBin);
        AssertFormatError(Write("tokenizer.bin", real[..1001]), "truncated");
        AssertFormatError(Write("short.bin", real[..2]), "too short");
    }

    [Test]
    public void GarbageTokenizerBin()
    {
        var bytes = new byte[64];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, -7);
        AssertFormatError(Write("tokenizer.bin", bytes), "max_token_length -7");
        BinaryPrimitives.WriteInt32LittleEndian(bytes, 8);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), 1000); // first token claims 1000 bytes
        AssertFormatError(Write("tokenizer2.bin", bytes), "length 1000");
    }

    [Test]
    public void InvalidJson() => AssertFormatError(Write("tokenizer.json", "{\"model\": {\"type\": \"BPE\", "), "invalid JSON");

    [Test]
    public void UnsupportedModelType() =>
        AssertFormatError(Write("tokenizer.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}"), "model type 'Unigram'");

    [Test]
    public void BpeWithoutKnownPreTokenization() =>
        AssertFormatError(Write("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}"),
            "unsupported BPE setup");

    [Test]
    public void VocabularyWithoutByteSymbols()
    {
        string vocab = Write("vocab.json", "{\"a\": 0}");
        Write("merges.txt", "#version: 0.2\n");
        AssertFormatError(vocab, "lacks the symbol for byte 0x00");
    }

    [Test]
    public void MergeUsingUnknownToken()
    {
        // All 256 byte symbols, but the merge result "ab" is not in the vocabulary.
        var symbols = Enumerable.Range(0, 256).Select(b => System.Text.Json.JsonSerializer.Serialize(ByteSymbol(b)) + ":" + b);
        Write("vocab.json", "{" + string.Join(",", symbols) + "}");
        AssertFormatError(Write("merges.txt", "#version: 0.2\na b\n"), "merge #1 'a b' uses a token missing");
    }

    private static string ByteSymbol(int b) =>
        ((char)(b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF ? b : 256 + Enumerable.Range(0, b)
            .Count(x => x is not (>= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF)))).ToString();

    [Test]
    public void MergesWithoutVocabulary() => AssertFormatError(Write("vocab.bpe", "#version: 0.2\n"), "'encoder.json'");

    [Test]
    public void SentencePieceProtobufIsNamedAsUnsupported() =>
        AssertFormatError(Write("tokenizer.model", new byte[] { 0x0A, 0x05 }), ".model (protobuf)");

    [Test]
    public void MissingFileAndEmptyDirectory()
    {
        Assert.That(() => Tokenizer.Load(Path.Combine(_dir, "nope.json")), Throws.InstanceOf<FileNotFoundException>().With.Message.Contains("nope.json"));
        Assert.That(() => Tokenizer.Load(_dir), Throws.InstanceOf<FileNotFoundException>().With.Message.Contains("tokenizer.json"));
    }
}
