using NativeQuant.Interop;
using NativeQuant.NN;

namespace NativeQuant.Optim;

// The optimizers by their bitsandbytes names; defaults are bitsandbytes'/PyTorch's. Each takes either a flat
// parameter list or explicit groups.

public sealed class AdamW(IReadOnlyList<ParamGroup> groups)
    : NativeOptimizer(NqOptimizerKind.Adamw, eightBit: false, paged: false, groups, 0, null)
{
    public AdamW(IEnumerable<Parameter> parameters, float lr = 1e-3f, (float, float)? betas = null, float eps = 1e-8f, float weightDecay = 1e-2f)
        : this([new ParamGroup(parameters, lr, betas ?? (0.9f, 0.999f), eps, weightDecay)]) { }
}

public sealed class AdamW8bit(IReadOnlyList<ParamGroup> groups)
    : NativeOptimizer(NqOptimizerKind.Adamw, eightBit: true, paged: false, groups, 0, null)
{
    public AdamW8bit(IEnumerable<Parameter> parameters, float lr = 1e-3f, (float, float)? betas = null, float eps = 1e-8f, float weightDecay = 1e-2f)
        : this([new ParamGroup(parameters, lr, betas ?? (0.9f, 0.999f), eps, weightDecay)]) { }
}

public sealed class PagedAdamW(IReadOnlyList<ParamGroup> groups, long pagedBudgetBytes = NativeOptimizer.DefaultPagedBudgetBytes, string? pagerDirectory = null)
    : NativeOptimizer(NqOptimizerKind.Adamw, eightBit: false, paged: true, groups, pagedBudgetBytes, pagerDirectory)
{
    public PagedAdamW(IEnumerable<Parameter> parameters, float lr = 1e-3f, (float, float)? betas = null, float eps = 1e-8f, float weightDecay = 1e-2f)
        : this([new ParamGroup(parameters, lr, betas ?? (0.9f, 0.999f), eps, weightDecay)]) { }
}

public sealed class PagedAdamW8bit(IReadOnlyList<ParamGroup> groups, long pagedBudgetBytes = NativeOptimizer.DefaultPagedBudgetBytes, string? pagerDirectory = null)
    : NativeOptimizer(NqOptimizerKind.Adamw, eightBit: true, paged: true, groups, pagedBudgetBytes, pagerDirectory)
{
    public PagedAdamW8bit(IEnumerable<Parameter> parameters, float lr = 1e-3f, (float, float)? betas = null, float eps = 1e-8f, float weightDecay = 1e-2f)
        : this([new ParamGroup(parameters, lr, betas ?? (0.9f, 0.999f), eps, weightDecay)]) { }
}

public sealed class Lion(IReadOnlyList<ParamGroup> groups)
    : NativeOptimizer(NqOptimizerKind.Lion, eightBit: false, paged: false, groups, 0, null)
{
    public Lion(IEnumerable<Parameter> parameters, float lr = 1e-4f, (float, float)? betas = null, float weightDecay = 0f)
        : this([new ParamGroup(parameters, lr, betas ?? (0.9f, 0.99f), ParamGroupDefaults.UnusedEps, weightDecay)]) { }
}

public sealed class Lion8bit(IReadOnlyList<ParamGroup> groups)
    : NativeOptimizer(NqOptimizerKind.Lion, eightBit: true, paged: false, groups, 0, null)
{
    public Lion8bit(IEnumerable<Parameter> parameters, float lr = 1e-4f, (float, float)? betas = null, float weightDecay = 0f)
        : this([new ParamGroup(parameters, lr, betas ?? (0.9f, 0.99f), ParamGroupDefaults.UnusedEps, weightDecay)]) { }
}

public sealed class PagedLion8bit(IReadOnlyList<ParamGroup> groups, long pagedBudgetBytes = NativeOptimizer.DefaultPagedBudgetBytes, string? pagerDirectory = null)
    : NativeOptimizer(NqOptimizerKind.Lion, eightBit: true, paged: true, groups, pagedBudgetBytes, pagerDirectory)
{
    public PagedLion8bit(IEnumerable<Parameter> parameters, float lr = 1e-4f, (float, float)? betas = null, float weightDecay = 0f)
        : this([new ParamGroup(parameters, lr, betas ?? (0.9f, 0.99f), ParamGroupDefaults.UnusedEps, weightDecay)]) { }
}

internal static class ParamGroupDefaults
{
    /// <summary>Lion has no eps; groups still validate one, so Lion passes this placeholder (the kernel ignores it).</summary>
    public const float UnusedEps = 1e-8f;
}
