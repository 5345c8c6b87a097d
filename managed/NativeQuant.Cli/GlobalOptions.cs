using System.CommandLine;

namespace NativeQuant.Cli;

/// <summary>Options every command accepts.</summary>
public static class GlobalOptions
{
    public static readonly Option<int?> Threads = new("--threads")
    {
        Description = "Threads for the native kernels (default: OMP_NUM_THREADS or all cores)",
        Recursive = true,
    };
}
