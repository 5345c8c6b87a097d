using BenchmarkDotNet.Attributes;
using NativeQuant.Generation;
using NativeQuant.Models;
using NativeQuant.NN;

namespace NativeQuant.Benchmarks;

/// <summary>Greedy decoding of the embedded stories15M (32 new tokens after "Once upon a time") through the public
/// API, for each weight format; `nq bench generate` gives the tokens/s breakdown with the bandwidth floor.</summary>
public class DecodeBenchmarks
{
    private CausalLM _model = null!;

    [Params("none", "int8", "nf4")]
    public string Quant { get; set; } = "none";

    [GlobalSetup]
    public void Setup() => _model = CausalLM.Load("stories15M", new QuantConfig(QuantConfig.Parse(Quant)));

    [GlobalCleanup]
    public void Cleanup() => _model.Dispose();

    [Benchmark]
    public int Generate32() =>
        _model.Generate("Once upon a time", new GenerationOptions(MaxNewTokens: 32, Temperature: 0f) { StopTokens = [] }).Tokens.Length;
}
