using NativeQuant.Data;
using NativeQuant.Tokenizers;
using NUnit.Framework;

namespace NativeQuant.Tests.Data;

public class TemplatesTests
{
    private const string SpamTemplate = "Subject: {subject}\n{body}\nThis e-mail is:{label}";
    private static readonly Verbalizer SpamVerbalizer = new(new Dictionary<string, string> { ["spam"] = " spam", ["ham"] = " ham" });
    private static ITokenizer Tok => s_tok ??= Tokenizer.Load(NativeQuant.Assets.Path("stories15M/tokenizer.bin"));
    private static ITokenizer? s_tok;

    private static Dictionary<string, string> Row(string subject, string body, string label) =>
        new() { ["subject"] = subject, ["body"] = body, ["label"] = label };

    private static SupervisedExampleEncoder Encoder(int maxLength) =>
        new(Tok, new PromptTemplate(SpamTemplate), SpamVerbalizer, maxLength, truncateField: "body");

    [Test]
    public void Template_ParsesFields_AndRequiresTheAnswerLast()
    {
        var t = new PromptTemplate("{{literal}} {subject}: {body} {subject}{label}");
        Assert.That(t.Fields, Is.EqualTo(new[] { "subject", "body" }));
        Assert.That(t.RenderPrompt(Row("S", "B", "ham")), Is.EqualTo("{literal} S: B S"));
        Assert.Throws<ArgumentException>(() => new PromptTemplate("{label} is the answer"));
        Assert.Throws<ArgumentException>(() => new PromptTemplate("no answer field"));
        Assert.Throws<ArgumentException>(() => new PromptTemplate("{sub ject}{label}"));
        var missing = Assert.Throws<KeyNotFoundException>(() => t.RenderPrompt(new Dictionary<string, string> { ["subject"] = "x" }));
        Assert.That(missing!.Message, Does.Contain("{body}"));
    }

    [Test]
    public void Encode_LossOnlyOnTheAnswerTokens()
    {
        var e = Encoder(256).Encode(Row("Win money", "Click here now", "spam"));
        int first = Array.FindIndex(e.Labels, l => l != TokenizedExample.IgnoreIndex);
        Assert.That(e.Labels[..first], Is.All.EqualTo(-100));
        Assert.That(e.Labels[first..], Is.EqualTo(e.InputIds[first..]));
        // The answer is " spam" followed by EOS, and the prompt before it decodes to the rendered template.
        Assert.That(e.InputIds[^1], Is.EqualTo(Tok.EosId));
        Assert.That(Tok.Decode(e.InputIds[first..^1]), Is.EqualTo(" spam").Or.EqualTo("spam"));
        Assert.That(Tok.Decode(e.InputIds[1..first]), Is.EqualTo("Subject: Win money\nClick here now\nThis e-mail is:"));
        Assert.That(e.InputIds, Is.EqualTo(Tok.Encode("Subject: Win money\nClick here now\nThis e-mail is: spam", addBos: true, addEos: true)));
    }

    [Test]
    public void Truncation_CutsTheBody_KeepsTheAnswer_AndFillsTheBudget()
    {
        string body = string.Join(" ", Enumerable.Range(0, 400).Select(i => $"word{i}"));
        var enc = Encoder(64);
        var e = enc.Encode(Row("Hello", body, "ham"));
        Assert.That(e.Length, Is.LessThanOrEqualTo(64));
        Assert.That(e.Length, Is.GreaterThanOrEqualTo(60), "the binary search keeps as much body as fits");
        string text = Tok.Decode(e.InputIds);
        Assert.That(text, Does.StartWith("Subject: Hello\nword0 word1").And.EndWith("This e-mail is: ham"));
        int first = Array.FindIndex(e.Labels, l => l != TokenizedExample.IgnoreIndex);
        Assert.That(Tok.Decode(e.InputIds[first..^1]).Trim(), Is.EqualTo("ham"));
    }

    [Test]
    public void Errors_ForUnknownLabel_EmptyAndOversizedExamples()
    {
        var unknown = Assert.Throws<KeyNotFoundException>(() => Encoder(64).Encode(Row("a", "b", "phishing"), 7));
        Assert.That(unknown!.Message, Does.Contain("phishing").And.Contain("spam, ham"));
        var empty = Assert.Throws<ArgumentException>(() => Encoder(64).Encode(Row("", " ", "ham"), 3));
        Assert.That(empty!.Message, Does.Contain("example 3").And.Contain("empty"));
        var oversized = Assert.Throws<ArgumentException>(() => Encoder(12).Encode(Row("a very long subject line that cannot be cut at all", "body", "ham")));
        Assert.That(oversized!.Message, Does.Contain("max_length 12").And.Contain("'body' empty"));
    }

    [Test]
    public void Collate_PadsRight_MasksAndShiftsTargets()
    {
        var a = new TokenizedExample([1, 5, 6, 7], [-100, -100, 6, 7]);
        var b = new TokenizedExample([1, 9], [-100, 9]);
        var batch = Batch.Collate([a, b], padId: 0);
        Assert.That((batch.Size, batch.Length), Is.EqualTo((2, 4)));
        Assert.That(batch.InputIds, Is.EqualTo(new[] { 1, 5, 6, 7, 1, 9, 0, 0 }));
        Assert.That(batch.Labels, Is.EqualTo(new[] { -100, -100, 6, 7, -100, 9, -100, -100 }));
        Assert.That(batch.AttentionMask, Is.EqualTo(new[] { 1, 1, 1, 1, 1, 1, 0, 0 }));
        using var scope = new NativeQuant.Tensors.TensorScope();
        Assert.That(batch.NextTokenTargets().AsSpan<int>().ToArray(), Is.EqualTo(new[] { -100, 6, 7, -100, 9, -100, -100, -100 }));
        Assert.Throws<ArgumentException>(() => Batch.Collate([a], 0, padToLength: 3));
    }

    [Test]
    public void Pack_ConcatenatesDocumentsIntoFullBlocks()
    {
        string[] docs = ["Once upon a time there was a cat.", "The dog barked.", "It was a sunny day in the park."];
        var stream = docs.SelectMany(d => Tok.Encode(d, addBos: true, addEos: true)).ToArray();
        var blocks = TextPacker.Pack(docs, Tok, 8);
        Assert.That(blocks, Has.Count.EqualTo(stream.Length / 8));
        Assert.That(blocks.SelectMany(b => b.InputIds), Is.EqualTo(stream[..(blocks.Count * 8)]));
        Assert.That(blocks.All(b => b.Labels.SequenceEqual(b.InputIds)), Is.True);
    }
}
