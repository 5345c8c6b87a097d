using System.Diagnostics;
using NativeQuant.Autograd;
using NativeQuant.Models;
using NativeQuant.Tensors;

namespace NativeQuant.Generation;

/// <summary>Autoregressive decoding with a KV cache: one prefill forward over the prompt, then one single-token
/// forward per new token. Each step's tensors live in a scope freed right after the step.</summary>
public static class Generator
{
    public static GenerationResult Generate(CausalLM model, ReadOnlySpan<int> promptIds, GenerationOptions options, Action<int>? onToken)
    {
        options.Validate();
        if (promptIds.Length == 0) throw new ArgumentException("the prompt must hold at least one token (e.g. BOS)", nameof(promptIds));
        foreach (int id in promptIds)
            if ((uint)id >= (uint)model.VocabSize) throw new ArgumentOutOfRangeException(nameof(promptIds), id, $"prompt token {id} is outside the vocabulary [0, {model.VocabSize})");
        if (promptIds.Length > model.MaxPositions)
            throw new ArgumentException($"the prompt has {promptIds.Length} tokens, longer than the model's context of {model.MaxPositions}", nameof(promptIds));

        var stops = new HashSet<int>(options.StopTokens ?? DefaultStops(model));
        int budget = Math.Min(options.MaxNewTokens, model.MaxPositions - promptIds.Length);
        var prompt = promptIds.ToArray();
        var produced = new List<int>(budget);
        var sampler = new Sampler(model.VocabSize, options);
        var logits = new float[model.VocabSize];
        var step = new int[1];
        double prefill = 0;
        var clock = Stopwatch.StartNew();

        using var noGrad = GradMode.NoGrad();
        using var cache = model.CreateCache(1, Math.Max(1, Math.Min(model.MaxPositions, prompt.Length + budget)));
        if (budget > 0) Forward(model, prompt, cache, logits);
        prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        for (int i = 0; i < budget; i++)
        {
            int next = sampler.Next(logits);
            if (stops.Contains(next)) break;
            produced.Add(next);
            onToken?.Invoke(next);
            if (i + 1 == budget) break;
            step[0] = next;
            Forward(model, step, cache, logits);
        }
        return new GenerationResult(prompt, produced.ToArray(), null, prefill, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Encodes <paramref name="prompt"/> with BOS and streams the decoded text of each new token.</summary>
    public static GenerationResult Generate(CausalLM model, string prompt, GenerationOptions options, Action<string>? onText)
    {
        var tok = model.RequireTokenizer();
        var ids = tok.Encode(prompt, addBos: tok.BosId >= 0);
        var decoder = tok.CreateStreamingDecoder();
        var text = new System.Text.StringBuilder();
        var result = Generate(model, ids, options, id =>
        {
            string piece = decoder.Push(id);
            text.Append(piece);
            if (piece.Length > 0) onText?.Invoke(piece);
        });
        string tail = decoder.Flush();
        text.Append(tail);
        if (tail.Length > 0) onText?.Invoke(tail);
        return result with { Text = text.ToString() };
    }

    private static IEnumerable<int> DefaultStops(CausalLM model)
    {
        if (model.Tokenizer is { } t)
        {
            if (t.EosId >= 0) yield return t.EosId;
            if (t.BosId >= 0) yield return t.BosId;
        }
    }

    // ids at the cache's next positions -> logits of the last one, copied out before the step's tensors are freed.
    private static void Forward(CausalLM model, int[] ids, KVCache cache, float[] logits)
    {
        using var scope = new TensorScope();
        var input = Tensor.FromSpan<int>(ids, [1, ids.Length], DType.Int32);
        var output = model.Forward(input, cache, lastPositionOnly: true);  // (1,1,V)
        output.Data.CopyTo(logits);
    }
}
