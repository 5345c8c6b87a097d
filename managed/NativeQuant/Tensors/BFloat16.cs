namespace NativeQuant.Tensors;

/// <summary>bf16 <-> fp32 conversion on raw uint16 bit patterns (bf16 is the top half of an fp32).</summary>
public static class BFloat16
{
    public static void ToFloat32(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short", nameof(dst));
        for (int i = 0; i < src.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(src[i] << 16);
    }

    /// <summary>Round-to-nearest-even (NaN stays NaN), as torch's fp32 -> bf16 cast.</summary>
    public static void FromFloat32(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short", nameof(dst));
        for (int i = 0; i < src.Length; i++)
        {
            uint bits = BitConverter.SingleToUInt32Bits(src[i]);
            if (float.IsNaN(src[i])) { dst[i] = (ushort)((bits >> 16) | 0x40); continue; }
            uint rounding = 0x7FFF + ((bits >> 16) & 1);
            dst[i] = (ushort)((bits + rounding) >> 16);
        }
    }
}
