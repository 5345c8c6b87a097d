using NativeQuant.Tokenizers;

namespace NativeQuant.Data;

/// <summary>
/// Turns rows into prompt/answer training sequences: BOS + prompt + verbalized answer (+ EOS), with the loss only on
/// the answer tokens (prompt positions get <see cref="TokenizedExample.IgnoreIndex"/>). Prompt and answer are
/// tokenized together, as the model will read them; the answer starts where the ids of prompt+answer first differ
/// from the ids of the prompt alone. Sequences longer than <see cref="MaxLength"/> are cut inside
/// <see cref="TruncateField"/> (the e-mail body), never in the answer.
/// </summary>
public sealed class SupervisedExampleEncoder(ITokenizer tokenizer, PromptTemplate template, Verbalizer verbalizer, int maxLength, string? truncateField = null)
{
    // Upper bound on characters per token when searching how much of a long field fits: pieces of SentencePiece /
    // GPT-2 vocabularies are at most a few dozen characters, so this many characters per token always overfill.
    private const int MaxCharsPerToken = 32;

    public int MaxLength { get; } = maxLength > 1 ? maxLength : throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "must be at least 2");
    public string? TruncateField { get; } = truncateField;
    /// <summary>End the answer with EOS (so generation learns to stop after it).</summary>
    public bool AppendEos { get; init; } = true;

    /// <param name="index">the row's position, for error messages.</param>
    public TokenizedExample Encode(IReadOnlyDictionary<string, string> row, int index = -1)
    {
        string where = index >= 0 ? $"example {index}" : "example";
        if (!row.TryGetValue(template.AnswerField, out var label))
            throw new KeyNotFoundException($"{where}: no '{template.AnswerField}' field (its fields: {string.Join(", ", row.Keys)})");
        string answer = verbalizer.Verbalize(label);
        if (template.Fields.All(f => string.IsNullOrWhiteSpace(row.TryGetValue(f, out var v) ? v : null)))
            throw new ArgumentException($"{where}: every prompt field ({string.Join(", ", template.Fields)}) is empty");

        var example = Build(template.RenderPrompt(row), answer, where);
        if (example.Length <= MaxLength) return example;
        if (TruncateField == null || !row.TryGetValue(TruncateField, out var full))
            throw new ArgumentException($"{where}: {example.Length} tokens exceed max_length {MaxLength} and no field may be truncated");

        // Largest prefix of the field that fits: lo always fits, hi is the first known not to.
        var shortest = Build(template.RenderPrompt(row, TruncateField, ""), answer, where);
        if (shortest.Length > MaxLength)
            throw new ArgumentException($"{where}: {shortest.Length} tokens exceed max_length {MaxLength} even with '{TruncateField}' empty");
        int lo = 0, hi = Math.Min(full.Length, MaxLength * MaxCharsPerToken);
        var best = shortest;
        var atHi = Build(template.RenderPrompt(row, TruncateField, Prefix(full, hi)), answer, where);
        if (atHi.Length <= MaxLength) return atHi;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            var candidate = Build(template.RenderPrompt(row, TruncateField, Prefix(full, mid)), answer, where);
            if (candidate.Length <= MaxLength) { lo = mid; best = candidate; }
            else hi = mid;
        }
        return best;
    }

    // Never split a surrogate pair.
    private static string Prefix(string s, int chars) =>
        chars > 0 && chars < s.Length && char.IsHighSurrogate(s[chars - 1]) ? s[..(chars - 1)] : s[..chars];

    private TokenizedExample Build(string prompt, string answer, string where)
    {
        int[] promptIds = tokenizer.Encode(prompt, addBos: true);
        int[] ids = tokenizer.Encode(prompt + answer, addBos: true, addEos: AppendEos);
        int start = 0;
        while (start < promptIds.Length && start < ids.Length && promptIds[start] == ids[start]) start++;
        if (start >= ids.Length - (AppendEos ? 1 : 0))
            throw new ArgumentException($"{where}: the answer '{answer}' adds no tokens after the prompt");
        var labels = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++) labels[i] = i >= start ? ids[i] : TokenizedExample.IgnoreIndex;
        return new TokenizedExample(ids, labels);
    }
}
