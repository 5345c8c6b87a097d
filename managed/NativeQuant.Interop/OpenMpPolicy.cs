using System.Runtime.InteropServices;

namespace NativeQuant.Interop;

/// <summary>Chooses libgomp's wait policy before the native library (and so libgomp) loads.</summary>
/// <remarks>libgomp's default lets idle workers spin for ~300,000 pauses after every parallel
/// region. A managed host interleaves kernels with its own (often parallel) work, so the spinning
/// workers steal the cores that work needs: measured 4-8 ms per small kernel call on 2 vCPUs.
/// Passive waiting costs a futex wake-up (microseconds) per region instead. libgomp reads the
/// setting only once, from the C environment, so it must be set there (Environment.
/// SetEnvironmentVariable does not reach it) and before the first load. A user's own
/// OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.</remarks>
internal static partial class OpenMpPolicy
{
    internal static void ApplyDefault()
    {
        if (!OperatingSystem.IsLinux())
            return;
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null ||
            Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") is not null)
            return;
        SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0);
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
