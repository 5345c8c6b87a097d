using NativeQuant.IO;

namespace NativeQuant.Quantization;

/// <summary>
/// bitsandbytes quantize_blockwise with the signed dynamic map: `W` uint8 codes (same shape), `W.absmax`
/// float32 (one per block) and `W.quant_map` float32 (256, the code); the block size is in the file metadata.
/// x[i] = quant_map[q[i]] * absmax[i / blocksize].
/// </summary>
public sealed class Blockwise8Tensor : QuantizedTensor
{
    private readonly byte[] _q;
    private readonly float[] _absmax, _code;

    private Blockwise8Tensor(long[] shape, int blocksize, byte[] q, float[] absmax, float[] code) : base(QuantMethod.Blockwise8, shape)
    {
        Blocksize = blocksize;
        (_q, _absmax, _code) = (q, absmax, code);
    }

    public int Blocksize { get; }

    public static Blockwise8Tensor Quantize(ReadOnlySpan<float> x, long[] shape, int blocksize)
    {
        var code = QuantKernels.DynamicMap();
        var q = new byte[x.Length];
        var absmax = new float[QuantKernels.Blocks(x.Length, blocksize)];
        QuantKernels.Blockwise8Quantize(x, blocksize, code, q, absmax);
        return new(shape, blocksize, q, absmax, code);
    }

    public static Blockwise8Tensor Read(ITensorSource source, string weightName, long[] shape, int blocksize)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        return new(shape, blocksize, ReadArray<byte>(source, weightName, TensorDType.U8, n),
            ReadArray<float>(source, weightName + ".absmax", TensorDType.F32, QuantKernels.Blocks(n, blocksize)),
            ReadArray<float>(source, weightName + ".quant_map", TensorDType.F32, 256));
    }

    public override void DequantizeInto(Span<float> x) => QuantKernels.Blockwise8Dequantize(_q, _absmax, Blocksize, _code, x);

    public override IReadOnlyList<QuantComponent> Components(string w) =>
    [
        QuantComponent.Of(w, TensorDType.U8, Shape, _q),
        QuantComponent.Of(w + ".absmax", TensorDType.F32, [_absmax.Length], _absmax),
        QuantComponent.Of(w + ".quant_map", TensorDType.F32, [256], _code),
    ];
}
