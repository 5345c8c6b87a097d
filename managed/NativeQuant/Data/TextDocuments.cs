namespace NativeQuant.Data;

/// <summary>Documents of plain text named by a `--data` argument: an embedded dataset ("moby-dick", "sotu"),
/// a .jsonl file of {"text": ...} records, or a plain text file (documents split by blank-line runs).</summary>
public static class TextDocuments
{
    public static readonly IReadOnlyList<string> DatasetNames = ["moby-dick", "sotu"];

    public static IReadOnlyList<string> Read(string data)
    {
        var docs = data switch
        {
            "moby-dick" => StdlibDatasets.MobyDick().Select(r => r["text"]).ToList(),
            "sotu" => StdlibDatasets.Sotu().Select(r => r["text"]).ToList(),
            _ when data.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) =>
                JsonlReader.Read(RequireFile(data)).Select((r, i) => r.TryGetValue("text", out var t) ? t : throw new KeyNotFoundException($"--data {data}: record {i + 1} has no 'text' field")).ToList(),
            _ => PlainText.ReadDocuments(RequireFile(data)).ToList(),
        };
        docs = docs.Where(d => !string.IsNullOrWhiteSpace(d)).ToList();
        return docs.Count > 0 ? docs : throw new ArgumentException($"--data {data}: no text");
    }

    /// <summary><paramref name="path"/> if the file exists; otherwise a FileNotFoundException naming the argument
    /// and the dataset names that would have been accepted instead.</summary>
    public static string RequireFile(string path) => File.Exists(path)
        ? path
        : throw new FileNotFoundException($"--data {path}: file not found (or use a dataset: {string.Join(", ", DatasetNames)})", path);
}
