namespace NativeQuant.Peft;

/// <summary>How far requantizing a merged weight moved it: max |Wq − W| and RMS(Wq − W) over the merged fp32
/// weight W, next to RMS of the LoRA update itself — an error comparable to the update means the quantized
/// format cannot represent what the adapter learned, and the merged model will not match the adapter's.</summary>
public sealed record MergeRoundingError(string Module, double MaxAbs, double Rms, double UpdateRms)
{
    internal static MergeRoundingError Measure(string module, ReadOnlySpan<float> merged, ReadOnlySpan<float> requantized, ReadOnlySpan<float> update)
    {
        double max = 0, sq = 0, usq = 0;
        for (int i = 0; i < merged.Length; i++)
        {
            double e = Math.Abs((double)requantized[i] - merged[i]);
            max = Math.Max(max, e);
            sq += e * e;
            usq += (double)update[i] * update[i];
        }
        int n = Math.Max(merged.Length, 1);
        return new MergeRoundingError(module, max, Math.Sqrt(sq / n), Math.Sqrt(usq / n));
    }

    public override string ToString() =>
        FormattableString.Invariant($"{Module}: requantization error max {MaxAbs:G4}, rms {Rms:G4} (LoRA update rms {UpdateRms:G4})");
}
