using NativeQuant.Tokenizers;
using NUnit.Framework;

namespace NativeQuant.Tests.Tokenizers;

public class StreamingDecoderTests
{
    private static readonly Lazy<ITokenizer> Llama = new(() => Tokenizer.Load(TokenizerReference.LlamaTokenizerBin));

    private static int Byte(int b) => 3 + b; // Llama's <0xNN> pieces start at id 3

    [Test]
    public void HoldsIncompleteCharacterUntilItCompletes()
    {
        var d = Llama.Value.CreateStreamingDecoder();
        // U+1F916 ROBOT FACE = F0 9F A4 96
        Assert.That(d.Push(Byte(0xF0)), Is.Empty);
        Assert.That(d.Push(Byte(0x9F)), Is.Empty);
        Assert.That(d.Push(Byte(0xA4)), Is.Empty);
        Assert.That(d.Push(Byte(0x96)), Is.EqualTo("🤖"));
        Assert.That(d.Flush(), Is.Empty);
    }

    [Test]
    public void InvalidOrUnfinishedBytesBecomeReplacementCharacters()
    {
        var d = Llama.Value.CreateStreamingDecoder();
        Assert.That(d.Push(Byte(0x80)), Is.EqualTo("\uFFFD"), "a lone continuation byte can never complete");
        Assert.That(d.Push(Byte(0xE6)), Is.Empty);
        Assert.That(d.Push(Byte(0x41)), Is.EqualTo("\uFFFDA"), "a lead byte followed by ASCII is invalid");
        Assert.That(d.Push(Byte(0xE6)) + d.Push(Byte(0x97)), Is.Empty);
        Assert.That(d.Flush(), Is.EqualTo("\uFFFD"));
    }

    [Test]
    public void DropsDummyPrefixSpaceOnlyAtStart()
    {
        var tok = Llama.Value;
        int[] ids = tok.Encode("Hello Hello", addBos: true); // <s> ▁Hello ▁Hello
        var d = tok.CreateStreamingDecoder();
        Assert.That(ids.Select(d.Push), Is.EqualTo(new[] { "", "Hello", " Hello" }));
    }

    [Test]
    public void RejectsIdsOutsideTheVocabulary()
    {
        var d = Llama.Value.CreateStreamingDecoder();
        Assert.That(() => d.Push(32000), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("[0, 32000)"));
        Assert.That(() => d.Push(-1), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
