using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using NativeQuant.Fetch;
using NativeQuant.Generation;
using NativeQuant.Training;

namespace NativeQuant.Cli.Commands;

/// <summary>
/// `nq demo`, the main job: QLoRA (NF4 + double quant base, LoRA on every linear layer, paged 8-bit AdamW) of
/// stories15M as a spam classifier on SpamAssassin with the template "Subject: {subject}\n{body}\nThis e-mail
/// is:{label}" and verbalizer " spam"/" ham"; held-out accuracy before and after, the adapter saved in PEFT
/// format, a few generations, and the wall time. Sized to finish in well under 10 minutes on 2 cores.
/// </summary>
public static class DemoCommand
{
    /// <summary>The demo's budget: 128-token prompts (subject + start of body), 16 x 160 steps over the whole train
    /// split, 200 held-out e-mails. Affordable because the head runs only at the answer positions.</summary>
    public static readonly FinetuneSettings Recipe = new()
    {
        Model = "stories15M", Quant = "nf4", DoubleQuant = true, LoraR = 8, LoraAlpha = 16, TargetModules = "all-linear",
        Task = "classify", Data = "spam-assassin", Optimizer = "paged_adamw_8bit", Lr = 1e-3f, Schedule = "linear", Warmup = 10,
        Steps = 160, BatchSize = 16, SeqLen = 128, EvalSize = 200, TrainSize = 0, Seed = 42,
    };

    public static Command Create()
    {
        var quant = new Option<string>("--quant") { Description = "Base model storage: nf4 (QLoRA, default) or none (fp32 LoRA, for comparison)" };
        var steps = new Option<int>("--steps") { Description = $"Optimizer steps (default {Recipe.Steps})" };
        var output = new Option<string>("--output") { Description = "Run directory (default NQ_HOME/runs/demo-<time>)" };
        var command = new Command("demo", "The main job: QLoRA-tune stories15M into a spam classifier, accuracy before/after, generations") { quant, steps, output };
        CommandRunner.SetAction(command, async (ctx, ct) =>
        {
            var clock = Stopwatch.StartNew();
            var cache = AssetCache.CreateDefault();
            foreach (var name in new[] { "stories15M", "datasets/spam-assassin" })
            {
                var spec = cache.Manifest.Find(name);
                if (await cache.FetchAsync(spec, new Progress<string>(m => ctx.Error.WriteLine($"  {m}")), ct))
                    await ctx.Out.WriteLineAsync($"fetched {spec.Name} into {cache.DirectoryOf(spec)}");
            }
            var settings = Recipe with
            {
                Quant = ctx.Value(quant) ?? Recipe.Quant,
                Steps = ctx.Parse.GetResult(steps) is { Implicit: false } ? ctx.Value(steps) : Recipe.Steps,
                Output = ctx.Value(output) ?? Path.Combine(cache.Root, "runs", $"demo-{DateTime.UtcNow:yyyyMMdd-HHmmss}"),
            };
            using var job = FinetuneJob.Create(settings, settings.Output!);
            ctx.Out.WriteLine(Inv($"QLoRA demo: {settings.Model} {settings.Quant}{(settings.DoubleQuant ? " + double quant" : "")}, LoRA r={settings.LoraR} on {settings.TargetModules}, spam-assassin"));
            var before = job.Evaluator.Evaluate(job.Model);
            ctx.Out.WriteLine(Inv($"held-out accuracy before: {100 * before.Metric:F1}% (loss {before.Loss:F4}, {before.Examples} e-mails)"));
            var after = FinetuneCommand.Run(ctx, job, ct) ?? job.Evaluator.Evaluate(job.Model);
            ctx.Out.WriteLine(Inv($"held-out accuracy after:  {100 * after.Metric:F1}% (loss {after.Loss:F4}, {after.Examples} e-mails)"));
            Generations(ctx, job);
            ctx.Out.WriteLine(Inv($"demo finished in {clock.Elapsed.TotalSeconds:F1} s"));
            return CommandRunner.Ok;
        });
        return command;
    }

    /// <summary>Three held-out prompts with the class the scores pick and the greedy continuation, cut where it
    /// completes an answer (training supervises only the answer, so what would follow it is noise).</summary>
    private static void Generations(CommandContext ctx, FinetuneJob job)
    {
        job.Model.Eval();
        var labels = job.Settings.Verbalizer.Select(p => p[..p.IndexOf('=')]).ToList();
        foreach (var e in job.HeldOut!.Take(3))
        {
            var scores = ClassificationEvaluator.Scores(job.Model, e);
            int predicted = ClassificationEvaluator.Predict(scores);
            var tokens = job.Model.Generate(e.PromptIds, new GenerationOptions(MaxNewTokens: e.CandidateIds.Max(c => c.Length), Temperature: 0f)).Tokens;
            // Stop once the continuation spells an answer (answers differ in token count: " spam" vs " ham").
            int end = Enumerable.Range(1, tokens.Length).FirstOrDefault(k => e.CandidateIds.Any(c => c.AsSpan().SequenceEqual(tokens.AsSpan(0, k))), tokens.Length);
            string prompt = job.Tokenizer.Decode(e.PromptIds);
            string tail = prompt.Length > 60 ? "…" + prompt[^60..] : prompt;
            ctx.Out.WriteLine(Inv($"  {tail.ReplaceLineEndings(" ⏎ ")}{job.Tokenizer.Decode(tokens[..end])}   [predicted {labels[predicted]} p={Math.Exp(scores[predicted]):F2}, true {labels[e.Label]}]"));
        }
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
