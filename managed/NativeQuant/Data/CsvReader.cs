using System.Text;

namespace NativeQuant.Data;

/// <summary>CSV as RFC 4180 describes it: a header row naming the fields, comma-separated values, double-quoted
/// fields that may hold commas, newlines and doubled quotes (""). Every row must have the header's column count.</summary>
public static class CsvReader
{
    public static IEnumerable<IReadOnlyDictionary<string, string>> Read(string path, char delimiter = ',')
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        foreach (var row in Parse(reader, path, delimiter)) yield return row;
    }

    public static IEnumerable<IReadOnlyDictionary<string, string>> Parse(TextReader reader, string source, char delimiter = ',')
    {
        string[]? header = null;
        int line = 1;
        while (true)
        {
            int startLine = line;
            var fields = ReadRecord(reader, source, delimiter, ref line);
            if (fields == null) yield break;
            if (fields.Count == 1 && fields[0].Length == 0) continue;  // blank line
            if (header == null)
            {
                header = fields.ToArray();
                var dup = header.GroupBy(h => h).FirstOrDefault(g => g.Count() > 1);
                if (dup != null) throw new InvalidDataException($"{source}:{startLine}: header names column '{dup.Key}' twice");
                continue;
            }
            if (fields.Count != header.Length)
                throw new InvalidDataException($"{source}:{startLine}: {fields.Count} fields, the header has {header.Length} ({string.Join(", ", header)})");
            var row = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < header.Length; i++) row[header[i]] = fields[i];
            yield return row;
        }
    }

    // One record (which may span lines inside quotes); null at end of input.
    private static List<string>? ReadRecord(TextReader r, string source, char delimiter, ref int line)
    {
        if (r.Peek() < 0) return null;
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false, wasQuoted = false;
        int quoteLine = line;
        while (true)
        {
            int c = r.Read();
            if (quoted)
            {
                if (c < 0) throw new InvalidDataException($"{source}:{quoteLine}: quoted field is not closed before the end of the file");
                if (c == '"')
                {
                    if (r.Peek() == '"') { r.Read(); field.Append('"'); }
                    else quoted = false;
                }
                else
                {
                    if (c == '\n') line++;
                    field.Append((char)c);
                }
                continue;
            }
            if (c < 0 || c == '\n' || (c == '\r' && r.Peek() == '\n'))
            {
                if (c == '\r') r.Read();
                if (c >= 0) line++;
                fields.Add(field.ToString());
                return fields;
            }
            if (c == delimiter)
            {
                fields.Add(field.ToString());
                field.Clear();
                wasQuoted = false;
            }
            else if (c == '"' && field.Length == 0 && !wasQuoted)
            {
                quoted = wasQuoted = true;
                quoteLine = line;
            }
            else if (wasQuoted)
                throw new InvalidDataException($"{source}:{line}: unexpected '{(char)c}' after a closing quote (a quote inside a quoted field is written \"\")");
            else field.Append((char)c);
        }
    }
}
