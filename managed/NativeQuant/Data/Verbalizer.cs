namespace NativeQuant.Data;

/// <summary>Label -> answer text the model is trained to produce (spam -> " spam", ham -> " ham"); the leading
/// space makes the answer its own word after "is:".</summary>
public sealed class Verbalizer(IReadOnlyDictionary<string, string> map)
{
    public IReadOnlyDictionary<string, string> Map { get; } = map.Count > 0 ? map : throw new ArgumentException("a verbalizer needs at least one label");

    public string Verbalize(string label) =>
        Map.TryGetValue(label, out var text) ? text
            : throw new KeyNotFoundException($"label '{label}' is not in the verbalizer (known labels: {string.Join(", ", Map.Keys)})");
}
