using System.Diagnostics;
using System.Text;
using System.Text.Json;
using NativeQuant.Tokenizers;
using NUnit.Framework;

namespace NativeQuant.Tests.Tokenizers;

/// <summary>Encode throughput on the whole SOTU corpus; a measurement printed for the record, not a timed assertion.</summary>
[Explicit("measurement, run on demand: dotnet test --filter Name~EncodeThroughput")]
public class TokenizerThroughput
{
    [TestCase("stories15M/tokenizer.bin")]
    [TestCase("llama2-tokenizer/tokenizer.json")]
    [TestCase("gpt2/encoder.json")]
    public void EncodeThroughput(string asset)
    {
        var texts = File.ReadLines(NativeQuant.Assets.Path("datasets/sotu/data.jsonl")).Where(l => l.Length > 0)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).ToList();
        long bytes = texts.Sum(t => (long)Encoding.UTF8.GetByteCount(t));
        var tok = Tokenizer.Load(NativeQuant.Assets.Path(asset));
        tok.Encode(texts[0]); // warm up JIT
        var sw = Stopwatch.StartNew();
        long tokens = texts.Sum(t => (long)tok.Encode(t).Length);
        sw.Stop();
        TestContext.Out.WriteLine($"{asset}: {bytes / 1e6:F1} MB -> {tokens} tokens in {sw.Elapsed.TotalSeconds:F2} s = {bytes / 1e6 / sw.Elapsed.TotalSeconds:F2} MB/s");
        Assert.That(tokens, Is.GreaterThan(bytes / 10), "implausibly few tokens");
    }
}
