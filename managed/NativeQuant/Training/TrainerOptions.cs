using NativeQuant.Optim;

namespace NativeQuant.Training;

/// <summary>Hyper-parameters of a run (transformers' TrainingArguments, reduced). <see cref="Validate"/> names the
/// offending field.</summary>
public sealed record TrainerOptions
{
    public int MaxSteps { get; init; } = 100;
    public int GradientAccumulationSteps { get; init; } = 1;
    public string Optimizer { get; init; } = "paged_adamw_8bit";
    public float LearningRate { get; init; } = 2e-4f;
    /// <summary>Null: the optimizer's default.</summary>
    public float? WeightDecay { get; init; }
    public string LrSchedule { get; init; } = "linear";
    public int WarmupSteps { get; init; }
    /// <summary>Global-norm clipping (null: none).</summary>
    public double? MaxGradNorm { get; init; } = 1.0;
    /// <summary>Evaluate (and checkpoint) every N optimizer steps; 0: only at the end.</summary>
    public int EvalEvery { get; init; }
    public int Seed { get; init; } = 42;
    /// <summary>Token id used to pad batches (never seen by the loss).</summary>
    public int PadId { get; init; }

    public void Validate()
    {
        if (MaxSteps <= 0) throw new ArgumentException($"steps must be positive, got {MaxSteps}");
        if (GradientAccumulationSteps <= 0) throw new ArgumentException($"grad-accum must be positive, got {GradientAccumulationSteps}");
        if (!(LearningRate > 0f) || !float.IsFinite(LearningRate)) throw new ArgumentException($"lr must be a positive number, got {LearningRate}");
        if (WeightDecay is < 0f) throw new ArgumentException($"weight decay must be >= 0, got {WeightDecay}");
        if (!OptimizerFactory.Names.Contains(Optimizer))
            throw new ArgumentException($"unknown optimizer '{Optimizer}' (expected one of: {string.Join(", ", OptimizerFactory.Names)})");
        if (!LRScheduler.Names.Contains(LrSchedule))
            throw new ArgumentException($"unknown lr schedule '{LrSchedule}' (expected one of: {string.Join(", ", LRScheduler.Names)})");
        if (WarmupSteps < 0 || WarmupSteps >= MaxSteps) throw new ArgumentException($"warmup must be in [0, steps), got {WarmupSteps} with {MaxSteps} steps");
        if (MaxGradNorm is <= 0) throw new ArgumentException($"max grad norm must be positive, got {MaxGradNorm}");
        if (EvalEvery < 0) throw new ArgumentException($"eval-every must be >= 0, got {EvalEvery}");
    }
}
