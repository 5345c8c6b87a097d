namespace NativeQuant.Generation;

/// <summary>Sampling settings (HF generate / llama2.c run.c semantics). Temperature 0 is greedy decoding;
/// TopK 0 and TopP 1 disable those filters.</summary>
public sealed record GenerationOptions(int MaxNewTokens = 256, float Temperature = 1f, float TopP = 1f, int TopK = 0, ulong Seed = 0)
{
    /// <summary>Token ids that end generation (null: the tokenizer's EOS and BOS — llama2.c's sequence delimiter).</summary>
    public IReadOnlyList<int>? StopTokens { get; init; }

    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), MaxNewTokens, "max new tokens must be >= 0");
        if (!(Temperature >= 0f) || float.IsInfinity(Temperature)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "temperature must be a finite value >= 0");
        if (!(TopP > 0f && TopP <= 1f)) throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "top-p must be in (0, 1]");
        if (TopK < 0) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "top-k must be >= 0");
    }
}

/// <summary>What <see cref="Generator"/> produced, with timings: prefill (the prompt) and decode (one token per step).</summary>
public sealed record GenerationResult(int[] PromptIds, int[] Tokens, string? Text, double PrefillSeconds, double DecodeSeconds)
{
    /// <summary>Decode throughput: tokens after the first (each one a single-token forward) per second.</summary>
    public double DecodeTokensPerSecond => Tokens.Length > 1 && DecodeSeconds > 0 ? (Tokens.Length - 1) / DecodeSeconds : 0;
    public double PrefillTokensPerSecond => PrefillSeconds > 0 ? PromptIds.Length / PrefillSeconds : 0;
}
