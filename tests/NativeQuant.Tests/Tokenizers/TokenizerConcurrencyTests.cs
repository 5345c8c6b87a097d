using System.Collections.Concurrent;
using NativeQuant.Tokenizers;
using NUnit.Framework;

namespace NativeQuant.Tests.Tokenizers;

/// <summary>Tokenizers share a pre-token cache and per-thread merge scratch; concurrent callers must not interfere.</summary>
public class TokenizerConcurrencyTests
{
    [TestCase("stories15M/tokenizer.bin")]
    [TestCase("gpt2/encoder.json")]
    public void ConcurrentEncodingMatchesReference(string asset)
    {
        var tok = Tokenizer.Load(NativeQuant.Assets.Path(asset));
        Func<CorpusEntry, int[]> expected = tok is ByteLevelBpeTokenizer ? e => e.Gpt2 : e => e.Llama;
        var mismatches = new ConcurrentBag<string>();
        var work = Enumerable.Repeat(TokenizerReference.Corpus, 4).SelectMany(c => c);
        Parallel.ForEach(work, new ParallelOptions { MaxDegreeOfParallelism = 4 }, e =>
        {
            if (!tok.Encode(e.Text).SequenceEqual(expected(e))) mismatches.Add(e.ToString());
        });
        Assert.That(mismatches, Is.Empty);
    }
}
