using System.CommandLine;
using NativeQuant.Fetch;
using NativeQuant.Interop;
using Spectre.Console;

namespace NativeQuant.Cli;

/// <summary>Everything a command body needs: parsed values, the output writers and a Spectre console over stdout.</summary>
public sealed class CommandContext(ParseResult parse)
{
    public ParseResult Parse { get; } = parse;
    public TextWriter Out { get; } = parse.InvocationConfiguration.Output;
    public TextWriter Error { get; } = parse.InvocationConfiguration.Error;

    /// <summary>Spectre console writing to <see cref="Out"/>; colours only on a real terminal.</summary>
    public IAnsiConsole Console { get; } = CreateConsole(parse.InvocationConfiguration.Output);

    /// <summary>Redirected output (files, tests, CI logs) gets a fixed wide layout instead of 80 columns.</summary>
    private const int RedirectedWidth = 160;

    private static IAnsiConsole CreateConsole(TextWriter output)
    {
        bool terminal = ReferenceEquals(output, System.Console.Out) && !System.Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        if (!terminal) console.Profile.Width = RedirectedWidth;
        return console;
    }

    public T? Value<T>(Option<T> option) => Parse.GetValue(option);
    public T? Value<T>(Argument<T> argument) => Parse.GetValue(argument);
}

/// <summary>A failure caused by the user's input (bad argument, missing file); exit code 1.</summary>
public sealed class UserException(string message) : Exception(message);

/// <summary>
/// Runs a command body with the global options applied and turns failures into exit codes: 0 ok; 1 user error
/// (bad argument or input file, missing asset) with one line on stderr; 2 internal error with details.
/// </summary>
public static class CommandRunner
{
    public const int Ok = 0, UserError = 1, InternalError = 2;

    public static void SetAction(Command command, Func<CommandContext, CancellationToken, Task<int>> body) =>
        command.SetAction((parse, ct) => RunAsync(parse, body, ct));

    private static async Task<int> RunAsync(ParseResult parse, Func<CommandContext, CancellationToken, Task<int>> body, CancellationToken ct)
    {
        var error = parse.InvocationConfiguration.Error;
        try
        {
            if (parse.GetValue(GlobalOptions.Threads) is int threads)
            {
                if (threads < 1) throw new UserException($"--threads {threads}: expected a positive number of threads");
                NativeRuntime.Threads = threads;
            }
            return await body(new CommandContext(parse), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (IsUserError(e))
        {
            await error.WriteLineAsync($"nq: error: {e.Message}").ConfigureAwait(false);
            return UserError;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("nq: cancelled").ConfigureAwait(false);
            return UserError;
        }
        catch (Exception e)
        {
            await error.WriteLineAsync($"nq: internal error (please report): {e}").ConfigureAwait(false);
            return InternalError;
        }
    }

    private static bool IsUserError(Exception e) => e is UserException or AssetException or ArgumentException
        or FileNotFoundException or DirectoryNotFoundException or InvalidDataException or UnauthorizedAccessException
        || (e is NativeQuantException n && n.Status is NqStatus.ErrInvalidArgument or NqStatus.ErrShape or NqStatus.ErrNonFinite)
        || (e is DllNotFoundException);
}
