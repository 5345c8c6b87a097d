using System.Runtime.InteropServices;
using NativeQuant.IO;

namespace NativeQuant.Quantization;

/// <summary>One stored tensor of a quantized weight's serialized layout.</summary>
public sealed record QuantComponent(string Name, TensorDType DType, long[] Shape, byte[] Data)
{
    public static QuantComponent Of<T>(string name, TensorDType dtype, long[] shape, T[] values) where T : unmanaged =>
        new(name, dtype, shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
}

/// <summary>
/// A weight in quantized form. Each method knows its serialized tensors (<see cref="Components"/>, named after
/// the weight as bitsandbytes names them where bitsandbytes has the method) and how to dequantize.
/// </summary>
public abstract class QuantizedTensor
{
    protected QuantizedTensor(QuantMethod method, long[] shape)
    {
        Method = method;
        Shape = shape;
        ElementCount = shape.Aggregate(1L, (a, b) => a * b);
    }

    public QuantMethod Method { get; }
    public long[] Shape { get; }
    public long ElementCount { get; }

    /// <summary>Rows and columns of the 2-D view (first dimension vs the rest).</summary>
    public long Rows => Shape[0];
    public long Cols => ElementCount / Shape[0];

    public abstract void DequantizeInto(Span<float> x);

    public float[] Dequantize()
    {
        var x = new float[ElementCount];
        DequantizeInto(x);
        return x;
    }

    /// <summary>The tensors that store this weight under <paramref name="weightName"/> (e.g. "layer.weight").</summary>
    public abstract IReadOnlyList<QuantComponent> Components(string weightName);

    /// <summary>Bytes of every stored tensor, constants (codes, quant state) included.</summary>
    public long StorageBytes(string weightName = "w") => Components(weightName).Sum(c => (long)c.Data.Length);

    public double BitsPerParameter(string weightName = "w") => StorageBytes(weightName) * 8.0 / ElementCount;

    /// <summary>Whether a tensor of this shape/dtype can take the method; <paramref name="reason"/> says why not.</summary>
    public static bool CanQuantize(TensorDType dtype, IReadOnlyList<long> shape, QuantOptions options, out string reason)
    {
        reason = "";
        if (!dtype.IsFloating()) { reason = $"{dtype.SafeTensorsName()} is not floating point"; return false; }
        if (shape.Count != 2) { reason = $"{shape.Count}-D"; return false; }
        long n = shape[0] * shape[1];
        if (n == 0) { reason = "empty tensor"; return false; }
        if (n > Array.MaxLength) { reason = $"{n} elements exceed one managed array"; return false; }
        if (options.Method.IsFourBit() && n % 2 != 0) { reason = "odd element count cannot be packed two per byte"; return false; }
        return true;
    }

    /// <param name="sourceDType">dtype of the original weight (recorded in bnb's 4-bit quant state).</param>
    public static QuantizedTensor Quantize(ReadOnlySpan<float> x, long[] shape, QuantOptions options, TensorDType sourceDType = TensorDType.F32)
    {
        options.Validate();
        long n = shape.Aggregate(1L, (a, b) => a * b);
        if (n != x.Length) throw new ArgumentException($"shape [{string.Join(", ", shape)}] has {n} elements but {x.Length} values were given", nameof(shape));
        return options.Method switch
        {
            QuantMethod.Int8Absmax => Int8AbsmaxTensor.Quantize(x, shape),
            QuantMethod.Int8Rowwise => Int8RowwiseTensor.Quantize(x, shape),
            QuantMethod.Int8Zeropoint => Int8ZeropointTensor.Quantize(x, shape),
            QuantMethod.Blockwise8 => Blockwise8Tensor.Quantize(x, shape, options.EffectiveBlocksize),
            QuantMethod.Nf4 or QuantMethod.Fp4 => Quant4Tensor.Quantize(x, shape, options, BnbQuantState.TorchName(sourceDType)),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Method, "unknown method"),
        };
    }

    protected static T[] ReadArray<T>(ITensorSource source, string name, TensorDType dtype, long count) where T : unmanaged
    {
        var t = source.Get(name);
        if (t.DType != dtype || t.ElementCount != count)
            throw new InvalidDataException($"{source.SourcePath}: tensor '{name}' should be {dtype.SafeTensorsName()} with {count} elements, found {t.DType.SafeTensorsName()} {t.ShapeText}");
        return MemoryMarshal.Cast<byte, T>(t.Data).ToArray();
    }
}
