using NativeQuant.NN;

namespace NativeQuant.Optim;

/// <summary>Parameters that share hyper-parameters (torch.optim param_groups). <see cref="Lr"/> is what
/// schedulers change between steps; <see cref="InitialLr"/> is the base they scale.</summary>
public sealed class ParamGroup
{
    public ParamGroup(IEnumerable<Parameter> parameters, float lr, (float Beta1, float Beta2) betas, float eps, float weightDecay)
    {
        Parameters = parameters.ToList();
        if (Parameters.Count == 0) throw new ArgumentException("a parameter group must hold at least one parameter", nameof(parameters));
        if (!(lr > 0f) || !float.IsFinite(lr)) throw new ArgumentOutOfRangeException(nameof(lr), lr, "lr must be a positive finite number");
        if (!(betas.Beta1 >= 0f && betas.Beta1 < 1f)) throw new ArgumentOutOfRangeException(nameof(betas), betas.Beta1, "beta1 must be in [0, 1)");
        if (!(betas.Beta2 >= 0f && betas.Beta2 < 1f)) throw new ArgumentOutOfRangeException(nameof(betas), betas.Beta2, "beta2 must be in [0, 1)");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be positive");
        if (!(weightDecay >= 0f)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight_decay must be >= 0");
        foreach (var p in Parameters)
            if (p.DType != Tensors.DType.Float32) throw new ArgumentException($"optimizers update fp32 parameters only, got {p}", nameof(parameters));
        Lr = InitialLr = lr;
        Betas = betas;
        Eps = eps;
        WeightDecay = weightDecay;
    }

    public IReadOnlyList<Parameter> Parameters { get; }
    public float Lr { get; set; }
    public float InitialLr { get; }
    public (float Beta1, float Beta2) Betas { get; }
    public float Eps { get; }
    public float WeightDecay { get; }
}
