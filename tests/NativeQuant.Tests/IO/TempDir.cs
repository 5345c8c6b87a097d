namespace NativeQuant.Tests.IO;

/// <summary>A fresh directory under the system temp dir, deleted on disposal.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Path = Directory.CreateDirectory(System.IO.Path.Combine(System.IO.Path.GetTempPath(), "nq-test-" + Guid.NewGuid().ToString("N")[..12])).FullName;

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}
