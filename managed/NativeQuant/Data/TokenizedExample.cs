namespace NativeQuant.Data;

/// <summary>One training sequence: token ids and per-position labels in Hugging Face's convention — labels[i] is
/// the token at position i, or <see cref="IgnoreIndex"/> where no loss is taken; the loss shifts them by one
/// (<see cref="Batch.NextTokenTargets"/>).</summary>
public sealed record TokenizedExample(int[] InputIds, int[] Labels)
{
    /// <summary>PyTorch's cross-entropy ignore_index.</summary>
    public const int IgnoreIndex = -100;

    public int Length => InputIds.Length;
}
