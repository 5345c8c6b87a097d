using NativeQuant.Autograd;
using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>Root-mean-square norm with a learned scale (LLaMA's LlamaRMSNorm).</summary>
public sealed class RMSNorm : Module<Tensor, Tensor>
{
    public RMSNorm(Parameter weight, float eps)
    {
        Weight = RegisterParameter("weight", weight);
        Eps = eps;
    }

    public Parameter Weight { get; }
    public float Eps { get; }

    /// <summary>x (..., C) -> (..., C)</summary>
    public override Tensor Forward(Tensor x) => Functional.RmsNorm(x, Weight, Eps);
}

/// <summary>Layer norm with weight and bias over the last dimension, as torch.nn.LayerNorm.</summary>
public sealed class LayerNorm : Module<Tensor, Tensor>
{
    public LayerNorm(Parameter weight, Parameter bias, float eps)
    {
        Weight = RegisterParameter("weight", weight);
        Bias = RegisterParameter("bias", bias);
        Eps = eps;
    }

    public Parameter Weight { get; }
    public Parameter Bias { get; }
    public float Eps { get; }

    /// <summary>x (..., C) -> (..., C)</summary>
    public override Tensor Forward(Tensor x) => Functional.LayerNorm(x, Weight, Bias, Eps);
}
