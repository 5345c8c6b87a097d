using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Models;
using NativeQuant.Models.Gpt2;
using NativeQuant.NN;
using NativeQuant.Optim;
using NativeQuant.Peft;
using NativeQuant.Tensors;
using NativeQuant.Training;

namespace NativeQuant.Cli.Commands;

/// <summary>
/// `nq bench train`: tokens/s and memory of a QLoRA training step (forward, causal-LM loss on every position,
/// backward, paged 8-bit AdamW) on a random-weight GPT-2 built and quantized in memory, or on a loaded model, as in
/// docs/PERFORMANCE.md "Training". Peak RSS is the process's VmHWM, so run it in a fresh process.
/// </summary>
public static class BenchTrainCommand
{
    /// <summary>GPT-2 shapes (HF config fields) buildable without a checkpoint.</summary>
    private static readonly Dictionary<string, Gpt2Config> Archs = new(StringComparer.OrdinalIgnoreCase)
    {
        ["gpt2-small"] = new(VocabSize: 50257, NPositions: 1024, NEmbd: 768, NLayer: 12, NHead: 12),
        ["gpt2-tiny"] = new(VocabSize: 512, NPositions: 128, NEmbd: 64, NLayer: 2, NHead: 2),
    };

    public static Command Create()
    {
        var arch = new Option<string>("--arch") { Description = $"random-weight model to build: {string.Join(", ", Archs.Keys)} (default gpt2-small unless --model)" };
        var model = new Option<string>("--model") { Description = "load this model instead of --arch: llama2.c .bin, HF directory, or stories15M" };
        var quant = new Option<string>("--quant") { Description = "nf4 | fp4 | int8 | none", DefaultValueFactory = _ => "nf4" };
        var doubleQuant = new Option<bool>("--double-quant") { Description = "quantize the 4-bit absmax too" };
        var computeDtype = ModelInput.ComputeDtypeOption();
        var packHead = ModelInput.PackHeadOption();
        var targets = new Option<string>("--target-modules") { Description = "comma-separated LoRA targets (default c_attn for GPT-2, q_proj,v_proj otherwise)" };
        var rank = new Option<int>("--lora-r") { Description = "LoRA rank", DefaultValueFactory = _ => 8 };
        var checkpointing = new Option<bool>("--gradient-checkpointing") { Description = "recompute blocks in backward (QLoRA's default)", DefaultValueFactory = _ => true };
        var seq = new Option<int>("--seq") { Description = "tokens per sequence", DefaultValueFactory = _ => 256 };
        var batch = new Option<int>("--batch") { Description = "sequences per step", DefaultValueFactory = _ => 1 };
        var warmup = new Option<int>("--warmup") { Description = "untimed steps first (JIT, page-in, scratch arenas)", DefaultValueFactory = _ => 2 };
        var steps = new Option<int>("--steps") { Description = "timed steps (medians reported)", DefaultValueFactory = _ => 5 };
        var seed = new Option<int>("--seed") { Description = "seed of the random weights and token ids", DefaultValueFactory = _ => 42 };
        var json = new Option<bool>("--json") { Description = "print one JSON object instead of text" };
        var command = new Command("train", "Time QLoRA training steps (tok/s per phase, peak RSS, memory breakdown); run in a fresh process")
            { arch, model, quant, doubleQuant, computeDtype, packHead, targets, rank, checkpointing, seq, batch, warmup, steps, seed, json };
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            int t = ctx.Value(seq), b = ctx.Value(batch), nWarm = ctx.Value(warmup), nSteps = ctx.Value(steps);
            if (t < 2 || b < 1 || nWarm < 0 || nSteps < 1) throw new UserException("--seq must be >= 2, --batch and --steps >= 1, --warmup >= 0");
            if (ctx.Value(arch) != null && ctx.Value(model) != null) throw new UserException("--arch and --model are exclusive");
            var qc = new QuantConfig(ParseQuant(ctx.Value(quant)!), ctx.Value(doubleQuant), ComputeDtype: ModelInput.ComputeDtype(ctx, computeDtype),
                                     PackHead: ctx.Value(packHead));
            string name = ctx.Value(model) ?? ctx.Value(arch) ?? "gpt2-small";

            using var lm = Build(ctx.Value(model), ctx.Value(arch) ?? "gpt2-small", qc, ctx.Value(seed));
            long buildPeakRss = MemoryReport.PeakRss();
            if (t > lm.MaxPositions) throw new UserException($"--seq {t} exceeds the model's context of {lm.MaxPositions}");
            KbitTraining.PrepareForKbitTraining(lm, ctx.Value(checkpointing));
            string targetText = ctx.Value(targets) ?? (lm is Gpt2LMHeadModel ? "c_attn" : "q_proj,v_proj");
            using var peft = PeftModel.GetPeftModel(lm, new LoraConfig
            {
                R = ctx.Value(rank), LoraAlpha = 2 * ctx.Value(rank), Seed = ctx.Value(seed),
                TargetModules = TargetModules.FromNames(targetText.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)),
            });
            using var optimizer = new PagedAdamW8bit(peft.Parameters().Where(p => p.RequiresGrad), lr: 1e-4f);
            lm.Train();

