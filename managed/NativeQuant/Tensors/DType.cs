namespace NativeQuant.Tensors;

/// <summary>Element types a <see cref="Tensor"/> can hold. Math runs in fp32; the others are storage formats
/// (bf16/fp16 weights, int8/uint8 quantized codes, int32 token ids).</summary>
public enum DType
{
    Float32,
    BFloat16,
    Float16,
    Int8,
    UInt8,
    Int32,
}

public static class DTypeExtensions
{
    public static int SizeInBytes(this DType dtype) => dtype switch
    {
        DType.Float32 or DType.Int32 => 4,
        DType.BFloat16 or DType.Float16 => 2,
        DType.Int8 or DType.UInt8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>The CLR element type a span over this dtype must use.</summary>
    internal static Type ClrType(this DType dtype) => dtype switch
    {
        DType.Float32 => typeof(float),
        DType.BFloat16 => typeof(ushort),
        DType.Float16 => typeof(Half),
        DType.Int8 => typeof(sbyte),
        DType.UInt8 => typeof(byte),
        DType.Int32 => typeof(int),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };
}
