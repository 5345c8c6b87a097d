using System.CommandLine;
using NativeQuant.Fetch;
using Spectre.Console;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq fetch [--list] [ASSET...]`: download, verify and install the assets (models, tokenizers, datasets).</summary>
public static class FetchCommand
{
    public static Command Create()
    {
        var list = new Option<bool>("--list") { Description = "Show each asset's status instead of fetching" };
        var names = new Argument<string[]>("assets") { Description = "Assets to fetch (default: all)", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("fetch", "Fetch the model, tokenizer and dataset assets into NQ_HOME (verified by SHA-256)") { list, names };
        CommandRunner.SetAction(command, async (ctx, ct) =>
        {
            var cache = AssetCache.CreateDefault();
            var requested = ctx.Value(names) is { Length: > 0 } n ? n.Select(cache.Manifest.Find).ToList() : cache.Manifest.Assets.ToList();
            if (ctx.Value(list))
            {
                var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(cache.Root));
                table.AddColumns("asset", "package", "status", "files");
                foreach (var a in requested)
                {
                    var state = await cache.StateAsync(a, ct);
                    string shown = state switch { AssetState.Ok => "[green]ok[/]", AssetState.Corrupt => "[red]corrupt[/]", _ => "[yellow]missing[/]" };
                    table.AddRow(Markup.Escape(a.Name), Markup.Escape(a.PackageSpec), shown, Markup.Escape(string.Join(", ", a.Files.Select(f => f.Path))));
                }
                ctx.Console.Write(table);
                return CommandRunner.Ok;
            }
            var progress = new Progress<string>(m => ctx.Error.WriteLine($"  {m}"));
            foreach (var a in requested)
            {
                bool fetched = await cache.FetchAsync(a, progress, ct);
                await ctx.Out.WriteLineAsync($"{a.Name}: {(fetched ? "fetched and verified" : "already present, verified")} ({cache.DirectoryOf(a)})");
            }
            return CommandRunner.Ok;
        });
        return command;
    }
}
