using System.CommandLine;
using NativeQuant.Cli.Commands;

namespace NativeQuant.Cli;

/// <summary>Builds the `nq` root command and runs it (also in-process, with captured output, from tests).</summary>
public static class NqCli
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("nq: NativeQuant, quantized fine-tuning on the CPU");
        root.Add(GlobalOptions.Threads);
        // One line per command; each command lives in Commands/<Name>Command.cs.
        Command[] commands =
        [
            FetchCommand.Create(),
            QuantizeCommand.Create(),
            DequantizeCommand.Create(),
            InfoCommand.Create(),
            GenerateCommand.Create(),
            EvalCommand.Create(),
            MergeCommand.Create(),
            VersionCommand.Create(),
            FinetuneCommand.Create(),
            DemoCommand.Create(),
            BenchGemmCommand.Create(),
        ];
        foreach (var c in commands) root.Add(c);
        return root;
    }

    public static Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null, CancellationToken ct = default)
    {
        var config = new InvocationConfiguration
        {
            Output = output ?? Console.Out,
            Error = error ?? Console.Error,
            // CommandRunner maps exceptions to exit codes and one-line messages itself.
            EnableDefaultExceptionHandler = false,
        };
        return BuildRoot().Parse(args).InvokeAsync(config, ct);
    }
}
