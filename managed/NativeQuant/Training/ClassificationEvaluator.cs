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
    private readonly int _batchSize;

    /// <param name="batchSize">sequences forwarded together (scores do not depend on it beyond rounding).</param>
    public ClassificationEvaluator(IReadOnlyList<ClassificationExample> examples, int batchSize = 16)
    {
        if (examples.Count == 0) throw new ArgumentException("the evaluation set is empty", nameof(examples));
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be positive");
        foreach (var e in examples)
        {
            if (e.PromptIds.Length == 0) throw new ArgumentException("a classification prompt is empty", nameof(examples));
            if (e.CandidateIds.Length < 2 || e.CandidateIds.Any(c => c.Length == 0))
                throw new ArgumentException("classification needs at least 2 candidates, each of at least one token", nameof(examples));
            if ((uint)e.Label >= (uint)e.CandidateIds.Length)
                throw new ArgumentException($"label {e.Label} is not a candidate index (0..{e.CandidateIds.Length - 1})", nameof(examples));
        }
        _examples = examples;
        _batchSize = batchSize;
    }

    public EvalResult Evaluate(CausalLM model)
    {
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            var scores = Scores(model, _examples, _batchSize);
            int correct = 0;
            double loss = 0;
            for (int i = 0; i < _examples.Count; i++)
            {
                if (Predict(scores[i]) == _examples[i].Label) correct++;
                loss -= scores[i][_examples[i].Label];
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
    public static double[] Scores(CausalLM model, ClassificationExample e) => Scores(model, [e], 1)[0];

    /// <summary>Summed log-probability of each candidate after each example's prompt, without a tape. Sequences
    /// go through the model in right-padded batches (exact: under causal attention no real token sees the pads),
    /// and the head runs only at the positions that predict a candidate token.</summary>
    public static double[][] Scores(CausalLM model, IReadOnlyList<ClassificationExample> examples, int batchSize)
    {
        using var noGrad = GradMode.NoGrad();
        var scores = examples.Select(e => new double[e.CandidateIds.Length]).ToArray();
        // Single-token candidates all read the last prompt position, so one sequence per example serves them;
        // otherwise each candidate is its own sequence: the prompt and all but the candidate's last token.
        var sequences = new List<(int[] Ids, int Example, int Candidate)>();
        for (int i = 0; i < examples.Count; i++)
        {
            var e = examples[i];
            if (e.CandidateIds.All(c => c.Length == 1)) sequences.Add((e.PromptIds, i, -1));
            else for (int c = 0; c < e.CandidateIds.Length; c++) sequences.Add(([.. e.PromptIds, .. e.CandidateIds[c].AsSpan(0, e.CandidateIds[c].Length - 1)], i, c));
        }
        var ordered = sequences.OrderBy(s => s.Ids.Length).ToList();  // similar lengths together: less padding
        int vocab = model.VocabSize;
        for (int start = 0; start < ordered.Count; start += batchSize)
        {
            using var scope = new TensorScope();
            var chunk = ordered.GetRange(start, Math.Min(batchSize, ordered.Count - start));
            int t = chunk.Max(s => s.Ids.Length);
            var ids = new int[chunk.Count * t];
            var positions = new List<int>();
            for (int j = 0; j < chunk.Count; j++)
            {
                var (seq, example, candidate) = chunk[j];
                seq.CopyTo(ids, j * t);
                int reads = candidate < 0 ? 1 : examples[example].CandidateIds[candidate].Length;
                for (int k = 0; k < reads; k++) positions.Add(j * t + examples[example].PromptIds.Length - 1 + k);
            }
            var logits = model.Forward(Tensor.FromArray(ids, chunk.Count, t), Tensor.FromArray(positions.ToArray(), positions.Count)).Data;
            int row = 0;
            foreach (var (_, example, candidate) in chunk)
            {
                var candidates = examples[example].CandidateIds;
                if (candidate < 0)
                {
                    var r = logits.Slice(row++ * vocab, vocab);
                    double lse = Functional.LogSumExp(r);
                    for (int c = 0; c < candidates.Length; c++) scores[example][c] = r[candidates[c][0]] - lse;
                }
                else
                    foreach (int token in candidates[candidate])
                        scores[example][candidate] += LogProbs.At(logits.Slice(row++ * vocab, vocab), token);
            }
        }
        return scores;
    }
}
