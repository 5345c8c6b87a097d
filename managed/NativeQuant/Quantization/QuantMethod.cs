namespace NativeQuant.Quantization;

/// <summary>Weight quantization methods (bitsandbytes semantics).</summary>
public enum QuantMethod
{
    /// <summary>int8, one absmax scale for the whole tensor.</summary>
    Int8Absmax,
    /// <summary>int8, one absmax scale per row (LLM.int8()'s vector-wise weights, bnb Linear8bitLt's SCB).</summary>
    Int8Rowwise,
    /// <summary>asymmetric int8 with a scale and zero point per row.</summary>
    Int8Zeropoint,
    /// <summary>8-bit dynamic-map code per element, absmax per block (bnb quantize_blockwise).</summary>
    Blockwise8,
    /// <summary>4-bit NormalFloat, absmax per block (QLoRA).</summary>
    Nf4,
    /// <summary>4-bit float (1 sign, 2 exponent, 1 mantissa bit), absmax per block.</summary>
    Fp4,
}

public static class QuantMethods
{
    private static readonly (QuantMethod Method, string Name)[] Names =
    [
        (QuantMethod.Int8Absmax, "int8-absmax"), (QuantMethod.Int8Rowwise, "int8-rowwise"),
        (QuantMethod.Int8Zeropoint, "int8-zeropoint"), (QuantMethod.Blockwise8, "blockwise8"),
        (QuantMethod.Nf4, "nf4"), (QuantMethod.Fp4, "fp4"),
    ];

    public static IEnumerable<string> AllNames => Names.Select(n => n.Name);

    /// <summary>The command-line / metadata spelling ("nf4", "int8-rowwise", ...).</summary>
    public static string Name(this QuantMethod m) => Names.First(n => n.Method == m).Name;

    public static bool TryParse(string name, out QuantMethod method)
    {
        foreach (var (m, n) in Names)
            if (string.Equals(n, name, StringComparison.OrdinalIgnoreCase)) { method = m; return true; }
        method = default;
        return false;
    }

    public static bool IsFourBit(this QuantMethod m) => m is QuantMethod.Nf4 or QuantMethod.Fp4;

    public static bool IsBlockwise(this QuantMethod m) => m is QuantMethod.Blockwise8 or QuantMethod.Nf4 or QuantMethod.Fp4;
}
