using BenchmarkDotNet.Attributes;
using NativeQuant.Interop;
using NativeQuant.Kernels;
using NativeQuant.Quantization;

namespace NativeQuant.Benchmarks;

/// <summary>One decode-shaped product of the stories15M head (1 x 288 against a 32000 x 288 weight) through the
/// managed MatMul API: fp32 and NF4 (blocksize 64), i.e. the per-token cost of the logits.</summary>
public class HeadGemvBenchmarks
{
    private const int N = 32000, K = 288, Blocksize = 64;
    private float[] _x = null!, _w = null!, _y = null!, _absmax = null!;
    private byte[] _packed = null!;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(7);
        _x = new float[K];
        _w = new float[N * K];
        for (int i = 0; i < K; i++) _x[i] = (float)(rng.NextDouble() - 0.5);
        for (int i = 0; i < _w.Length; i++) _w[i] = (float)(rng.NextDouble() - 0.5) * 0.1f;
        _y = new float[N];
        _packed = new byte[N * K / 2];
        _absmax = new float[QuantKernels.Blocks((long)N * K, Blocksize)];
        QuantKernels.Quant4Quantize(NqQuant4Type.Nf4, _w, Blocksize, _packed, _absmax);
    }

    [Benchmark(Baseline = true)]
    public void Fp32() => MatMul.Gemm(false, true, 1, N, K, _x, _w, _y);

    [Benchmark]
    public void Nf4() => MatMul.Quant4(_x, 1, _packed, _absmax, N, K, Blocksize, NqQuant4Type.Nf4, _y);
}
