using NativeQuant.IO;

namespace NativeQuant.Quantization;

/// <summary>Per-tensor int8: `W` int8 (same shape) and `W.absmax` float32 [1]; x = q * absmax / 127.</summary>
public sealed class Int8AbsmaxTensor : QuantizedTensor
{
    private readonly sbyte[] _q;
    private readonly float _absmax;

    private Int8AbsmaxTensor(long[] shape, sbyte[] q, float absmax) : base(QuantMethod.Int8Absmax, shape) => (_q, _absmax) = (q, absmax);

    public static Int8AbsmaxTensor Quantize(ReadOnlySpan<float> x, long[] shape)
    {
        var q = new sbyte[x.Length];
        return new(shape, q, QuantKernels.Int8AbsmaxQuantize(x, q));
    }

    public static Int8AbsmaxTensor Read(ITensorSource source, string weightName, long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        return new(shape, ReadArray<sbyte>(source, weightName, TensorDType.I8, n),
            ReadArray<float>(source, weightName + ".absmax", TensorDType.F32, 1)[0]);
    }

    public override void DequantizeInto(Span<float> x) => QuantKernels.Int8AbsmaxDequantize(_q, _absmax, x);

    public override IReadOnlyList<QuantComponent> Components(string w) =>
    [
        QuantComponent.Of(w, TensorDType.I8, Shape, _q),
        QuantComponent.Of(w + ".absmax", TensorDType.F32, [1], new[] { _absmax }),
    ];
}
