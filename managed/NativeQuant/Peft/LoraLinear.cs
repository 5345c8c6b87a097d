using System.Numerics.Tensors;
using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.NN;
using NativeQuant.Tensors;
using Tensor = NativeQuant.Tensors.Tensor;

namespace NativeQuant.Peft;

/// <summary>
/// A linear layer with a low-rank update (PEFT's lora.Linear): y = base(x) + B(A(dropout(x))) · scaling, with the
/// base frozen, lora_A (r, in) and lora_B (out, r) trainable. Child names follow PEFT's in-memory layout
/// (base_layer, lora_dropout.default, lora_A.default.weight, lora_B.default.weight) so parameter names match.
/// </summary>
public sealed class LoraLinear : Module<Tensor, Tensor>
{
    public const string AdapterName = "default";

    public LoraLinear(Module<Tensor, Tensor> baseLayer, LoraConfig config, Random initRng, int dropoutSeed)
    {
        if (!LinearLayers.IsLinear(baseLayer))
            throw new ArgumentException($"LoRA wraps Linear, Conv1D, Linear4bit or Linear8bitLt layers, not {baseLayer.GetType().Name}", nameof(baseLayer));
        (InFeatures, OutFeatures) = LinearLayers.Features(baseLayer);
        R = config.R;
        Scaling = config.Scaling;
        RegisterModule("base_layer", baseLayer);
        RegisterModule("lora_dropout", new ModuleDict<Dropout>(AdapterName, new Dropout(config.LoraDropout, dropoutSeed)));
        var (a, b) = InitialWeights(config.InitLoraWeights, initRng);
        RegisterModule("lora_A", new ModuleDict<Linear>(AdapterName, new Linear(a)));
        RegisterModule("lora_B", new ModuleDict<Linear>(AdapterName, new Linear(b)));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public int R { get; }
    public float Scaling { get; }

    /// <summary>When true the layer computes base(x) only (PEFT's disable_adapter()).</summary>
    public bool AdapterDisabled { get; set; }

    public Module<Tensor, Tensor> BaseLayer => Child<Module<Tensor, Tensor>>("base_layer");
    /// <summary>(r, in)</summary>
    public Parameter LoraA => Child<ModuleDict<Linear>>("lora_A")[AdapterName].Weight;
    /// <summary>(out, r)</summary>
    public Parameter LoraB => Child<ModuleDict<Linear>>("lora_B")[AdapterName].Weight;

    private (Parameter A, Parameter B) InitialWeights(LoraInit init, Random rng)
    {
        // torch kaiming_uniform_(a=√5) has bound gain·√(3/fan_in) with gain √(2/(1+5)), i.e. exactly 1/√fan_in.
        var a = init == LoraInit.Gaussian
            ? Init.Normal([R, InFeatures], 1f / R, rng)
            : Init.Uniform([R, InFeatures], 1f / MathF.Sqrt(InFeatures), rng);
        var b = init == LoraInit.Random
            ? Init.Uniform([OutFeatures, R], 1f / MathF.Sqrt(R), rng)
            : Init.Constant([OutFeatures, R], 0f);
        return (a, b);
    }

    /// <summary>x (..., in) -> (..., out)</summary>
    public override Tensor Forward(Tensor x)
    {
        var y = BaseLayer.Forward(x);
        if (AdapterDisabled) return y;
        var dropped = Child<ModuleDict<Dropout>>("lora_dropout")[AdapterName].Forward(x);
        var low = Child<ModuleDict<Linear>>("lora_A")[AdapterName].Forward(dropped);   // (..., r)
        // Scaling the rank-r product rather than the (..., out) one: same value up to rounding, r/out of the work
        // and no extra (..., out) activation kept until the step ends.
        var scaled = Functional.Scale(low, Scaling);
        var loraB = Child<ModuleDict<Linear>>("lora_B")[AdapterName];
        // y is this layer's own fresh output: the up-projection accumulates into it (no (..., out) temporary).
        if (loraB.Bias == null && loraB.ComputeDtype == NqComputeType.F32) return Functional.AddLinear(y, scaled, loraB.Weight);
        return Functional.Add(y, loraB.Forward(scaled));  // (..., out)
    }

    /// <summary>scaling · B·A as a new (out, in) tensor (the update merging adds to the base weight).</summary>
    public unsafe Tensor DeltaWeight()
    {
        var delta = Tensor.Empty([OutFeatures, InFeatures]);
        Gemm.Sgemm(false, false, OutFeatures, InFeatures, R, LoraB.DataPointer, LoraA.DataPointer, 0f, delta.DataPointer);
        TensorPrimitives.Multiply(delta.Data, Scaling, delta.Data);
        return delta;
    }

    /// <summary>Releases the adapter weights and returns the layer that replaces this wrapper. With
    /// <paramref name="merge"/> the update is folded in first: fp layers in place; quantized layers are dequantized,
    /// merged and requantized in their own format, and <paramref name="rounding"/> tells how much requantizing
    /// moved the merged weight. This wrapper is unusable afterwards.</summary>
    public Module<Tensor, Tensor> Unwrap(string name, bool merge, out MergeRoundingError? rounding)
    {
        rounding = null;
        var result = merge ? MergeIntoBase(name, out rounding) : BaseLayer;
        Child<Module>("lora_A").Dispose();
        Child<Module>("lora_B").Dispose();
        Child<Module>("lora_dropout").Dispose();
        return result;
    }

    private Module<Tensor, Tensor> MergeIntoBase(string name, out MergeRoundingError? rounding)
    {
        rounding = null;
        var baseLayer = BaseLayer;
        using var delta = TensorScope.Unscoped(DeltaWeight);
        switch (baseLayer)
        {
            case Linear l:
                TensorPrimitives.Add(l.Weight.Data, delta.Data, l.Weight.Data);
                l.ReleasePackedHead();  // a copy packed from the old weight (Linear.PackedHead)
                return l;
            case Conv1D c:
                AddTransposed(c.Weight.Data, delta.Data, OutFeatures, InFeatures);
                return c;
            default:
                var requantized = Requantize(name, baseLayer, delta, out rounding);
                baseLayer.Dispose();
                return requantized;
        }
    }

    // w (in, out) += d (out, in)ᵀ
    private static void AddTransposed(Span<float> w, ReadOnlySpan<float> d, int outF, int inF)
    {
        for (int o = 0; o < outF; o++)
            for (int i = 0; i < inF; i++) w[i * outF + o] += d[o * inF + i];
    }

    private static Module<Tensor, Tensor> Requantize(string name, Module<Tensor, Tensor> q, Tensor delta, out MergeRoundingError? rounding)
    {
        using var w = TensorScope.Unscoped(() => q switch
        {
            Linear4bit l4 => l4.Dequantize(),
            Linear8bitLt l8 => l8.Dequantize(),
            _ => throw new NotSupportedException($"cannot merge LoRA into {q.GetType().Name}"),
        });
        TensorPrimitives.Add(w.Data, delta.Data, w.Data);
        var bias = LinearLayers.Bias(q) is { } b ? new Parameter(b, b.RequiresGrad) : null;  // shares storage with the old bias
        Module<Tensor, Tensor> requantized = q switch
        {
            Linear4bit l4 => new Linear4bit(w, bias, l4.Type, l4.BlockSize, l4.DoubleQuant) { ComputeDtype = l4.ComputeDtype },
            Linear8bitLt l8 => new Linear8bitLt(w, bias, l8.Threshold),
            _ => throw new NotSupportedException($"cannot merge LoRA into {q.GetType().Name}"),
        };
        using var back = TensorScope.Unscoped(() => requantized is Linear4bit n4 ? n4.Dequantize() : ((Linear8bitLt)requantized).Dequantize());
        rounding = MergeRoundingError.Measure(name, w.Data, back.Data, delta.Data);
        return requantized;
    }
}
