using NativeQuant.IO;

namespace NativeQuant.Quantization;

/// <summary>
/// Row-wise int8 as bitsandbytes' Linear8bitLt saves it: `P.weight` int8 (rows, cols), `P.SCB` float32 (rows)
/// row absmax, and `P.weight_format` uint8 scalar 0 ("row" layout); x = q * SCB[row] / 127.
/// </summary>
public sealed class Int8RowwiseTensor : QuantizedTensor
{
    /// <summary>bnb's index of the "row" weight format (the only layout on CPU).</summary>
    private const byte RowFormat = 0;

    private readonly sbyte[] _q;
    private readonly float[] _scb;

    private Int8RowwiseTensor(long[] shape, sbyte[] q, float[] scb) : base(QuantMethod.Int8Rowwise, shape) => (_q, _scb) = (q, scb);

    public static Int8RowwiseTensor Quantize(ReadOnlySpan<float> x, long[] shape)
    {
        long rows = shape[0], cols = x.Length / rows;
        var q = new sbyte[x.Length];
        var scb = new float[rows];
        QuantKernels.Int8RowwiseQuantize(x, rows, cols, q, scb);
        return new(shape, q, scb);
    }

    /// <summary>A row-wise int8 weight (rows, cols) from its codes and row absmax (shared, not copied).</summary>
    public static Int8RowwiseTensor FromStorage(long[] shape, sbyte[] q, float[] scb) => new(shape, q, scb);

    /// <summary>The int8 codes and row absmax SCB (shared, not copied).</summary>
    public (sbyte[] Q, float[] Scb) Storage => (_q, _scb);

    /// <summary>"a.b.weight" -> "a.b" (bnb keeps SCB and weight_format at module level).</summary>
    public static string ModulePrefix(string weightName) =>
        weightName.EndsWith(".weight", StringComparison.Ordinal) ? weightName[..^".weight".Length] : weightName;

    public static Int8RowwiseTensor Read(ITensorSource source, string weightName, long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        return new(shape, ReadArray<sbyte>(source, weightName, TensorDType.I8, n),
            ReadArray<float>(source, ModulePrefix(weightName) + ".SCB", TensorDType.F32, shape[0]));
    }

    public override void DequantizeInto(Span<float> x) => QuantKernels.Int8RowwiseDequantize(_q, _scb, Rows, Cols, x);

    public override IReadOnlyList<QuantComponent> Components(string w) =>
    [
        QuantComponent.Of(w, TensorDType.I8, Shape, _q),
        QuantComponent.Of(ModulePrefix(w) + ".SCB", TensorDType.F32, [Rows], _scb),
        new(ModulePrefix(w) + ".weight_format", TensorDType.U8, [], [RowFormat]),
    ];
}
