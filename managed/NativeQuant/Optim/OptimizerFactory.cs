using NativeQuant.NN;

namespace NativeQuant.Optim;

/// <summary>Optimizers by name, as the CLI and configs spell them ("adamw", "paged_adamw_8bit", ...: the names
/// of transformers' optim argument).</summary>
public static class OptimizerFactory
{
    public static readonly IReadOnlyList<string> Names =
        ["adamw", "adamw_8bit", "paged_adamw", "paged_adamw_8bit", "lion", "lion_8bit", "paged_lion_8bit"];

    /// <summary>AdamW's default eps (PyTorch and bitsandbytes).</summary>
    private const float AdamEps = 1e-8f;

    /// <summary>Builds optimizer <paramref name="name"/> over one group of <paramref name="parameters"/>; a null
    /// weight decay takes the optimizer's default.</summary>
    public static NativeOptimizer Create(string name, IEnumerable<Parameter> parameters, float lr, float? weightDecay = null, string? pagerDirectory = null)
    {
        var list = parameters.ToList();
        if (list.Count == 0) throw new ArgumentException("the optimizer got no trainable parameters (is everything frozen?)", nameof(parameters));
        bool lion = name.StartsWith("lion", StringComparison.Ordinal) || name.StartsWith("paged_lion", StringComparison.Ordinal);
        var group = new ParamGroup(list, lr, lion ? (0.9f, 0.99f) : (0.9f, 0.999f), lion ? ParamGroupDefaults.UnusedEps : AdamEps,
                                   weightDecay ?? (lion ? 0f : 1e-2f));
        return name switch
        {
            "adamw" => new AdamW([group]),
            "adamw_8bit" => new AdamW8bit([group]),
            "paged_adamw" => new PagedAdamW([group], pagerDirectory: pagerDirectory),
            "paged_adamw_8bit" => new PagedAdamW8bit([group], pagerDirectory: pagerDirectory),
            "lion" => new Lion([group]),
            "lion_8bit" => new Lion8bit([group]),
            "paged_lion_8bit" => new PagedLion8bit([group], pagerDirectory: pagerDirectory),
            _ => throw new ArgumentException($"unknown optimizer '{name}' (expected one of: {string.Join(", ", Names)})", nameof(name)),
        };
    }
}
