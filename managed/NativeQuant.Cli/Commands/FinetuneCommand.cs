using System.CommandLine;
using System.Globalization;
using NativeQuant.Interop;
using NativeQuant.Training;
using Spectre.Console;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace NativeQuant.Cli.Commands;

/// <summary>
/// `nq finetune`: LoRA / QLoRA fine-tuning of a causal LM for classification (template + verbalizer, accuracy by
/// scoring) or language modelling (perplexity). Settings come from flags, or a --config YAML/JSON file with the
/// same keys in snake_case (flags given explicitly override it). Writes metrics.jsonl, checkpoint.safetensors and
/// the PEFT adapter into --output; --resume continues from the checkpoint there.
/// </summary>
public static class FinetuneCommand
{
    private static readonly FinetuneSettings Defaults = new();

    private static readonly Option<string> Config = new("--config") { Description = "YAML or JSON file with settings (keys as the flags, snake_case: lora_r, grad_accum, ...)" };
    private static readonly Option<string> Model = new("--model") { Description = $"llama2.c .bin, HF directory, or stories15M (default {Defaults.Model})" };
    private static readonly Option<string?> Quant = new("--quant") { Description = "nf4 | fp4 | int8 | none (default nf4, or as stored for a pre-quantized checkpoint)" };
    private static readonly Option<bool> DoubleQuant = new("--double-quant") { Description = "Quantize the 4-bit absmax too (default on; --double-quant false to disable)" };
    private static readonly Option<bool> QuantizeHead = ModelInput.QuantizeHeadOption();
    private static readonly Option<bool> PackHead = ModelInput.PackHeadOption();
    private static readonly Option<string?> ComputeDtype = ModelInput.ComputeDtypeOption();
    private static readonly Option<int> LoraR = new("--lora-r") { Description = "LoRA rank (default 8)" };
    private static readonly Option<float> LoraAlpha = new("--lora-alpha") { Description = "LoRA alpha (default 16)" };
    private static readonly Option<float> LoraDropout = new("--lora-dropout") { Description = "LoRA dropout (default 0)" };
    private static readonly Option<string> TargetModules = new("--target-modules") { Description = "Comma-separated module names or all-linear (default q_proj,v_proj)" };
    private static readonly Option<string> Task = new("--task") { Description = "classify | causal-lm (default classify)" };
    private static readonly Option<string> Data = new("--data") { Description = "spam-assassin, moby-dick, sotu, or a .jsonl/.csv/.txt file" };
    private static readonly Option<string> Template = new("--template") { Description = "Prompt template ending with {label}" };
    private static readonly Option<string[]> Verbalizer = new("--verbalizer") { Description = "label=answer, repeatable (default \"spam= spam\" \"ham= ham\")", AllowMultipleArgumentsPerToken = true };
    private static readonly Option<string> Optimizer = new("--optimizer") { Description = $"{string.Join(" | ", Optim.OptimizerFactory.Names)} (default paged_adamw_8bit)" };
    private static readonly Option<float> Lr = new("--lr") { Description = "Peak learning rate (default 1e-3)" };
    private static readonly Option<string> Schedule = new("--schedule") { Description = "constant | linear | cosine (default linear)" };
    private static readonly Option<int> Warmup = new("--warmup") { Description = "Warmup steps (default 10)" };
    private static readonly Option<int> Steps = new("--steps") { Description = "Optimizer steps (default 100)" };
    private static readonly Option<double> Epochs = new("--epochs") { Description = "Epochs instead of --steps" };
    private static readonly Option<int> BatchSize = new("--batch-size") { Description = "Examples per micro-batch (default 4)" };
    private static readonly Option<int> GradAccum = new("--grad-accum") { Description = "Micro-batches per optimizer step (default 1)" };
    private static readonly Option<int> SeqLen = new("--seq-len") { Description = "Max tokens per example (default 128)" };
    private static readonly Option<int> EvalEvery = new("--eval-every") { Description = "Evaluate and checkpoint every N steps (default: at the end)" };
    private static readonly Option<int> EvalSize = new("--eval-size") { Description = "Held-out examples per evaluation (default 200, 0 = all)" };
    private static readonly Option<int> TrainSize = new("--train-size") { Description = "Training examples used (default all)" };
    private static readonly Option<int> Seed = new("--seed") { Description = "Seed for init, splits, order, dropout (default 42)" };
    private static readonly Option<string?> Output = new("--output") { Description = "Run directory (default NQ_HOME/runs/finetune-<time>)" };
    private static readonly Option<bool> Resume = new("--resume") { Description = "Continue from --output's checkpoint" };

