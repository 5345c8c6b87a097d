namespace NativeQuant.IO;

/// <summary>Element types a tensor file can hold, named as the safetensors header names them.</summary>
public enum TensorDType
{
    Bool, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64,
}

public static class TensorDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int ItemSize(this TensorDType d) => d switch
    {
        TensorDType.Bool or TensorDType.U8 or TensorDType.I8 => 1,
        TensorDType.I16 or TensorDType.U16 or TensorDType.F16 or TensorDType.BF16 => 2,
        TensorDType.I32 or TensorDType.U32 or TensorDType.F32 => 4,
        TensorDType.F64 or TensorDType.I64 or TensorDType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(d), d, "unknown dtype"),
    };

    /// <summary>The safetensors header spelling ("F32", "BF16", "BOOL", ...).</summary>
    public static string SafeTensorsName(this TensorDType d) => d == TensorDType.Bool ? "BOOL" : d.ToString();

    /// <summary>Parses a safetensors dtype name; false for names this engine does not read (e.g. F8_E4M3).</summary>
    public static bool TryParseSafeTensorsName(string name, out TensorDType dtype)
    {
        dtype = default;
        if (name == "BOOL") { dtype = TensorDType.Bool; return true; }
        return name != "Bool" && Enum.TryParse(name, ignoreCase: false, out dtype) && Enum.IsDefined(dtype);
    }

    public static bool IsFloating(this TensorDType d) =>
        d is TensorDType.F16 or TensorDType.BF16 or TensorDType.F32 or TensorDType.F64;
}
