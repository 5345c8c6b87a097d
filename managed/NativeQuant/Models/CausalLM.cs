using NativeQuant.Autograd;
using NativeQuant.Generation;
using NativeQuant.NN;
using NativeQuant.Tensors;
using NativeQuant.Tokenizers;

namespace NativeQuant.Models;

/// <summary>
/// A decoder-only language model: token ids in, next-token logits out, with an optional KV cache. Entry point of
/// the engine: <see cref="Load"/> a checkpoint, then <see cref="Generate(string, GenerationOptions, Action{string}?)"/>
/// or <see cref="Perplexity(string, int, int)"/>.
/// </summary>
public abstract class CausalLM : Module
{
    public abstract int VocabSize { get; }
    /// <summary>Context length (positions the model was trained for).</summary>
    public abstract int MaxPositions { get; }
    public abstract int NumLayers { get; }
    public abstract int NumKeyValueHeads { get; }
    public abstract int HeadDim { get; }

    /// <summary>The tokenizer loaded with the model (null when none was found).</summary>
    public ITokenizer? Tokenizer { get; set; }

    /// <summary>Recompute each block in backward instead of keeping its activations (training only).</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>Loads a llama2.c .bin, an HF directory, or a named asset ("stories15M"), optionally quantizing.</summary>
    public static CausalLM Load(string path, QuantConfig? quant = null) => ModelLoader.Load(path, quant ?? QuantConfig.None);

    /// <summary>ids (B, T) int32 at positions cache.Length.. -> logits (B, T, V), or (B, 1, V) for the last
    /// position only (inference).</summary>
    public Tensor Forward(Tensor ids, KVCache? cache = null, bool lastPositionOnly = false)
    {
        var h = HiddenStates(ids, cache);
        if (!lastPositionOnly) return Head(h);
        int b = ids.Size(0), t = ids.Size(1);
        var last = Tensor.FromArray(Enumerable.Range(0, b).Select(i => i * t + t - 1).ToArray(), b);
        return HeadAt(h, last).Reshape(b, 1, VocabSize);
    }

    /// <summary>ids (B, T) -> logits (N, V) at the flattened positions b * T + t listed in
    /// <paramref name="positions"/> (N) int32. The 32000-way head is most of a small model's work, and a
    /// classification loss or a verbalizer score needs it only at the answer positions.</summary>
    public Tensor Forward(Tensor ids, Tensor positions, KVCache? cache = null) => Head(HiddenAt(ids, positions, cache));

    /// <summary>Mean causal-LM cross-entropy of <paramref name="targets"/> (N) int32 predicted at
    /// <paramref name="positions"/> (N): the value and gradients of CrossEntropy(Forward(ids, positions), targets),
    /// with an fp32 or quantized bias-free head fused into the loss a chunk of rows at a time, so the (N, V) logits
    /// and their gradient never exist.</summary>
    public Tensor Loss(Tensor ids, Tensor positions, Tensor targets, int ignoreIndex = -100)
    {
        var hidden = HiddenAt(ids, positions, null);  // (N, C)
        return Child<Module<Tensor, Tensor>>("lm_head") switch
        {
            Linear { Bias: null } l => Functional.LinearCrossEntropy(hidden, l.Weight, targets, ignoreIndex, l.LossCompute, l.PackedHead()),
            TiedQuantizedHead { Quantized: IQuantizedWeight q } => Functional.QuantizedLinearCrossEntropy(hidden, q, targets, ignoreIndex),
            Linear4bit { Bias: null } q => Functional.QuantizedLinearCrossEntropy(hidden, q, targets, ignoreIndex),
            Linear8bitLt { Bias: null } q => Functional.QuantizedLinearCrossEntropy(hidden, q, targets, ignoreIndex),
            var head => Functional.CrossEntropy(head.Forward(hidden), targets, ignoreIndex),
        };
    }

    // ids (B, T) -> hidden states (N, C) at the flattened positions b * T + t in positions (N) int32.
    private Tensor HiddenAt(Tensor ids, Tensor positions, KVCache? cache)
    {
        positions.RequireDType(DType.Int32);
        if (positions.Rank != 1) throw new ArgumentException($"Forward: positions must be (N), got {positions.ShapeString}");
        return SelectRows(HiddenStates(ids, cache), positions);
    }

