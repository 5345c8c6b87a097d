using System.Text.Json;

namespace NativeQuant.Data;

/// <summary>JSON Lines: one JSON object per line (blank lines skipped). Each object becomes a row of field ->
/// text: strings as they are, other values (numbers, booleans, nested) as their JSON text, null as "".</summary>
public static class JsonlReader
{
    public static IEnumerable<IReadOnlyDictionary<string, string>> Read(string path)
    {
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            yield return ParseLine(line, path, lineNo);
        }
    }

    public static IReadOnlyDictionary<string, string> ParseLine(string line, string path, int lineNo)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new InvalidDataException($"{path}:{lineNo}: not valid JSON: {e.Message}", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}:{lineNo}: expected a JSON object, got {doc.RootElement.ValueKind}");
            var row = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
                row[p.Name] = p.Value.ValueKind switch
                {
                    JsonValueKind.String => p.Value.GetString()!,
                    JsonValueKind.Null => "",
                    _ => p.Value.GetRawText(),
                };
            return row;
        }
    }
}
