using NativeQuant.IO;

namespace NativeQuant.Quantization;

/// <summary>
/// Asymmetric int8 per row (this engine's layout; bitsandbytes has no such module): `W` int8 (rows, cols),
/// `W.scale` and `W.zero_point` float32 (rows); x = (q - zero_point[row]) * scale[row].
/// </summary>
public sealed class Int8ZeropointTensor : QuantizedTensor
{
    private readonly sbyte[] _q;
    private readonly float[] _scale, _zeroPoint;

    private Int8ZeropointTensor(long[] shape, sbyte[] q, float[] scale, float[] zeroPoint) : base(QuantMethod.Int8Zeropoint, shape) =>
        (_q, _scale, _zeroPoint) = (q, scale, zeroPoint);

    public static Int8ZeropointTensor Quantize(ReadOnlySpan<float> x, long[] shape)
    {
        long rows = shape[0], cols = x.Length / rows;
        var q = new sbyte[x.Length];
        float[] scale = new float[rows], zp = new float[rows];
        QuantKernels.Int8ZeropointQuantize(x, rows, cols, q, scale, zp);
        return new(shape, q, scale, zp);
    }

    public static Int8ZeropointTensor Read(ITensorSource source, string weightName, long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        return new(shape, ReadArray<sbyte>(source, weightName, TensorDType.I8, n),
            ReadArray<float>(source, weightName + ".scale", TensorDType.F32, shape[0]),
            ReadArray<float>(source, weightName + ".zero_point", TensorDType.F32, shape[0]));
    }

    public override void DequantizeInto(Span<float> x) => QuantKernels.Int8ZeropointDequantize(_q, _scale, _zeroPoint, Rows, Cols, x);

    public override IReadOnlyList<QuantComponent> Components(string w) =>
    [
        QuantComponent.Of(w, TensorDType.I8, Shape, _q),
        QuantComponent.Of(w + ".scale", TensorDType.F32, [Rows], _scale),
        QuantComponent.Of(w + ".zero_point", TensorDType.F32, [Rows], _zeroPoint),
    ];
}
