using System.Diagnostics;
using System.Runtime.CompilerServices;
using NativeQuant.Interop;
using NUnit.Framework;

namespace NativeQuant.Tests.Interop;

public class GeneratedBindingsTests
{
    // Generous: one libclang parse of the header takes well under a second; this only stops a hang.
    private const int GeneratorTimeoutMs = 120_000;

    [Test]
    public void CheckedInBindingsEqualAFreshGeneration()
    {
        var root = RepoRoot();
        var generator = Path.Combine(root, "managed", "NativeQuant.Interop", "Generator", "generate_bindings.py");
        // Debian's interpreter carries python3-clang; a pyenv `python3` on PATH would not.
        var python = Environment.GetEnvironmentVariable("NQ_PYTHON")
                     ?? (OperatingSystem.IsWindows() ? "python" : "/usr/bin/python3");
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(generator);
        start.ArgumentList.Add("--check");
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (Exception e)
        {
            Assert.Fail($"cannot run the bindings generator with '{python}' ({e.Message}); run ./build.sh deps " +
                        "to install python3 and python3-clang, or set NQ_PYTHON");
            return;
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            Assert.That(process.WaitForExit(GeneratorTimeoutMs), Is.True, "generator did not finish");
            var output = stdout.Result + stderr.Result;
            if (output.Contains("module 'clang'", StringComparison.Ordinal))
                Assert.Fail("python3-clang is missing: run ./build.sh deps.\n" + output);
            Assert.That(process.ExitCode, Is.EqualTo(0),
                "Generated/NativeMethods.g.cs is not what the generator produces from nativequant.h " +
                "(run ./build.sh bindings):\n" + output);
        }
    }

    [Test]
    public void EveryStatusMapsToTheNativeStatusName()
    {
        // Enum members are the C names minus the common prefix, PascalCased; the library's own
        // nq_status_name proves each managed value still means the same C enumerator.
        foreach (var status in Enum.GetValues<NqStatus>())
            Assert.That(Nq.StatusName(status), Is.EqualTo("NQ_" + ScreamingSnake(status.ToString())));
    }

    private static string ScreamingSnake(string pascal) =>
        string.Concat(pascal.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : char.ToUpperInvariant(c).ToString()));

    internal static string RepoRoot([CallerFilePath] string thisFile = "")
    {
        // The test may run from any artifacts directory, so anchor on this source file's location.
        for (var dir = Path.GetDirectoryName(thisFile); dir is not null; dir = Path.GetDirectoryName(dir))
        {
            if (File.Exists(Path.Combine(dir, "native", "include", "nativequant.h")))
                return dir;
        }
        throw new DirectoryNotFoundException($"no repository root (native/include/nativequant.h) above {thisFile}");
    }
}
