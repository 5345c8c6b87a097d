using NativeQuant.Tensors;

namespace NativeQuant.Data;

/// <summary>
/// Examples padded on the right to one length: input ids (B, T), labels (B, T) with padding ignored, and an
/// attention mask (1 = real token). Right padding is exact under causal attention: real tokens never attend to
/// the pads after them, so the mask only matters for losses and metrics.
/// </summary>
public sealed class Batch
{
    private Batch(int size, int length, int[] ids, int[] labels, int[] mask)
    {
        Size = size;
        Length = length;
        InputIds = ids;
        Labels = labels;
        AttentionMask = mask;
    }

    public int Size { get; }
    public int Length { get; }
    /// <summary>(B, T) row-major.</summary>
    public int[] InputIds { get; }
    /// <summary>(B, T); <see cref="TokenizedExample.IgnoreIndex"/> on prompt and padding positions.</summary>
    public int[] Labels { get; }
    /// <summary>(B, T); 1 for tokens, 0 for padding.</summary>
    public int[] AttentionMask { get; }

    /// <param name="padId">id written at padding positions (its value never reaches the loss).</param>
    /// <param name="padToLength">pad to this length instead of the longest example.</param>
    public static Batch Collate(IReadOnlyList<TokenizedExample> examples, int padId, int? padToLength = null)
    {
        if (examples.Count == 0) throw new ArgumentException("cannot collate an empty batch", nameof(examples));
        int longest = examples.Max(e => e.Length);
        int t = padToLength ?? longest;
        if (t < longest) throw new ArgumentException($"padToLength {t} is shorter than the longest example ({longest} tokens)", nameof(padToLength));
        int b = examples.Count;
        var ids = new int[b * t];
        var labels = new int[b * t];
        var mask = new int[b * t];
        Array.Fill(ids, padId);
        Array.Fill(labels, TokenizedExample.IgnoreIndex);
        for (int i = 0; i < b; i++)
        {
            var e = examples[i];
            if (e.Labels.Length != e.Length) throw new ArgumentException($"example {i}: {e.Length} ids but {e.Labels.Length} labels");
            e.InputIds.CopyTo(ids, i * t);
            e.Labels.CopyTo(labels, i * t);
            Array.Fill(mask, 1, i * t, e.Length);
        }
        return new Batch(b, t, ids, labels, mask);
    }

    /// <summary>Input ids as an int32 tensor (B, T).</summary>
    public Tensor InputIdsTensor() => Tensor.FromArray(InputIds, Size, Length);

    /// <summary>Targets for the logits at each position (B, T): the label of the next position, ignored at the
    /// last — what a cross-entropy over logits (B, T, V) without further shifting needs.</summary>
    public Tensor NextTokenTargets()
    {
        var targets = new int[Size * Length];
        for (int i = 0; i < Size; i++)
        {
            Array.Copy(Labels, i * Length + 1, targets, i * Length, Length - 1);
            targets[i * Length + Length - 1] = TokenizedExample.IgnoreIndex;
        }
        return Tensor.FromArray(targets, Size, Length);
    }

    /// <summary>The flattened positions b * T + t whose next-token target is not ignored, (N) int32, and those
    /// targets (N): a loss over logits at just these positions equals the loss over
    /// <see cref="NextTokenTargets"/> at every position (ignored rows add nothing).</summary>
    public (Tensor Positions, Tensor Targets) SupervisedNextTokens()
    {
        var positions = new List<int>();
        var targets = new List<int>();
        for (int i = 0; i < Size; i++)
            for (int t = 0; t + 1 < Length; t++)
            {
                int label = Labels[i * Length + t + 1];
                if (label == TokenizedExample.IgnoreIndex) continue;
                positions.Add(i * Length + t);
                targets.Add(label);
            }
        return (Tensor.FromArray(positions.ToArray(), positions.Count), Tensor.FromArray(targets.ToArray(), targets.Count));
    }
}
