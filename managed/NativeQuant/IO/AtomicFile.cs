namespace NativeQuant.IO;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new content: the data goes to a
/// temporary file in the destination's directory (same file system, so the rename is atomic), is flushed to
/// disk, then renamed over the destination. On any failure the temporary file is removed and the destination
/// is left untouched.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, Action<FileStream> write)
    {
        string full = System.IO.Path.GetFullPath(path);
        string dir = System.IO.Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{path}: directory '{dir}' does not exist");
        string temp = TempPathFor(full);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Hidden sibling of the destination with a random suffix, so concurrent writers never collide.</summary>
    internal static string TempPathFor(string fullPath) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(fullPath)!,
            "." + System.IO.Path.GetFileName(fullPath) + ".tmp-" + Guid.NewGuid().ToString("N")[..12]);

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
