using BenchmarkDotNet.Attributes;
using NativeQuant.Data;
using NativeQuant.Tokenizers;

namespace NativeQuant.Benchmarks;

/// <summary>Encode throughput of the in-project tokenizers on real text (the first State of the Union addresses,
/// ~1 MB); the encoders run on the caller's thread, so this is the per-core rate.</summary>
[MemoryDiagnoser]
public class TokenizerBenchmarks
{
    private const int TextBytes = 1 << 20;
    private ITokenizer _tokenizer = null!;
    private string _text = "";

    /// <summary>llama: SentencePiece BPE with byte fallback (llama2.c tokenizer.bin); gpt2: byte-level BPE.</summary>
    [Params("llama", "gpt2")]
    public string Kind { get; set; } = "llama";

    [GlobalSetup]
    public void Setup()
    {
        _tokenizer = Tokenizer.Load(Assets.Path(Kind == "llama" ? "stories15M/tokenizer.bin" : "gpt2/encoder.json"));
        var sb = new System.Text.StringBuilder();
        foreach (var speech in StdlibDatasets.Sotu())
        {
            sb.Append(speech["text"]).Append('\n');
            if (sb.Length >= TextBytes) break;
        }
        _text = sb.ToString(0, Math.Min(sb.Length, TextBytes));
    }

    [Benchmark]
    public int Encode() => _tokenizer.Encode(_text).Length;
}
