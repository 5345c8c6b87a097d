using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>Fresh parameters for layers built from scratch (seeded, so reproducible).</summary>
public static class Init
{
    public static Parameter Uniform(int[] shape, float bound, Random rng)
    {
        using var t = TensorScope.Unscoped(() => Tensor.Empty(shape));
        var s = t.Data;
        for (int i = 0; i < s.Length; i++) s[i] = (rng.NextSingle() * 2f - 1f) * bound;
        return new Parameter(t);
    }

    public static Parameter Normal(int[] shape, float std, Random rng)
    {
        using var t = TensorScope.Unscoped(() => Tensor.RandN(shape, rng, std));
        return new Parameter(t);
    }

    public static Parameter Constant(int[] shape, float value)
    {
        using var t = TensorScope.Unscoped(() => Tensor.Full(shape, value));
        return new Parameter(t);
    }
}