    public static Command Create()
    {
        var command = new Command("finetune", "LoRA / QLoRA fine-tuning (classification by template + verbalizer, or causal LM)")
        {
            Config, Model, Quant, DoubleQuant, QuantizeHead, PackHead, ComputeDtype, LoraR, LoraAlpha, LoraDropout, TargetModules, Task, Data, Template, Verbalizer,
            Optimizer, Lr, Schedule, Warmup, Steps, Epochs, BatchSize, GradAccum, SeqLen, EvalEvery, EvalSize, TrainSize, Seed, Output, Resume,
        };
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            var settings = Settings(ctx);
            string runDir = settings.Output ?? Path.Combine(Fetch.AssetCache.CreateDefault().Root, "runs", $"finetune-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
            if (settings.Resume && !File.Exists(Path.Combine(runDir, TrainingCheckpoint.FileName)))
                throw new UserException($"--resume: no {TrainingCheckpoint.FileName} in --output {runDir}");
            using var job = FinetuneJob.Create(settings, runDir);
            Run(ctx, job, ct);
            return System.Threading.Tasks.Task.FromResult(CommandRunner.Ok);
        });
        return command;
    }

    /// <summary>Trains <paramref name="job"/> with a live progress bar (plain lines when output is redirected),
    /// memory reports at start and end, and saves the adapter. Returns the final evaluation.</summary>
    public static EvalResult? Run(CommandContext ctx, FinetuneJob job, CancellationToken ct)
    {
        var trainer = job.Trainer;
        var o = trainer.Options;
        ctx.Out.WriteLine($"run directory: {job.RunDirectory}");
        ctx.Out.WriteLine(job.Peft.TrainableParametersSummary());
        ctx.Out.WriteLine(Inv($"{job.TrainExamples} training examples; {o.MaxSteps} steps x {job.Settings.BatchSize} x {o.GradientAccumulationSteps} (seq-len {job.Settings.SeqLen}); optimizer {o.Optimizer}, lr {o.LearningRate:G3} {o.LrSchedule}, warmup {o.WarmupSteps}; threads {NativeRuntime.Threads}"));
        if (job.Settings.Resume)
        {
            trainer.Resume();
            ctx.Out.WriteLine($"resumed at step {trainer.Step}");
        }
        NativeRuntime.ResetPeak();
        Report(ctx, "memory at start", MemoryReport.Capture(job.Peft, trainer.Optimizer));
        trainer.Evaluated += (step, r) => ctx.Out.WriteLine(Inv($"eval @ step {step}: loss {r.Loss:F4}, {r.MetricName} {Metric(r)}  ({r.Examples} examples)"));
        EvalResult? result;
        bool terminal = ReferenceEquals(ctx.Out, Console.Out) && !Console.IsOutputRedirected;
        if (terminal)
        {
            result = null;
            AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(p =>
                {
                    var task = p.AddTask("training", maxValue: o.MaxSteps);
                    task.Value = trainer.Step;
                    trainer.StepCompleted += m =>
                    {
                        task.Value = m.Step;
                        task.Description = Markup.Escape(Line(m));
                    };
                    result = trainer.Train(ct);
                });
        }
        else
        {
            int every = Math.Max(1, o.MaxSteps / 20);
            trainer.StepCompleted += m => { if (m.Step % every == 0 || m.Step == m.MaxSteps) ctx.Out.WriteLine(Line(m)); };
            result = trainer.Train(ct);
        }
        Report(ctx, "memory at end", MemoryReport.Capture(job.Peft, trainer.Optimizer));
        ctx.Out.WriteLine($"adapter saved to {job.SaveAdapter()} (PEFT format); metrics in {Path.Combine(job.RunDirectory, MetricsLog.FileName)}");
        return result;
    }

    public static string Metric(EvalResult r) => r.MetricName == "accuracy" ? Inv($"{100 * r.Metric:F1}%") : Inv($"{r.Metric:F3}");

    private static string Line(StepMetrics m) =>
        Inv($"step {m.Step}/{m.MaxSteps}  loss {m.Loss:F4}  lr {m.Lr:E2}  |g| {m.GradNorm:F3}  {m.TokensPerSecond:F0} tok/s  epoch {m.Epoch:F2}  mem {MemoryReport.Mib(m.NativeLiveBytes)}  {m.Elapsed:mm\\:ss}");

    private static void Report(CommandContext ctx, string title, MemoryReport r)
    {
        ctx.Out.WriteLine(title + ":");
        foreach (var line in r.Lines()) ctx.Out.WriteLine("  " + line);
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    /// <summary>Defaults, then the --config file, then the flags given explicitly.</summary>
    private static FinetuneSettings Settings(CommandContext ctx)
    {
        var s = new FinetuneSettings();
        if (ctx.Value(Config) is { } path)
        {
            if (!File.Exists(path)) throw new UserException($"--config {path}: file not found");
            try
            {
                s = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build()
                        .Deserialize<FinetuneSettings>(File.ReadAllText(path)) ?? s;
            }
            catch (YamlDotNet.Core.YamlException e)
            {
                throw new UserException($"--config {path}: {e.Message}{(e.InnerException != null ? ": " + e.InnerException.Message : "")}");
            }
        }
        T Get<T>(Option<T> option, T current) => ctx.Parse.GetResult(option) is { Implicit: false } ? ctx.Value(option)! : current;
        return s with
        {
            Model = Get(Model, s.Model), Quant = Get(Quant, s.Quant), DoubleQuant = Get(DoubleQuant, s.DoubleQuant), QuantizeHead = Get(QuantizeHead, s.QuantizeHead),
            ComputeDtype = Get(ComputeDtype, s.ComputeDtype), PackHead = Get(PackHead, s.PackHead),
            LoraR = Get(LoraR, s.LoraR), LoraAlpha = Get(LoraAlpha, s.LoraAlpha), LoraDropout = Get(LoraDropout, s.LoraDropout),
            TargetModules = Get(TargetModules, s.TargetModules), Task = Get(Task, s.Task), Data = Get(Data, s.Data),
            Template = Get(Template, s.Template).Replace("\\n", "\n"), Verbalizer = Get(Verbalizer, s.Verbalizer.ToArray()),
            Optimizer = Get(Optimizer, s.Optimizer), Lr = Get(Lr, s.Lr), Schedule = Get(Schedule, s.Schedule), Warmup = Get(Warmup, s.Warmup),
            Steps = ctx.Parse.GetResult(Epochs) is { Implicit: false } && ctx.Parse.GetResult(Steps) is null ? 0 : Get(Steps, s.Steps),
            Epochs = Get(Epochs, s.Epochs), BatchSize = Get(BatchSize, s.BatchSize), GradAccum = Get(GradAccum, s.GradAccum),
            SeqLen = Get(SeqLen, s.SeqLen), EvalEvery = Get(EvalEvery, s.EvalEvery), EvalSize = Get(EvalSize, s.EvalSize),
            TrainSize = Get(TrainSize, s.TrainSize), Seed = Get(Seed, s.Seed), Output = Get(Output, s.Output), Resume = Get(Resume, s.Resume),
        };
    }
}
