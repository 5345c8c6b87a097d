using NativeQuant.Autograd;
using NativeQuant.Data;
using NativeQuant.Models;
using NativeQuant.Tensors;

namespace NativeQuant.Training;

/// <summary>Causal-LM evaluation: token-weighted mean loss over held-out sequences and its perplexity exp(loss).</summary>
public sealed class LmEvaluator(IReadOnlyList<TokenizedExample> examples, int padId, int batchSize = 4) : IEvaluator
{
    private readonly IReadOnlyList<TokenizedExample> _examples = examples.Count > 0 ? examples
        : throw new ArgumentException("the evaluation set is empty", nameof(examples));

    public EvalResult Evaluate(CausalLM model)
    {
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            using var _ = GradMode.NoGrad();
            double nll = 0;
            long tokens = 0;
            for (int start = 0; start < _examples.Count; start += batchSize)
            {
                using var scope = new TensorScope();
                var batch = Batch.Collate(_examples.Skip(start).Take(batchSize).ToList(), padId);
                var ids = batch.InputIdsTensor();
                var (positions, targets) = batch.SupervisedNextTokens();
                int count = (int)targets.NumElements;
                if (count == 0) continue;
                var loss = model.Loss(ids, positions, targets);
                nll += (double)loss.Item() * count;
                tokens += count;
            }
            if (tokens == 0) throw new InvalidOperationException("no evaluation token carries loss");
            double mean = nll / tokens;
            return new EvalResult(mean, "perplexity", Math.Exp(mean), _examples.Count);
        }
        finally { model.Train(wasTraining); }
    }
}
