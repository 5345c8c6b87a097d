using NativeQuant.Interop;

namespace NativeQuant.NN;

/// <summary>Storage format for frozen linear weights chosen at load time.</summary>
public enum QuantType
{
    None,
    Nf4,
    Fp4,
    Int8,
}

/// <summary>On-load quantization of linear layers (bitsandbytes' BitsAndBytesConfig, reduced to what this
/// engine supports). The output head stays full precision, as in transformers, unless
/// <paramref name="QuantizeHead"/> asks for it in the same format (as llama.cpp does with output.weight): at small
/// sizes the vocab x hidden head is most of the bytes a decoded token reads. A head tied to the embedding keeps the
/// fp32 embedding for lookups and gets a separate quantized copy (<see cref="TiedQuantizedHead"/>).
/// <paramref name="ComputeDtype"/> is bitsandbytes' bnb_4bit_compute_dtype for NF4/FP4 layers (F32, F16 or Int8; see
/// <see cref="Linear4bit.ComputeDtype"/>); null = a pre-quantized checkpoint's own setting, else F32.
/// <paramref name="PackHead"/>: a full-precision head computing in F16 keeps a packed fp16 copy for the fused loss
/// (<see cref="Linear.PackHead"/>: about the head's fp32 size in memory for ~10% of its time).</summary>
public sealed record QuantConfig(QuantType Type = QuantType.None, bool DoubleQuant = false, int BlockSize = 64,
                                 float Int8Threshold = 6f, bool QuantizeHead = false, NqComputeType? ComputeDtype = null,
                                 bool PackHead = true)
{
    public static readonly QuantConfig None = new();

    /// <summary>The compute precision 4-bit layers get.</summary>
    public NqComputeType Compute => ComputeDtype ?? NqComputeType.F32;

    /// <summary>The precision the floating-point layers of a 4-bit model (its fp32 head) compute in: the 4-bit
    /// layers' own, or F16 when those compute in Int8 (fp32 x fp32 products have no int8 form; the head's fused
    /// training loss does, <see cref="Linear.LossComputeDtype"/>).</summary>
    public NqComputeType FloatCompute => Compute == NqComputeType.Int8 ? NqComputeType.F16 : Compute;

    /// <summary><paramref name="value"/> if a 4-bit layer can compute in it (F32, F16, BF16, Int8).</summary>
    public static NqComputeType RequireQuant4Compute(NqComputeType value) =>
        value is NqComputeType.Int8 ? value : RequireFloatCompute(value, "Linear4bit");

    /// <summary><paramref name="value"/> if a floating-point layer can compute in it (F32, F16, BF16), else an error
    /// naming <paramref name="layer"/>.</summary>
    public static NqComputeType RequireFloatCompute(NqComputeType value, string layer) =>
        value is NqComputeType.F32 or NqComputeType.F16 or NqComputeType.Bf16 ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, $"{layer} computes in F32, F16 or BF16");

    /// <summary>--compute-dtype: f32 | f16 | int8 (also torch's names float32 / float16).</summary>
    public static NqComputeType ParseComputeDtype(string text) => text.ToLowerInvariant() switch
    {
        "f32" or "fp32" or "float32" => NqComputeType.F32,
        "f16" or "fp16" or "float16" => NqComputeType.F16,
        "int8" => NqComputeType.Int8,
        _ => throw new ArgumentException($"unknown compute dtype '{text}' (expected f32, f16 or int8)"),
    };

    public static QuantType Parse(string text) => text.ToLowerInvariant() switch
    {
        "none" or "fp32" => QuantType.None,
        "nf4" => QuantType.Nf4,
        "fp4" => QuantType.Fp4,
        "int8" => QuantType.Int8,
        _ => throw new ArgumentException($"unknown quantization '{text}' (expected nf4, fp4, int8 or none)"),
    };
}
