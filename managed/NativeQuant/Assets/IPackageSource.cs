namespace NativeQuant.Fetch;

/// <summary>Obtains a package tarball (.tgz) for NAME@VERSION; <see cref="NpmPackageSource"/> in production.</summary>
public interface IPackageSource
{
    /// <returns>Path of the downloaded .tgz inside <paramref name="directory"/>.</returns>
    Task<string> DownloadAsync(string package, string version, string directory, CancellationToken ct);
}