    // hidden (B, T, C) -> (N, C) rows b * T + t listed in positions (N).
    private static Tensor SelectRows(Tensor hidden, Tensor positions) => Functional.IndexSelect(hidden.Reshape(-1, hidden.Size(-1)), positions);

    private Tensor HeadAt(Tensor hidden, Tensor positions) => Head(SelectRows(hidden, positions));

    /// <summary>ids (B, T) -> final normed hidden states (B, T, C), advancing the cache.</summary>
    public Tensor HiddenStates(Tensor ids, KVCache? cache = null)
    {
        ids.RequireDType(DType.Int32);
        if (ids.Rank != 2) throw new ArgumentException($"Forward: ids must be (B, T), got {ids.ShapeString}");
        int start = cache?.Length ?? 0, t = ids.Size(1);
        if (t == 0) throw new ArgumentException("Forward: ids must hold at least one token");
        if (start + t > MaxPositions)
            throw new ArgumentException($"Forward: positions {start}..{start + t - 1} exceed the model's context of {MaxPositions} tokens");
        var h = Hidden(ids, start, cache);
        cache?.Advance(t);
        return h;
    }

    /// <summary>Embeddings and every block: ids (B, T) -> final normed hidden states (B, T, C).</summary>
    protected abstract Tensor Hidden(Tensor ids, int startPos, KVCache? cache);

    /// <summary>hidden (B, T, C) -> logits (B, T, V).</summary>
    protected virtual Tensor Head(Tensor hidden) => Child<Module<Tensor, Tensor>>("lm_head").Forward(hidden);

    /// <summary>Runs one block, checkpointed when enabled and useful (training with a tape, no cache).</summary>
    protected Tensor RunBlock(Module block, Func<Tensor, Tensor> forward, Tensor h, KVCache? cache)
    {
        if (!GradMode.IsEnabled)
        {
            // Without a tape nothing reads a block's intermediates once it returns: freeing them per block keeps a
            // no-grad forward (evaluation, scoring, prefill) at one block's activations instead of all of them
            // (the demo's held-out scoring peaked at 602 MiB of native memory, ~94 MiB per block).
            using var scope = new TensorScope();
            return scope.Keep(forward(h));
        }
        if (GradientCheckpointing && cache == null && Training)
            return Autograd.Checkpoint.Apply(forward, h, block.Parameters().ToList<Tensor>());
        // With a tape, backward reads only what its nodes saved: the block's other intermediates are freed as it
        // returns (GPT-2 small at T = 256: ~11 of a block's ~23 MiB of activations).
        using var tape = new TensorScope();
        return tape.KeepSaved(forward(h));
    }

    public KVCache CreateCache(int batch = 1, int? maxLength = null) =>
        new(NumLayers, batch, maxLength ?? MaxPositions, NumKeyValueHeads, HeadDim);

    /// <summary>Samples up to maxNewTokens after the prompt ids, streaming each token id as it is chosen.</summary>
    public GenerationResult Generate(ReadOnlySpan<int> promptIds, GenerationOptions options, Action<int>? onToken = null) =>
        Generator.Generate(this, promptIds, options, onToken);

    /// <summary>Encodes <paramref name="prompt"/> (with BOS), samples, and streams decoded text pieces.</summary>
    public GenerationResult Generate(string prompt, GenerationOptions options, Action<string>? onText = null) =>
        Generator.Generate(this, prompt, options, onText);

    /// <summary>Sliding-window perplexity of a token sequence.</summary>
    public PerplexityResult Perplexity(ReadOnlySpan<int> ids, int window = 0, int stride = 0) =>
        PerplexityEvaluator.Evaluate(this, ids, window, stride);

    /// <summary>Perplexity of text (encoded with BOS by the model's tokenizer).</summary>
    public PerplexityResult Perplexity(string text, int window = 0, int stride = 0) =>
        PerplexityEvaluator.Evaluate(this, RequireTokenizer().Encode(text, addBos: true), window, stride);

    internal ITokenizer RequireTokenizer() =>
        Tokenizer ?? throw new InvalidOperationException("this model has no tokenizer; pass token ids, or set Tokenizer");
}
