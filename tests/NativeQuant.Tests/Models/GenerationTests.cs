using NativeQuant.Generation;
using NativeQuant.Models;
using NativeQuant.NN;
using NUnit.Framework;

namespace NativeQuant.Tests.Models;

public class GenerationTests
{
    [Test]
    public void Stories15M_GreedyFromBos_TellsTheLilyStory()
    {
        using var model = CausalLM.Load("stories15M");
        var r = ReferenceDump.Load("stories15m");
        int[] expected = r.Json.GetProperty("greedy_from_bos").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var result = model.Generate([1], new GenerationOptions(MaxNewTokens: expected.Length - 1, Temperature: 0f));
        Assert.That(result.Tokens, Is.EqualTo(expected[1..]));
        string text = model.Tokenizer!.Decode(result.Tokens);
        Assert.That(text, Does.StartWith("Once upon a time, there was a little girl named Lily. She loved to play outside"));
        TestContext.Out.WriteLine($"{text}\ndecode {result.DecodeTokensPerSecond:F0} tok/s");
    }

    [Test]
    public void Stories15M_TextPrompt_StreamsWhatItReturns()
    {
        using var model = CausalLM.Load("stories15M");
        var pieces = new System.Text.StringBuilder();
        var result = model.Generate("Once upon a time", new GenerationOptions(MaxNewTokens: 20, Temperature: 0.8f, TopP: 0.9f, Seed: 42), s => pieces.Append(s));
        Assert.That(result.Text, Is.EqualTo(pieces.ToString()));
        Assert.That(result.Tokens, Has.Length.GreaterThan(0));
        var again = model.Generate("Once upon a time", new GenerationOptions(MaxNewTokens: 20, Temperature: 0.8f, TopP: 0.9f, Seed: 42));
        Assert.That(again.Tokens, Is.EqualTo(result.Tokens), "same seed, same sample");
    }

    [Test]
    public void Stories15M_Nf4_StillGreedyCoherent()
    {
        using var model = CausalLM.Load("stories15M", new QuantConfig(QuantType.Nf4, DoubleQuant: true));
        var result = model.Generate([1], new GenerationOptions(MaxNewTokens: 12, Temperature: 0f));
        Assert.That(model.Tokenizer!.Decode(result.Tokens), Does.StartWith("Once upon a time"));
    }

    [Test]
    public void Stories15M_Perplexity_MatchesReferenceLoss()
    {
        using var model = CausalLM.Load("stories15M");
        var r = ReferenceDump.Load("stories15m");
        var p = model.Perplexity(r.InputIds);
        Assert.That(p.Tokens, Is.EqualTo(r.InputIds.Length - 1));
        Assert.That(p.Nll, Is.EqualTo(r.MeanCrossEntropy).Within(1e-4));
        // Windows of 16 advanced by 8 score every token exactly once.
        var windowed = model.Perplexity(r.InputIds, window: 16, stride: 8);
        Assert.That(windowed.Tokens, Is.EqualTo(r.InputIds.Length - 1));
    }

    [Test]
    public void PromptLongerThanContext_IsRejected()
    {
        using var model = CausalLM.Load("stories15M");
        var ids = Enumerable.Repeat(1, model.MaxPositions + 1).ToArray();
        var e = Assert.Throws<ArgumentException>(() => model.Generate(ids, new GenerationOptions(MaxNewTokens: 1)));
        Assert.That(e!.Message, Does.Contain("context of 256"));
    }

    [Test]
    public void TokenOutOfRange_IsRejected()
    {
        using var model = CausalLM.Load("stories15M");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.Generate([1, 32000], new GenerationOptions(MaxNewTokens: 1)));
        Assert.That(e!.Message, Does.Contain("32000"));
    }
}
