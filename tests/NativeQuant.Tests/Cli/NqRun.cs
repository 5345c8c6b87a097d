using NativeQuant.Cli;

namespace NativeQuant.Tests.Cli;

/// <summary>Runs the `nq` command line in-process and captures its exit code and both streams.</summary>
internal static class NqRun
{
    public static async Task<(int Code, string Out, string Err)> Invoke(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = await NqCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
