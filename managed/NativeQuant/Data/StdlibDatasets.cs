namespace NativeQuant.Data;

/// <summary>One SpamAssassin e-mail: its corpus group, ham/spam label, and the subject/body split of the raw text.</summary>
public sealed record SpamEmail(string Id, string Group, string Label, string Subject, string Body)
{
    /// <summary>Fields for a <see cref="PromptTemplate"/>: id, group, label, subject, body.</summary>
    public IReadOnlyDictionary<string, string> ToRow() => new Dictionary<string, string>
    {
        ["id"] = Id, ["group"] = Group, ["label"] = Label, ["subject"] = Subject, ["body"] = Body,
    };
}

/// <summary>The @stdlib datasets fetched into the asset cache (`nq fetch`), read from their data.jsonl.</summary>
public static class StdlibDatasets
{
    public const string SpamAssassinPath = "datasets/spam-assassin/data.jsonl";
    public const string SotuPath = "datasets/sotu/data.jsonl";
    public const string MobyDickPath = "datasets/moby-dick/data.jsonl";

    /// <summary>Corpus groups and their labels (the corpus' own naming: easy/hard ham, two spam batches).</summary>
    public static readonly IReadOnlyDictionary<string, string> SpamAssassinLabels = new Dictionary<string, string>
    {
        ["easy-ham-1"] = "ham", ["easy-ham-2"] = "ham", ["hard-ham-1"] = "ham", ["spam-1"] = "spam", ["spam-2"] = "spam",
    };

    /// <summary>All 6,046 e-mails {id, group, text} with the text split into subject and body.</summary>
    public static IReadOnlyList<SpamEmail> SpamAssassin(string? path = null)
    {
        path ??= Assets.Path(SpamAssassinPath);
        var result = new List<SpamEmail>();
        int line = 0;
        foreach (var row in JsonlReader.Read(path))
        {
            line++;
            string group = Field(row, "group", path, line);
            if (!SpamAssassinLabels.TryGetValue(group, out var label))
                throw new InvalidDataException($"{path}: record {line} has group '{group}', expected one of {string.Join(", ", SpamAssassinLabels.Keys)}");
            var (subject, body) = EmailText.Split(Field(row, "text", path, line));
            result.Add(new SpamEmail(Field(row, "id", path, line), group, label, subject, body));
        }
        return result;
    }

    /// <summary>State of the Union addresses as rows {year, name, party, text}.</summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, string>> Sotu(string? path = null) =>
        JsonlReader.Read(path ?? Assets.Path(SotuPath)).ToList();

    /// <summary>Moby-Dick as rows {chapter, title, text}.</summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, string>> MobyDick(string? path = null) =>
        JsonlReader.Read(path ?? Assets.Path(MobyDickPath)).ToList();

    private static string Field(IReadOnlyDictionary<string, string> row, string name, string path, int line) =>
        row.TryGetValue(name, out var v) ? v : throw new InvalidDataException($"{path}: record {line} has no field '{name}'");
}
