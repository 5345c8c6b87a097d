using System.Formats.Tar;
using System.IO.Compression;

namespace NativeQuant.Fetch;

/// <summary>
/// Extracts chosen regular-file entries of a .tgz (an npm package) into a directory. Any entry whose name is
/// absolute or contains ".." is rejected, so a hostile archive cannot write outside the destination.
/// </summary>
public static class TarGzExtractor
{
    /// <param name="wanted">true for entry names (relative, '/'-separated) to extract.</param>
    public static async Task<IReadOnlyList<string>> ExtractAsync(string archive, string destination, Func<string, bool> wanted,
        CancellationToken ct = default)
    {
        string root = Path.GetFullPath(destination);
        var extracted = new List<string>();
        await using var file = File.OpenRead(archive);
        await using var gz = new GZipStream(file, CompressionMode.Decompress);
        await using var tar = new TarReader(gz);
        TarEntry? entry;
        try
        {
            while ((entry = await tar.GetNextEntryAsync(copyData: false, ct).ConfigureAwait(false)) is not null)
            {
                string name = Normalize(archive, entry.Name);
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || !wanted(name)) continue;
                string target = Path.GetFullPath(Path.Combine(root, name));
                if (!target.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                    throw new InvalidDataException($"{archive}: entry '{entry.Name}' would be written outside {root}");
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                if (entry.DataStream is null) { await File.WriteAllBytesAsync(target, [], ct).ConfigureAwait(false); }
                else
                {
                    await using var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                    await entry.DataStream.CopyToAsync(output, ct).ConfigureAwait(false);
                }
                extracted.Add(name);
            }
        }
        catch (InvalidDataException) { throw; }
        catch (Exception e) when (e is FormatException or EndOfStreamException or IOException && e is not FileNotFoundException)
        {
            throw new InvalidDataException($"{archive}: corrupt or truncated .tgz: {e.Message}", e);
        }
        return extracted;
    }

    /// <summary>'/'-separated relative name; throws for absolute names or ".." components.</summary>
    internal static string Normalize(string archive, string entryName)
    {
        string name = entryName.Replace('\\', '/');
        while (name.StartsWith("./", StringComparison.Ordinal)) name = name[2..];
        if (name.StartsWith('/') || (name.Length >= 2 && name[1] == ':'))
            throw new InvalidDataException($"{archive}: entry '{entryName}' has an absolute path");
        if (name.Split('/').Any(p => p == ".."))
            throw new InvalidDataException($"{archive}: entry '{entryName}' contains '..' (path traversal)");
        return name;
    }
}
