using System.Text;

namespace NativeQuant.Data;

/// <summary>
/// A prompt with named fields, e.g. "Subject: {subject}\n{body}\nThis e-mail is:{label}". "{{" and "}}" are
/// literal braces. The answer field (default "label") must be the last thing in the template: everything before
/// it is the prompt the model reads, the verbalized answer is what it learns to produce.
/// </summary>
public sealed class PromptTemplate
{
    private readonly List<(string Text, bool IsField)> _segments = new();

    public PromptTemplate(string template, string answerField = "label")
    {
        Template = template;
        AnswerField = answerField;
        Parse(template);
        var fields = _segments.Where(s => s.IsField).Select(s => s.Text).ToList();
        if (fields.Count(f => f == answerField) != 1 || _segments.Count == 0 || _segments[^1] != (answerField, true))
            throw new ArgumentException($"template must end with the answer field {{{answerField}}} and use it once: \"{template}\"", nameof(template));
        Fields = fields.Where(f => f != answerField).Distinct().ToList();
    }

    public string Template { get; }
    public string AnswerField { get; }
    /// <summary>Prompt fields in order of first use (the answer field excluded).</summary>
    public IReadOnlyList<string> Fields { get; }

    private void Parse(string t)
    {
        var literal = new StringBuilder();
        for (int i = 0; i < t.Length; i++)
        {
            char c = t[i];
            if ((c == '{' || c == '}') && i + 1 < t.Length && t[i + 1] == c) { literal.Append(c); i++; continue; }
            if (c == '}') throw new ArgumentException($"template: unmatched '}}' at {i} (write '}}}}' for a literal brace): \"{t}\"");
            if (c != '{') { literal.Append(c); continue; }
            int close = t.IndexOf('}', i + 1);
            string name = close < 0 ? "" : t[(i + 1)..close];
            if (close < 0 || name.Length == 0 || !name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_'))
                throw new ArgumentException($"template: '{{' at {i} does not open a field name like {{subject}} (write '{{{{' for a literal brace): \"{t}\"");
            if (literal.Length > 0) { _segments.Add((literal.ToString(), false)); literal.Clear(); }
            _segments.Add((name, true));
            i = close;
        }
        if (literal.Length > 0) _segments.Add((literal.ToString(), false));
    }

    /// <summary>The prompt (everything before the answer) with fields from <paramref name="row"/>;
    /// <paramref name="overrideField"/> takes <paramref name="overrideValue"/> instead (used to truncate it).</summary>
    public string RenderPrompt(IReadOnlyDictionary<string, string> row, string? overrideField = null, string? overrideValue = null)
    {
        var sb = new StringBuilder();
        foreach (var (text, isField) in _segments.Take(_segments.Count - 1))
        {
            if (!isField) { sb.Append(text); continue; }
            if (text == overrideField) { sb.Append(overrideValue); continue; }
            if (!row.TryGetValue(text, out var value))
                throw new KeyNotFoundException($"template field '{{{text}}}' is not in the example (its fields: {string.Join(", ", row.Keys)})");
            sb.Append(value);
        }
        return sb.ToString();
    }
}
