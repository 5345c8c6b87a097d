using System.CommandLine;
using System.Reflection;
using NativeQuant.Interop;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq version`: library ABI version, CPU features, dispatch level and threads.</summary>
public static class VersionCommand
{
    public static Command Create()
    {
        var command = new Command("version", "Show library version, instruction set and threads");
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            var asm = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";
            ctx.Out.WriteLine($"nq {asm}");
            ctx.Out.WriteLine($"native library: {NativeRuntime.Version} (ABI)");
            ctx.Out.WriteLine($"isa: {NativeRuntime.Isa} (supported: {NativeRuntime.SupportedIsa})");
            ctx.Out.WriteLine($"cpu features: {NativeRuntime.CpuFeatures}");
            ctx.Out.WriteLine($"threads: {NativeRuntime.Threads}");
            return Task.FromResult(CommandRunner.Ok);
        });
        return command;
    }
}
