using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Models;

/// <summary>How a freshly built parameter is initialised when it does not come from a checkpoint.</summary>
public enum InitKind
{
    Normal,
    Ones,
    Zeros,
}

/// <summary>
/// Supplies a model's parameters and linear layers by their HF names while the model is being built, so a
/// checkpoint can stream in (and be quantized) layer by layer and a from-scratch model gets seeded init.
/// </summary>
public abstract class WeightFactory
{
    /// <summary>An fp32 parameter called <paramref name="name"/> with exactly <paramref name="shape"/>.</summary>
    public abstract Parameter Parameter(string name, int[] shape, InitKind init);

    /// <summary>A linear layer "name" (weight (out, in) at name.weight), possibly quantized.</summary>
    public virtual Module<Tensor, Tensor> Linear(string name, int inFeatures, int outFeatures, bool bias) =>
        new Linear(Parameter(name + ".weight", [outFeatures, inFeatures], InitKind.Normal),
                   bias ? Parameter(name + ".bias", [outFeatures], InitKind.Zeros) : null);

    /// <summary>The output head sharing <paramref name="embedding"/> (vocab, hidden) as its weight.</summary>
    public virtual Module<Tensor, Tensor> TiedHead(Parameter embedding) => new Linear(embedding);

    /// <summary>A GPT-2 Conv1D "name" (weight (in, out)).</summary>
    public virtual Module<Tensor, Tensor> Conv1D(string name, int inFeatures, int outFeatures) =>
        new Conv1D(Parameter(name + ".weight", [inFeatures, outFeatures], InitKind.Normal),
                   Parameter(name + ".bias", [outFeatures], InitKind.Zeros));
}

/// <summary>Seeded N(0, std) weights, ones for norm scales, zeros for biases (GPT-2 / LLaMA init).</summary>
public sealed class RandomWeights(int seed, float std = 0.02f) : WeightFactory
{
    private readonly Random _rng = new(seed);

    public override Parameter Parameter(string name, int[] shape, InitKind init) => init switch
    {
        InitKind.Normal => Init.Normal(shape, std, _rng),
        InitKind.Ones => Init.Constant(shape, 1f),
        _ => Init.Constant(shape, 0f),
    };
}
