using NativeQuant.Interop;
using NUnit.Framework;

namespace NativeQuant.Tests.Interop;

public class NativeLibraryResolverTests
{
    private string _tmp = "";

    [SetUp]
    public void CreateTempTree() =>
        _tmp = Directory.CreateTempSubdirectory("nq-resolver-").FullName;

    [TearDown]
    public void DeleteTempTree() => Directory.Delete(_tmp, recursive: true);

    [Test]
    public void BogusOverrideIsReportedNotIgnored()
    {
        var bogus = Path.Combine(_tmp, "no-such-lib.so");
        var e = Assert.Throws<DllNotFoundException>(() => NativeLibraryResolver.Locate(bogus, _tmp, _tmp))!;
        Assert.That(e.Message, Does.Contain(NativeLibraryResolver.OverrideVariable));
        Assert.That(e.Message, Does.Contain(bogus));
    }

    [Test]
    public void MissingLibrarySaysWhatToRunAndWhereItLooked()
    {
        var nested = Directory.CreateDirectory(Path.Combine(_tmp, "a", "b")).FullName;
        var e = Assert.Throws<DllNotFoundException>(() => NativeLibraryResolver.Locate(null, nested, nested))!;
        Assert.That(e.Message, Does.Contain("./build.sh native"));
        Assert.That(e.Message, Does.Contain(Path.Combine(nested, NativeLibraryResolver.FileName)));
        Assert.That(e.Message, Does.Contain(Path.Combine(_tmp, "build", "lib", NativeLibraryResolver.FileName)));
    }

    [Test]
    public void FindsBuildTreeAboveTheBaseDirectory()
    {
        var lib = Touch(Path.Combine(_tmp, "build", "lib", NativeLibraryResolver.FileName));
        var nested = Directory.CreateDirectory(Path.Combine(_tmp, "managed", "bin", "Release")).FullName;
        Assert.That(NativeLibraryResolver.Locate(null, nested, nested), Is.EqualTo(lib));
    }

    [Test]
    public void PrefersOverrideThenAssemblyDirectory()
    {
        var nested = Directory.CreateDirectory(Path.Combine(_tmp, "app")).FullName;
        Touch(Path.Combine(_tmp, "build", "lib", NativeLibraryResolver.FileName));
        var beside = Touch(Path.Combine(nested, NativeLibraryResolver.FileName));
        var chosen = Touch(Path.Combine(_tmp, "custom.so"));
        Assert.That(NativeLibraryResolver.Locate(null, nested, nested), Is.EqualTo(beside));
        Assert.That(NativeLibraryResolver.Locate(chosen, nested, nested), Is.EqualTo(chosen));
    }

    [Test]
    public void DifferentAbiMajorIsRefusedWithRebuildAdvice()
    {
        var major = NativeLibraryResolver.ExpectedAbiMajor + 1;
        var e = Assert.Throws<DllNotFoundException>(() => NativeLibraryResolver.EnsureCompatible(major, 2, 3, "/x/lib.so"))!;
        Assert.That(e.Message, Does.Contain($"{major}.2.3"));
        Assert.That(e.Message, Does.Contain("./build.sh"));
        Assert.DoesNotThrow(() => NativeLibraryResolver.EnsureCompatible(NativeLibraryResolver.ExpectedAbiMajor, 99, 0, "/x"));
    }

    private static string Touch(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, []);
        return path;
    }
}
