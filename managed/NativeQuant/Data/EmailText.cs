namespace NativeQuant.Data;

/// <summary>Splits a raw RFC 822 e-mail into its Subject and body: the header block ends at the first empty line;
/// folded header lines (starting with a space or tab) continue the previous header. Encoded words
/// (=?charset?Q?...?=) and MIME parts are kept as they are — the model sees the text the mail client received.</summary>
public static class EmailText
{
    public static (string Subject, string Body) Split(string raw)
    {
        string text = raw.Replace("\r\n", "\n");
        int end = text.IndexOf("\n\n", StringComparison.Ordinal);
        string headers = end < 0 ? text : text[..end];
        string body = end < 0 ? "" : text[(end + 2)..];
        return (Header(headers, "Subject") ?? "", body.Trim());
    }

    /// <summary>The unfolded value of the first header called <paramref name="name"/> (case-insensitive), or null.</summary>
    public static string? Header(string headerBlock, string name)
    {
        var lines = headerBlock.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.Length <= name.Length || line[name.Length] != ':' || !line.StartsWith(name, StringComparison.OrdinalIgnoreCase)) continue;
            var value = new System.Text.StringBuilder(line[(name.Length + 1)..].Trim());
            for (int j = i + 1; j < lines.Length && lines[j].Length > 0 && (lines[j][0] == ' ' || lines[j][0] == '\t'); j++)
                value.Append(' ').Append(lines[j].Trim());
            return value.ToString();
        }
        return null;
    }
}
