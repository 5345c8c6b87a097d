using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using NativeQuant.Fetch;
using NativeQuant.Tests.IO;
using NUnit.Framework;

namespace NativeQuant.Tests.Assets;

public class AssetCacheTests
{
    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    /// <summary>Serves a package tarball assembled in memory (instead of the npm registry) and counts downloads.</summary>
    private sealed class TarballSource(IReadOnlyDictionary<string, byte[]> entries) : IPackageSource
    {
        public int Downloads { get; private set; }

        public async Task<string> DownloadAsync(string package, string version, string directory, CancellationToken ct)
        {
            Downloads++;
            string path = Path.Combine(directory, $"{package}-{version}.tgz");
            await using var file = File.Create(path);
            await using var gz = new GZipStream(file, CompressionLevel.Fastest);
            await using var tar = new TarWriter(gz, TarEntryFormat.Pax);
            foreach (var (name, bytes) in entries)
            {
                var e = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(bytes) };
                await tar.WriteEntryAsync(e, ct);
            }
            return path;
        }
    }

    private static string Sha(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));
    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static readonly byte[] Blob = Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray();
    private static readonly Dictionary<string, byte[]> Package = new()
    {
        ["package/blob.data"] = Blob,
        ["package/data/b.json"] = Utf8("{\"id\":\"b\"}\n"),
        ["package/data/a.json"] = Utf8("{\"id\":\"a\"}"),
        ["package/data/sub/c.json"] = Utf8("{\"id\":\"c\"}"),
        ["package/data/list.json"] = Utf8("[\"sub/c.txt\",\"a.txt\",\"b.txt\"]"),
        ["package/unused.js"] = Utf8("ignored"),
    };

    private static AssetManifest Manifest(string? wrongSha = null) => new(
    [
        new AssetSpec("things/demo", "demo-pkg", "1.0.0", "test asset",
        [
            new AssetFile("head.bin", wrongSha ?? Sha(Blob[..300]), Source: "package/blob.data", Offset: 0, Length: 300),
            new AssetFile("tail.bin", Sha(Blob[300..]), Source: "package/blob.data", Offset: 300),
            new AssetFile("data.jsonl", Sha(Utf8("{\"id\":\"c\"}\n{\"id\":\"a\"}\n{\"id\":\"b\"}\n")), Jsonl: "package/data", Order: "package/data/list.json", Lines: 3),
        ]),
    ]);

    [Test]
    public async Task FetchesVerifiesAndSkipsWhenPresent()
    {
        var source = new TarballSource(Package);
        var cache = new AssetCache(_dir.Path, Manifest(), source);
        var spec = cache.Manifest.Find("things/demo");
        Assert.That(await cache.StateAsync(spec), Is.EqualTo(AssetState.Missing));
        Assert.That(await cache.FetchAsync(spec), Is.True);
        Assert.That(File.ReadAllBytes(cache.PathOf("things/demo/head.bin")), Is.EqualTo(Blob[..300]));
        Assert.That(File.ReadAllBytes(cache.PathOf("things/demo/tail.bin")), Is.EqualTo(Blob[300..]));
        Assert.That(File.ReadAllText(cache.PathOf("things/demo/data.jsonl")), Is.EqualTo("{\"id\":\"c\"}\n{\"id\":\"a\"}\n{\"id\":\"b\"}\n"));
        Assert.That(await cache.FetchAsync(spec), Is.False, "a verified asset is not fetched again");
        Assert.That(source.Downloads, Is.EqualTo(1));
        Assert.That(Directory.GetDirectories(_dir.Path).Select(Path.GetFileName), Is.EqualTo(new[] { "things" }), "no partial directories left");
    }

    [Test]
    public async Task CorruptedFileIsDetectedAndRepaired()
    {
        var source = new TarballSource(Package);
        var cache = new AssetCache(_dir.Path, Manifest(), source);
        var spec = cache.Manifest.Find("things/demo");
        await cache.FetchAsync(spec);
        File.WriteAllText(cache.PathOf("things/demo/tail.bin"), "tampered");
        var mismatches = await cache.VerifyAsync(spec);
        Assert.That(mismatches, Has.Count.EqualTo(1));
        Assert.That(mismatches[0].ToString(), Does.Contain("tail.bin").And.Contain("expected " + Sha(Blob[300..])));
        Assert.That(await cache.StateAsync(spec), Is.EqualTo(AssetState.Corrupt));
        Assert.That(await cache.FetchAsync(spec), Is.True);
        Assert.That(await cache.StateAsync(spec), Is.EqualTo(AssetState.Ok));
    }

    [Test]
    public async Task ShaMismatchNamesFileExpectedAndActualAndLeavesNothing()
    {
        var cache = new AssetCache(_dir.Path, Manifest(wrongSha: new string('0', 64)), new TarballSource(Package));
        // A leftover from an interrupted earlier run must be cleaned up.
        Directory.CreateDirectory(Path.Combine(_dir.Path, ".partial-things_demo-deadbeef"));
        var e = (await Assert.ThrowsAsync<AssetException>(() => cache.FetchAsync(cache.Manifest.Find("things/demo"))))!;
        Assert.That(e.Message, Does.Contain("head.bin").And.Contain("expected " + new string('0', 64)).And.Contain("actual " + Sha(Blob[..300])));
        Assert.That(Directory.GetFileSystemEntries(_dir.Path), Is.Empty, "no asset directory and no partial directories remain");
    }

    [Test]
    public async Task PathTraversalEntryIsRejected()
    {
        var evil = new Dictionary<string, byte[]>(Package) { ["package/../../escape.txt"] = Utf8("x") };
        var cache = new AssetCache(_dir.Path, Manifest(), new TarballSource(evil));
        var e = (await Assert.ThrowsAsync<InvalidDataException>(() => cache.FetchAsync(cache.Manifest.Find("things/demo"))))!;
        Assert.That(e.Message, Does.Contain("path traversal"));
        Assert.That(File.Exists(Path.Combine(Path.GetDirectoryName(_dir.Path)!, "escape.txt")), Is.False);
    }

    [Test]
    public void MissingAssetTellsUserToFetch()
    {
        var cache = new AssetCache(_dir.Path, Manifest(), new TarballSource(Package));
        var e = Assert.Throws<AssetException>(() => cache.PathOf("things/demo/head.bin"))!;
        Assert.That(e.Message, Does.Contain("nq fetch").And.Contain("things/demo"));
    }

    [Test]
    public async Task MissingNpmGivesInstallAdvice()
    {
        string? path = Environment.GetEnvironmentVariable("PATH");
        try
        {
            Environment.SetEnvironmentVariable("PATH", _dir.Path);
            var e = (await Assert.ThrowsAsync<AssetException>(() => new NpmPackageSource().DownloadAsync("x", "1.0.0", _dir.Path, CancellationToken.None)))!;
            Assert.That(e.Message, Does.Contain("npm is not installed").And.Contain("./build.sh deps"));
        }
        finally { Environment.SetEnvironmentVariable("PATH", path); }
    }

    [Test]
    public void EmbeddedManifestListsTheFilesOtherComponentsUse()
    {
        var m = AssetManifest.Embedded;
        var files = m.Assets.SelectMany(a => a.Files.Select(f => $"{a.Name}/{f.Path}")).ToHashSet();
        Assert.That(files, Is.SupersetOf(new[]
        {
            "stories15M/model.bin", "stories15M/tokenizer.bin", "gpt2/encoder.json", "gpt2/vocab.bpe",
            "llama2-tokenizer/tokenizer.json", "datasets/spam-assassin/data.jsonl", "datasets/sotu/data.jsonl",
            "datasets/moby-dick/data.jsonl",
        }));
        Assert.That(m.Find("stories15M").Files[0].Sha256, Is.EqualTo("cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a"));
    }

    [Test]
    public async Task FetchedAssetsVerifyAgainstTheManifest()
    {
        var cache = AssetCache.CreateDefault();
        foreach (var a in cache.Manifest.Assets)
        {
            var mismatches = await cache.VerifyAsync(a);
            Assert.That(mismatches, Is.Empty, $"asset {a.Name}: {string.Join("; ", mismatches)} (run `nq fetch`)");
        }
    }
}
