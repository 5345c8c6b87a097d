using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace NativeQuant.IO;

/// <summary>Widening conversions of stored tensor bytes to float32 (what the quantization kernels take).</summary>
public static class TensorConvert
{
    public static float[] ToFloat32(TensorInfo t)
    {
        var result = new float[t.ElementCount];
        ToFloat32(t.DType, t.Data, result);
        return result;
    }

    public static void ToFloat32(TensorDType dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        if (src.Length != (long)dst.Length * dtype.ItemSize())
            throw new ArgumentException($"{src.Length} bytes of {dtype.SafeTensorsName()} do not hold {dst.Length} elements");
        switch (dtype)
        {
            case TensorDType.F32: MemoryMarshal.Cast<byte, float>(src).CopyTo(dst); break;
            case TensorDType.F64: { var s = MemoryMarshal.Cast<byte, double>(src); for (int i = 0; i < dst.Length; i++) dst[i] = (float)s[i]; break; }
            case TensorDType.F16: { var s = MemoryMarshal.Cast<byte, Half>(src); for (int i = 0; i < dst.Length; i++) dst[i] = (float)s[i]; break; }
            case TensorDType.BF16:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16);
                break;
            default:
                throw new NotSupportedException($"{dtype.SafeTensorsName()} is not a floating-point dtype");
        }
    }
}
