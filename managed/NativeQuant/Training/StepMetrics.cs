namespace NativeQuant.Training;

/// <summary>What one optimizer step did, as logged to metrics.jsonl and the progress display.</summary>
public readonly record struct StepMetrics(long Step, long MaxSteps, double Loss, float Lr, double GradNorm, long Tokens,
                                          double TokensPerSecond, double Epoch, long NativeLiveBytes, TimeSpan Elapsed);
