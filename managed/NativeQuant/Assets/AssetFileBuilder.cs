using System.Security.Cryptography;
using System.Text.Json;

namespace NativeQuant.Fetch;

/// <summary>Produces one kept file of an asset from an extracted package and returns its SHA-256 (lowercase hex).</summary>
internal static class AssetFileBuilder
{
    private const int BufferBytes = 1 << 20;

    /// <summary>Package entry names the file needs (an exact name, or a directory prefix ending in '/').</summary>
    public static IEnumerable<string> Needs(AssetFile f)
    {
        if (f.Source is not null) yield return f.Source;
        if (f.Jsonl is not null) yield return f.Jsonl.TrimEnd('/') + "/";
        if (f.Order is not null) yield return f.Order;
    }

    public static async Task<string> BuildAsync(AssetFile f, string packageDir, string outputPath, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(outputPath)!);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using (var output = new FileStream(outputPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferBytes, useAsync: true))
        {
            async Task Emit(ReadOnlyMemory<byte> bytes)
            {
                hash.AppendData(bytes.Span);
                await output.WriteAsync(bytes, ct).ConfigureAwait(false);
            }
            if (f.Source is not null) await CopyRangeAsync(f, Path.Combine(packageDir, f.Source), Emit, ct).ConfigureAwait(false);
            else await JoinJsonLinesAsync(f, packageDir, Emit, ct).ConfigureAwait(false);
            output.Flush(flushToDisk: true);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static async Task CopyRangeAsync(AssetFile f, string source, Func<ReadOnlyMemory<byte>, Task> emit, CancellationToken ct)
    {
        if (!File.Exists(source)) throw new AssetException($"package entry '{f.Source}' (for '{f.Path}') is missing from the package");
        await using var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, BufferBytes, useAsync: true);
        long end = f.Length is long len ? f.Offset + len : input.Length;
        if (f.Offset > input.Length || end > input.Length)
            throw new AssetException($"package entry '{f.Source}' is {input.Length} bytes; '{f.Path}' needs bytes [{f.Offset}, {end})");
        input.Position = f.Offset;
        var buffer = new byte[BufferBytes];
        for (long left = end - f.Offset; left > 0;)
        {
            int n = await input.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), ct).ConfigureAwait(false);
            if (n == 0) throw new AssetException($"package entry '{f.Source}' ended early while copying '{f.Path}'");
            await emit(buffer.AsMemory(0, n)).ConfigureAwait(false);
            left -= n;
        }
    }

    /// <summary>
    /// Each *.json file under the directory becomes one line (trailing CR/LF dropped). With an order file (a JSON
    /// array of names, any extension, mapped to the .json sibling) the lines follow it and it must name every file.
    /// </summary>
    private static async Task JoinJsonLinesAsync(AssetFile f, string packageDir, Func<ReadOnlyMemory<byte>, Task> emit, CancellationToken ct)
    {
        string dir = Path.Combine(packageDir, f.Jsonl!);
        if (!Directory.Exists(dir)) throw new AssetException($"package directory '{f.Jsonl}' (for '{f.Path}') is missing from the package");
        string? orderFull = f.Order is null ? null : Path.GetFullPath(Path.Combine(packageDir, f.Order));
        var files = Directory.EnumerateFiles(dir, "*.json", SearchOption.AllDirectories)
            .Where(p => Path.GetFullPath(p) != orderFull)
            .Select(p => Path.GetRelativePath(dir, p).Replace('\\', '/'))
            .ToList();
        List<string> order;
        if (orderFull is null)
        {
            order = files.OrderBy(p => p, StringComparer.Ordinal).ToList();
        }
        else
        {
            var listed = JsonSerializer.Deserialize<List<string>>(await File.ReadAllTextAsync(orderFull, ct).ConfigureAwait(false))
                ?? throw new AssetException($"order file '{f.Order}' is not a JSON array of names");
            order = listed.Select(n => Path.ChangeExtension(n, ".json").Replace('\\', '/')).ToList();
            if (!new HashSet<string>(order).SetEquals(files))
                throw new AssetException($"order file '{f.Order}' lists {order.Count} files but '{f.Jsonl}' holds {files.Count} JSON files");
        }
        if (f.Lines is int lines && lines != order.Count)
            throw new AssetException($"'{f.Path}' should have {lines} lines but '{f.Jsonl}' holds {order.Count} JSON files");
        var newline = new byte[] { (byte)'\n' };
        foreach (var rel in order)
        {
            byte[] bytes = await File.ReadAllBytesAsync(Path.Combine(dir, rel), ct).ConfigureAwait(false);
            int len = bytes.Length;
            while (len > 0 && bytes[len - 1] is (byte)'\n' or (byte)'\r') len--;
            if (Array.IndexOf(bytes, (byte)'\n', 0, len) >= 0)
                throw new AssetException($"'{f.Jsonl}/{rel}' spans several lines; cannot join it into JSON Lines");
            await emit(bytes.AsMemory(0, len)).ConfigureAwait(false);
            await emit(newline).ConfigureAwait(false);
        }
    }

    public static async Task<string> HashFileAsync(string path, CancellationToken ct)
    {
        await using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferBytes, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(input, ct).ConfigureAwait(false));
    }
}
