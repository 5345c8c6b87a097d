namespace NativeQuant.Data;

/// <summary>Plain UTF-8 text files as documents for causal-LM training.</summary>
public static class PlainText
{
    /// <summary>The whole file as one document.</summary>
    public static string Read(string path) => File.ReadAllText(path);

    /// <summary>Documents separated by one or more blank lines (each trimmed; empty ones dropped).</summary>
    public static IReadOnlyList<string> ReadDocuments(string path) => SplitDocuments(File.ReadAllText(path));

    public static IReadOnlyList<string> SplitDocuments(string text) =>
        System.Text.RegularExpressions.Regex.Split(text.Replace("\r\n", "\n"), @"\n[ \t]*\n")
            .Select(d => d.Trim()).Where(d => d.Length > 0).ToList();
}
