using NativeQuant.Autograd;
using NativeQuant.Models;
using NativeQuant.Tensors;

namespace NativeQuant.Training;

/// <summary>A prompt (the template filled in up to where the answer goes), the token ids each class's verbalizer
/// adds after it, and the index of the correct class.</summary>
public sealed record ClassificationExample(int[] PromptIds, int[][] CandidateIds, int Label);

/// <summary>
/// Classification by scoring: each candidate's tokens are appended to the prompt and their summed log-probability
/// under the model is the class score; the prediction is the best score (ties: the first class). Validation loss
/// is the mean negative log-probability of the correct candidate, i.e. the loss of an answer-only example.
/// </summary>
public sealed class ClassificationEvaluator : IEvaluator
{
    private readonly IReadOnlyList<ClassificationExample> _examples;

    public ClassificationEvaluator(IReadOnlyList<ClassificationExample> examples)
    {
        if (examples.Count == 0) throw new ArgumentException("the evaluation set is empty", nameof(examples));
        foreach (var e in examples)
        {
            if (e.PromptIds.Length == 0) throw new ArgumentException("a classification prompt is empty", nameof(examples));
            if (e.CandidateIds.Length < 2 || e.CandidateIds.Any(c => c.Length == 0))
                throw new ArgumentException("classification needs at least 2 candidates, each of at least one token", nameof(examples));
            if ((uint)e.Label >= (uint)e.CandidateIds.Length)
                throw new ArgumentException($"label {e.Label} is not a candidate index (0..{e.CandidateIds.Length - 1})", nameof(examples));
        }
        _examples = examples;
    }

    public EvalResult Evaluate(CausalLM model)
    {
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            using var _ = GradMode.NoGrad();
            int correct = 0;
            double loss = 0;
            foreach (var e in _examples)
            {
                var scores = Scores(model, e);
                if (Predict(scores) == e.Label) correct++;
                loss -= scores[e.Label];
            }
            return new EvalResult(loss / _examples.Count, "accuracy", (double)correct / _examples.Count, _examples.Count);
        }
        finally { model.Train(wasTraining); }
    }

    public static int Predict(double[] scores)
    {
        int best = 0;
        for (int c = 1; c < scores.Length; c++) if (scores[c] > scores[best]) best = c;
        return best;
    }

    /// <summary>Summed log-probability of each candidate after the prompt.</summary>
    public static double[] Scores(CausalLM model, ClassificationExample e)
    {
        var scores = new double[e.CandidateIds.Length];
        using var scope = new TensorScope();
        if (e.CandidateIds.All(c => c.Length == 1))
        {
            // One forward gives every single-token candidate's probability at the last prompt position.
            var ids = Tensor.FromArray(e.PromptIds, 1, e.PromptIds.Length);
            var row = model.Forward(ids, lastPositionOnly: true).Data;
            double lse = LogProbs.LogSumExp(row);
            for (int c = 0; c < scores.Length; c++) scores[c] = row[e.CandidateIds[c][0]] - lse;
            return scores;
        }
        int vocab = model.VocabSize, p = e.PromptIds.Length;
        for (int c = 0; c < scores.Length; c++)
        {
            var cand = e.CandidateIds[c];
            int[] seq = [.. e.PromptIds, .. cand.AsSpan(0, cand.Length - 1)];
            var logits = model.Forward(Tensor.FromArray(seq, 1, seq.Length)).Data;
            for (int k = 0; k < cand.Length; k++)
                scores[c] += LogProbs.At(logits.Slice((p - 1 + k) * vocab, vocab), cand[k]);
        }
        return scores;
    }
}
