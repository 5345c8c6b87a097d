using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>
/// An output head tied to the embedding whose logits come from a quantized copy of it (QuantConfig.QuantizeHead).
/// The fp32 embedding stays registered as "weight", so names, StateDict and parameter counts are those of the tied
/// fp32 head; the copy is derived state, built once here and not saved. The copy is frozen: gradients reach the
/// hidden states (dX through the quantized backward kernel), not the embedding through this head.
/// </summary>
public sealed class TiedQuantizedHead : Module<Tensor, Tensor>
{
    /// <summary><paramref name="quantized"/> must have been built from <paramref name="embedding"/>; this head owns it.</summary>
    public TiedQuantizedHead(Parameter embedding, Module<Tensor, Tensor> quantized)
    {
        Weight = RegisterParameter("weight", embedding);
        Quantized = quantized;
    }

    public Parameter Weight { get; }

    /// <summary>The Linear4bit / Linear8bitLt computing the logits.</summary>
    public Module<Tensor, Tensor> Quantized { get; }

    /// <summary>hidden (..., C) -> logits (..., V)</summary>
    public override Tensor Forward(Tensor x) => Quantized.Forward(x);

    public override void Dispose()
    {
        Quantized.Dispose();
        base.Dispose();
    }
}
