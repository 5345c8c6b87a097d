namespace NativeQuant.Quantization;

/// <summary>How to quantize: method, block size (blockwise methods) and double quantization (4-bit only).</summary>
public sealed record QuantOptions(QuantMethod Method, int? Blocksize = null, bool DoubleQuant = false)
{
    /// <summary>bitsandbytes' defaults: 64 for Params4bit, 4096 for quantize_blockwise.</summary>
    public const int DefaultBlocksize4Bit = 64;
    public const int DefaultBlocksize8Bit = 4096;

    /// <summary>bnb's compress_statistics block size for the absmax of the absmax.</summary>
    public const int NestedBlocksize = 256;

    public int EffectiveBlocksize => Blocksize ?? (Method.IsFourBit() ? DefaultBlocksize4Bit : DefaultBlocksize8Bit);

    /// <summary>Throws an <see cref="ArgumentException"/> naming the option when the combination is invalid.</summary>
    public void Validate()
    {
        if (Blocksize is int b)
        {
            if (!Method.IsBlockwise())
                throw new ArgumentException($"--blocksize applies only to blockwise8, nf4 and fp4, not {Method.Name()}");
            (int lo, int hi) = Method.IsFourBit() ? (32, 4096) : (64, 4096);
            if (b < lo || b > hi || (b & (b - 1)) != 0)
                throw new ArgumentException($"--blocksize {b} is invalid for {Method.Name()}: expected a power of two in {lo}..{hi}");
        }
        if (DoubleQuant && !Method.IsFourBit())
            throw new ArgumentException($"--double-quant applies only to nf4 and fp4, not {Method.Name()}");
    }
}
