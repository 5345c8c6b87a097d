using System.Text.RegularExpressions;

namespace NativeQuant.Peft;

/// <summary>
/// Which modules LoRA wraps, as PEFT's <c>target_modules</c>: a list of names (a module matches when its dotted
/// path equals a name or ends with ".name"), a regular expression (full match of the path), or "all-linear"
/// (every linear layer except the output head). Converts implicitly from string[] and string.
/// </summary>
public sealed class TargetModules
{
    public const string AllLinearKeyword = "all-linear";

    private TargetModules(IReadOnlyList<string>? names, string? pattern)
    {
        Names = names;
        Pattern = pattern;
    }

    /// <summary>Module names (list form), or null for the regex / all-linear forms.</summary>
    public IReadOnlyList<string>? Names { get; }

    /// <summary>The regex, or "all-linear", or null for the list form.</summary>
    public string? Pattern { get; }

    public bool IsAllLinear => Pattern == AllLinearKeyword;

    public static TargetModules FromNames(params string[] names) => new(names.ToArray(), null);

    public static TargetModules FromPattern(string pattern) => new(null, pattern);

    public static implicit operator TargetModules(string[] names) => FromNames(names);

    public static implicit operator TargetModules(string pattern) => FromPattern(pattern);

    /// <summary>Whether the module at <paramref name="path"/> is a target (all-linear: every path, the caller
    /// filters to linear layers and drops the head).</summary>
    public bool Matches(string path)
    {
        if (Names != null) return Names.Any(n => NameMatches(n, path));
        return IsAllLinear || Regex.IsMatch(path, $"^(?:{Pattern})$", RegexOptions.CultureInvariant);
    }

    /// <summary>PEFT's list rule: exact path, or a dotted suffix of it.</summary>
    public static bool NameMatches(string name, string path) =>
        path == name || path.EndsWith("." + name, StringComparison.Ordinal);

    public override string ToString() => Names != null ? "[" + string.Join(", ", Names) + "]" : $"'{Pattern}'";
}
