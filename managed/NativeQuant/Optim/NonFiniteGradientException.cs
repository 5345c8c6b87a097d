namespace NativeQuant.Optim;

/// <summary>The global gradient norm was NaN or infinite: the update is refused (the parameters and optimizer
/// state are untouched), since one such step would poison every later one.</summary>
public sealed class NonFiniteGradientException(long step, double norm)
    : Exception($"non-finite gradient norm ({norm}) at optimizer step {step}; the update was skipped and training stopped "
                + "(lower the learning rate, enable clipping, or check the data for empty or degenerate examples)")
{
    public long Step { get; } = step;
    public double Norm { get; } = norm;
}
