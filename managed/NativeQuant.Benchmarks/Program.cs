using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace NativeQuant.Benchmarks;

/// <summary>
/// Managed-side benchmarks (BenchmarkDotNet): what a .NET caller pays on top of the native kernels
/// (argument checks, pinning, P/Invoke), and the managed parts of the engine (tokenizers, the decode loop).
/// Native kernels have their own Google Benchmark programs (native/bench); `nq bench` times whole jobs.
///   dotnet run -c Release --project managed/NativeQuant.Benchmarks -- --filter '*'          (all)
///   dotnet run -c Release --project managed/NativeQuant.Benchmarks -- --filter '*Tokenizer*' --job dry --inProcess
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        // In-process (no generated project to restore and build; the native library is resolved exactly as for
        // `nq`) and short (3 warm-ups, 3 iterations) unless the command line picks jobs (then add --inProcess).
        var config = DefaultConfig.Instance
            .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).AsDefault());
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
    }
}
