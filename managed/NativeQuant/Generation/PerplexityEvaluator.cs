using NativeQuant.Autograd;
using NativeQuant.Models;
using NativeQuant.Tensors;

namespace NativeQuant.Generation;

/// <summary>Tokens scored, their mean negative log-likelihood (nats) and exp of it.</summary>
public sealed record PerplexityResult(long Tokens, double Nll, double Perplexity);

/// <summary>
/// Sliding-window perplexity as in the HF guide: windows of <c>window</c> tokens advanced by <c>stride</c>; each
/// window scores only the tokens not scored by an earlier window, with the rest as context.
/// </summary>
public static class PerplexityEvaluator
{
    public static PerplexityResult Evaluate(CausalLM model, ReadOnlySpan<int> ids, int window, int stride)
    {
        if (window <= 0) window = model.MaxPositions;
        if (stride <= 0) stride = window;
        if (window > model.MaxPositions) throw new ArgumentOutOfRangeException(nameof(window), window, $"window exceeds the model's context of {model.MaxPositions}");
        if (stride > window) throw new ArgumentOutOfRangeException(nameof(stride), stride, $"stride must not exceed the window ({window})");
        if (ids.Length < 2) throw new ArgumentException("perplexity needs at least two tokens", nameof(ids));
        foreach (int id in ids)
            if ((uint)id >= (uint)model.VocabSize) throw new ArgumentOutOfRangeException(nameof(ids), id, $"token {id} is outside the vocabulary [0, {model.VocabSize})");

        using var noGrad = GradMode.NoGrad();
        double nll = 0;
        long count = 0;
        int scoredUpTo = 1;  // the first token has no context and is never scored
        for (int begin = 0; scoredUpTo < ids.Length; begin += stride)
        {
            int end = Math.Min(begin + window, ids.Length);
            using var scope = new TensorScope();
            var input = Tensor.FromSpan(ids[begin..end], [1, end - begin], DType.Int32);
            var logits = model.Forward(input);  // (1, L, V)
            // Row j predicts token begin + j + 1; score targets from..end-1 (a window's first token has no
            // context inside it, so with stride == window it goes unscored, as in the HF recipe).
            int from = Math.Max(scoredUpTo, begin + 1);
            int firstRow = from - begin - 1;
            var targets = ids[from..end];
            nll += Functional.NllPerRow(logits.Data[(firstRow * model.VocabSize)..((end - begin - 1) * model.VocabSize)], targets, model.VocabSize, int.MinValue, out int n);
            count += n;
            scoredUpTo = end;
        }
        double mean = nll / count;
        return new PerplexityResult(count, mean, Math.Exp(mean));
    }
}
