namespace NativeQuant.Optim;

/// <summary>
/// Sets every group's lr to InitialLr × factor(step) (torch's LambdaLR). The factories are transformers'
/// get_{constant,linear,cosine}_schedule_with_warmup: factor rises linearly from 0 over the warmup steps, then
/// stays at 1, decays linearly to 0, or follows half a cosine to 0 at <c>totalSteps</c>. Call <see cref="Step"/>
/// after each optimizer step; its state is just <see cref="LastStep"/> (the optimizer's StepCount on resume).
/// </summary>
public sealed class LRScheduler
{
    public static readonly IReadOnlyList<string> Names = ["constant", "linear", "cosine"];

    private readonly NativeOptimizer _optimizer;
    private readonly Func<long, double> _factor;

    private LRScheduler(NativeOptimizer optimizer, Func<long, double> factor, long lastStep)
    {
        _optimizer = optimizer;
        _factor = factor;
        LastStep = lastStep;
        Apply();
    }

    /// <summary>Optimizer steps taken so far; the lr set now is the one for step LastStep + 1.</summary>
    public long LastStep { get; private set; }

    public static LRScheduler Create(string name, NativeOptimizer optimizer, int warmupSteps, int totalSteps, long lastStep = 0)
    {
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "warmup steps must be >= 0");
        if (totalSteps <= 0) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "total steps must be positive");
        Func<long, double> decay = name switch
        {
            "constant" => _ => 1.0,
            "linear" => s => Math.Max(0.0, (double)(totalSteps - s) / Math.Max(1, totalSteps - warmupSteps)),
            "cosine" => s => Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * (double)(s - warmupSteps) / Math.Max(1, totalSteps - warmupSteps)))),
            _ => throw new ArgumentException($"unknown lr schedule '{name}' (expected one of: {string.Join(", ", Names)})", nameof(name)),
        };
        return new LRScheduler(optimizer, s => s < warmupSteps ? (double)s / Math.Max(1, warmupSteps) : decay(s), lastStep);
    }

    public void Step()
    {
        LastStep++;
        Apply();
    }

    /// <summary>Current lr of each group (torch's get_last_lr()).</summary>
    public IReadOnlyList<float> GetLastLr() => _optimizer.ParamGroups.Select(g => g.Lr).ToList();

    // transformers evaluates the lambda at the number of steps already taken, so step 1 uses factor(0).
    private void Apply()
    {
        double f = _factor(LastStep);
        foreach (var g in _optimizer.ParamGroups) g.Lr = (float)(g.InitialLr * f);
    }
}