            var (ids, positions, targetIds) = CausalBatch(b, t, lm.VocabSize, ctx.Value(seed));
            using (ids) using (positions) using (targetIds)
            {
                NativeRuntime.ResetPeak();
                var phases = new List<(double Fwd, double Bwd, double Opt, double Cpu, float Loss)>();
                for (int i = 0; i < nWarm + nSteps; i++)
                {
                    ct.ThrowIfCancellationRequested();
                    var s = Step(lm, optimizer, ids, positions, targetIds);
                    if (i >= nWarm) phases.Add(s);
                }
                var mem = MemoryReport.Capture(peft, optimizer);
                double fwd = Median(phases.Select(p => p.Fwd)), bwd = Median(phases.Select(p => p.Bwd)),
                       opt = Median(phases.Select(p => p.Opt)), step = Median(phases.Select(p => p.Fwd + p.Bwd + p.Opt)),
                       cpu = Median(phases.Select(p => p.Cpu));
                double tps = (double)b * t / step;
                // CPU time over the threads' wall time: what the cores spent waiting for each other (or for a neighbour
                // on a shared host) shows as the gap to 1.
                double utilisation = cpu / (NativeRuntime.Threads * step);
                string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "";
                if (ctx.Value(json))
                {
                    ctx.Out.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                    {
                        ["model"] = name, ["quant"] = ctx.Value(quant)!, ["double_quant"] = qc.DoubleQuant, ["compute_dtype"] = qc.Compute.ToString(), ["pack_head"] = qc.PackHead, ["target_modules"] = targetText,
                        ["lora_r"] = ctx.Value(rank), ["gradient_checkpointing"] = lm.GradientCheckpointing, ["seq"] = t, ["batch"] = b,
                        ["steps"] = nSteps, ["threads"] = NativeRuntime.Threads,
                        ["tokens_per_second"] = tps, ["step_seconds"] = step, ["forward_seconds"] = fwd, ["backward_seconds"] = bwd,
                        ["optimizer_seconds"] = opt, ["step_cpu_seconds"] = cpu, ["utilisation"] = utilisation, ["loss"] = phases[^1].Loss,
                        ["peak_rss_bytes"] = mem.PeakRssBytes, ["build_peak_rss_bytes"] = buildPeakRss, ["native_peak_bytes"] = mem.NativePeakBytes,
                        ["native_live_bytes"] = mem.NativeLiveBytes, ["weight_bytes"] = mem.WeightBytesByFormat,
                        ["trainable_parameters"] = mem.TrainableParameters, ["gradient_bytes"] = mem.GradientBytes,
                        ["optimizer_resident_bytes"] = mem.Optimizer.ResidentBytes, ["optimizer_paged_bytes"] = mem.Optimizer.PagedBytes,
                        ["load_average"] = load,
                    }));
                    return Task.FromResult(CommandRunner.Ok);
                }
                ctx.Out.WriteLine(Inv($"{name} {ctx.Value(quant)}{(qc.DoubleQuant ? "+dq" : "")} ({qc.Compute} compute), LoRA r={ctx.Value(rank)} on {targetText}, seq {t} x batch {b}, checkpointing {lm.GradientCheckpointing}, {NativeRuntime.Threads} threads"));
                ctx.Out.WriteLine(Inv($"median of {nSteps} steps: {tps:F0} tok/s; step {step * 1e3:F0} ms = forward {fwd * 1e3:F0} + backward {bwd * 1e3:F0} + optimizer {opt * 1e3:F1} ms; loss {phases[^1].Loss:F4}"));
                ctx.Out.WriteLine(Inv($"process CPU time per step {cpu * 1e3:F0} ms (user + system, all threads: compare this on a shared machine), {utilisation:P0} of {NativeRuntime.Threads} threads' wall time"));
                ctx.Out.WriteLine($"peak RSS {MemoryReport.Mib(mem.PeakRssBytes)} (after building the model: {MemoryReport.Mib(buildPeakRss)})");
                foreach (var line in mem.Lines()) ctx.Out.WriteLine("  " + line);
                if (load.Length > 0) ctx.Out.WriteLine($"load average: {load}");
            }
            return Task.FromResult(CommandRunner.Ok);
        });
        return command;
    }

    private static QuantType ParseQuant(string text)
    {
        try { return QuantConfig.Parse(text); }
        catch (ArgumentException e) { throw new UserException("--quant: " + e.Message); }
    }

    /// <summary>A loaded model, or a random GPT-2 whose linear layers are quantized as they are drawn (so the fp32
    /// weights are never all resident: see build_peak_rss_bytes).</summary>
    private static CausalLM Build(string? model, string arch, QuantConfig quant, int seed)
    {
        if (model != null) return CausalLM.Load(model, quant);
        if (!Archs.TryGetValue(arch, out var config)) throw new UserException($"--arch: unknown '{arch}' (expected {string.Join(", ", Archs.Keys)})");
        return new Gpt2LMHeadModel(config, new RandomWeights(seed, quant: quant));
    }

    /// <summary>Random ids (B, T) and the causal-LM loss on every position but the last: logits at b*T+t predict ids[b, t+1].</summary>
    private static (Tensor Ids, Tensor Positions, Tensor Targets) CausalBatch(int b, int t, int vocab, int seed)
    {
        var rng = new Random(seed);
        var ids = Enumerable.Range(0, b * t).Select(_ => rng.Next(vocab)).ToArray();
        var positions = new List<int>();
        var targets = new List<int>();
        for (int i = 0; i < b; i++)
            for (int j = 0; j + 1 < t; j++)
            {
                positions.Add(i * t + j);
                targets.Add(ids[i * t + j + 1]);
            }
        return TensorScope.Unscoped(() => (Tensor.FromArray(ids, b, t), Tensor.FromArray(positions.ToArray(), positions.Count),
                                           Tensor.FromArray(targets.ToArray(), targets.Count)));
    }

    private static (double Fwd, double Bwd, double Opt, double Cpu, float Loss) Step(CausalLM lm, NativeOptimizer optimizer, Tensor ids, Tensor positions, Tensor targets)
    {
        using var scope = new TensorScope();
        var process = Process.GetCurrentProcess();
        var cpuStart = process.TotalProcessorTime;
        long start = Stopwatch.GetTimestamp();
        var loss = lm.Loss(ids, positions, targets);
        float value = loss.Item();
        long forwarded = Stopwatch.GetTimestamp();
        loss.Backward();
        long backwarded = Stopwatch.GetTimestamp();
        optimizer.Step();
        optimizer.ZeroGrad();
        long stepped = Stopwatch.GetTimestamp();
        process.Refresh();
        double cpu = (process.TotalProcessorTime - cpuStart).TotalSeconds;
        double S(long a, long z) => (double)(z - a) / Stopwatch.Frequency;
        return (S(start, forwarded), S(forwarded, backwarded), S(backwarded, stepped), cpu, value);
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v[v.Length / 2];
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
