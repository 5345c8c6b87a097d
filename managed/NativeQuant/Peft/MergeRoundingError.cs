namespace NativeQuant.Peft;

/// <summary>How far requantizing a merged weight moved it: max |Wq − W| and RMS(Wq − W) over the merged fp32
/// weight W, next to RMS of the LoRA update itself — an error comparable to the update means the quantized
/// format cannot represent what the adapter learned, and the merged model will not match the adapter's.</summary>
public sealed record MergeRoundingError(string Module, double MaxAbs, double Rms, double UpdateRms, long Elements)
{
    internal static MergeRoundingError Measure(string module, ReadOnlySpan<float> merged, ReadOnlySpan<float> requantized, ReadOnlySpan<float> update) =>
        Measure(module, merged, requantized, RootMeanSquare(update));

    internal static double RootMeanSquare(ReadOnlySpan<float> x)
    {
        double sq = 0;
        foreach (float v in x) sq += (double)v * v;
        return Math.Sqrt(sq / Math.Max(x.Length, 1));
    }

    /// <summary>As above, with the update's RMS already known (0 for a layer requantized without a merge).</summary>
    internal static MergeRoundingError Measure(string module, ReadOnlySpan<float> merged, ReadOnlySpan<float> requantized, double updateRms)
    {
        double max = 0, sq = 0;
        for (int i = 0; i < merged.Length; i++)
        {
            double e = Math.Abs((double)requantized[i] - merged[i]);
            max = Math.Max(max, e);
            sq += e * e;
        }
        return new MergeRoundingError(module, max, Math.Sqrt(sq / Math.Max(merged.Length, 1)), updateRms, merged.Length);
    }

    /// <summary>The errors of <paramref name="layers"/> pooled over all their elements.</summary>
    public static MergeRoundingError Total(IReadOnlyCollection<MergeRoundingError> layers)
    {
        long n = layers.Sum(e => e.Elements);
        double Pooled(Func<MergeRoundingError, double> rms) => Math.Sqrt(layers.Sum(e => rms(e) * rms(e) * e.Elements) / Math.Max(n, 1));
        return new MergeRoundingError("total", layers.Select(e => e.MaxAbs).DefaultIfEmpty().Max(), Pooled(e => e.Rms), Pooled(e => e.UpdateRms), n);
    }

    public override string ToString() =>
        FormattableString.Invariant($"{Module}: requantization error max {MaxAbs:G4}, rms {Rms:G4} (LoRA update rms {UpdateRms:G4})");
}
