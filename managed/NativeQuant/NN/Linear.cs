using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>y = x Wᵀ + b with weight (out_features, in_features), as torch.nn.Linear.</summary>
public sealed class Linear : Module<Tensor, Tensor>
{
    public Linear(Parameter weight, Parameter? bias = null)
    {
        if (weight.Rank != 2) throw new ArgumentException($"Linear: weight must be 2-D, got {weight.ShapeString}");
        RegisterParameter("weight", weight);
        if (bias != null) RegisterParameter("bias", bias);
        Weight = weight;
        Bias = bias;
    }

    /// <summary>PyTorch's default init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.</summary>
    public Linear(int inFeatures, int outFeatures, bool bias, Random rng)
        : this(Init.Uniform([outFeatures, inFeatures], 1f / MathF.Sqrt(inFeatures), rng),
               bias ? Init.Uniform([outFeatures], 1f / MathF.Sqrt(inFeatures), rng) : null) { }

    public Parameter Weight { get; }
    public Parameter? Bias { get; }
    public int InFeatures => Weight.Size(1);
    public int OutFeatures => Weight.Size(0);

    /// <summary>Precision of the forward and dX products (dW stays fp32), as torch.autocast would run this layer:
    /// F32 (default), F16 or BF16 (see nq_gemm_f32_compute). A QLoRA model's full-precision output head takes the
    /// 4-bit layers' compute dtype: it is a third of a GPT-2-small training step's FLOPs.</summary>
    public NqComputeType ComputeDtype
    {
        get => _compute;
        set => _compute = QuantConfig.RequireFloatCompute(value, "Linear");
    }
    private NqComputeType _compute = NqComputeType.F32;

    /// <summary>x (..., in) -> (..., out)</summary>
    public override Tensor Forward(Tensor x) => Functional.Linear(x, Weight, Bias, _compute);
}

/// <summary>HF's GPT-2 Conv1D: y = x W + b with weight (in_features, out_features).</summary>
public sealed class Conv1D : Module<Tensor, Tensor>
{
    public Conv1D(Parameter weight, Parameter bias)
    {
        if (weight.Rank != 2 || bias.Rank != 1 || bias.Size(0) != weight.Size(1))
            throw new ArgumentException($"Conv1D: weight (in, out) and bias (out) do not agree: {weight.ShapeString}, {bias.ShapeString}");
        Weight = RegisterParameter("weight", weight);
        Bias = RegisterParameter("bias", bias);
    }

    public Parameter Weight { get; }
    public Parameter Bias { get; }

    /// <summary>x (..., in) -> (..., out)</summary>
    public override Tensor Forward(Tensor x) => Functional.MatMul(x, Weight, Bias);
}
