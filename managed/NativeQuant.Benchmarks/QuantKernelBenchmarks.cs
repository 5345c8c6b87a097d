using BenchmarkDotNet.Attributes;
using NativeQuant.Interop;
using NativeQuant.Quantization;

namespace NativeQuant.Benchmarks;

/// <summary>The managed span API over the native quantizers (QuantKernels) on 16M fp32 values: compare with
/// nq_bench_quant at the same size to see the cost of validation, pinning and the P/Invoke hop.</summary>
public class QuantKernelBenchmarks
{
    private const int N = 1 << 24;
    private const int Blocksize4 = 64, Blocksize8 = 256;
    private float[] _x = null!, _y = null!, _absmax4 = null!, _absmax8 = null!, _code8 = null!;
    private byte[] _packed4 = null!, _q8 = null!;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        _x = new float[N];
        for (int i = 0; i < N; i++) _x[i] = (float)(rng.NextDouble() * 2 - 1) * (float)Math.Exp(rng.NextDouble() * 4 - 2);
        _y = new float[N];
        _packed4 = new byte[N / 2];
        _absmax4 = new float[QuantKernels.Blocks(N, Blocksize4)];
        _q8 = new byte[N];
        _absmax8 = new float[QuantKernels.Blocks(N, Blocksize8)];
        _code8 = QuantKernels.DynamicMap(signed: true);
        QuantKernels.Quant4Quantize(NqQuant4Type.Nf4, _x, Blocksize4, _packed4, _absmax4);
    }

    [Benchmark]
    public void Nf4Quantize() => QuantKernels.Quant4Quantize(NqQuant4Type.Nf4, _x, Blocksize4, _packed4, _absmax4);

    [Benchmark]
    public void Nf4Dequantize() => QuantKernels.Quant4Dequantize(NqQuant4Type.Nf4, _packed4, _absmax4, Blocksize4, _y);

    [Benchmark]
    public void Blockwise8Quantize() => QuantKernels.Blockwise8Quantize(_x, Blocksize8, _code8, _q8, _absmax8);
}
