using NativeQuant.Autograd;
using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>Inverted dropout, active only in training mode; masks come from a seeded generator and are
/// replayed exactly under gradient checkpointing.</summary>
public sealed class Dropout(float p, int seed = 0) : Module<Tensor, Tensor>
{
    private readonly Random _rng = new(seed);

    public float P { get; } = p;

    public override Tensor Forward(Tensor x) =>
        Training && P > 0f ? Functional.Dropout(x, P, true, Checkpoint.NextSeed(_rng)) : x;
}
