using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Peft;

/// <summary>The layer kinds LoRA can wrap — fp32 Linear, GPT-2's Conv1D, and the frozen quantized Linear4bit /
/// Linear8bitLt — and their feature sizes and bias, read uniformly.</summary>
public static class LinearLayers
{
    public static bool IsLinear(Module m) => m is Linear or Conv1D or Linear4bit or Linear8bitLt;

    /// <summary>(in_features, out_features) of a linear-like layer.</summary>
    public static (int In, int Out) Features(Module m) => m switch
    {
        Linear l => (l.InFeatures, l.OutFeatures),
        Conv1D c => (c.Weight.Size(0), c.Weight.Size(1)),
        Linear4bit q => (q.InFeatures, q.OutFeatures),
        Linear8bitLt q => (q.InFeatures, q.OutFeatures),
        _ => throw new ArgumentException($"{m.GetType().Name} is not a linear layer (expected Linear, Conv1D, Linear4bit or Linear8bitLt)"),
    };

    public static Parameter? Bias(Module m) => m switch
    {
        Linear l => l.Bias,
        Conv1D c => c.Bias,
        Linear4bit q => q.Bias,
        Linear8bitLt q => q.Bias,
        _ => null,
    };

    /// <summary>A new fp32 (out, in) copy of a linear-like layer's weight: dequantized, or transposed for Conv1D.</summary>
    public static Tensor WeightOutIn(Module m) => TensorScope.Unscoped(() =>
    {
        switch (m)
        {
            case Linear l: return l.Weight.Clone();
            case Conv1D c:
                using (var t = c.Weight.TransposeView(0, 1)) return t.Contiguous();
            case Linear4bit q: return q.Dequantize();
            case Linear8bitLt q: return q.Dequantize();
            default: throw new ArgumentException($"{m.GetType().Name} is not a linear layer (expected Linear, Conv1D, Linear4bit or Linear8bitLt)");
        }
    });

    /// <summary>Weights counted as PEFT counts them: bitsandbytes keeps quantized weights as parameters
    /// (Int8Params out×in; Params4bit packed uint8 whose numel PEFT doubles back to out×in), while this engine
    /// stores them as buffers, so they are added here.</summary>
    public static long QuantizedWeightElements(Module m) => m switch
    {
        Linear4bit q => (long)q.OutFeatures * q.InFeatures,
        Linear8bitLt q => (long)q.OutFeatures * q.InFeatures,
        _ => 0,
    };
}
