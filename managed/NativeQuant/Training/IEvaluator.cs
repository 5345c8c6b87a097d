using NativeQuant.Models;

namespace NativeQuant.Training;

/// <summary>Validation loss plus one task metric (accuracy, perplexity) measured on a held-out set.</summary>
public readonly record struct EvalResult(double Loss, string MetricName, double Metric, int Examples);

/// <summary>Evaluates a model on a held-out set (in eval mode, without a tape).</summary>
public interface IEvaluator
{
    EvalResult Evaluate(CausalLM model);
}
