using System.CommandLine;
using System.Diagnostics;
using System.Numerics.Tensors;
using Tensor = NativeQuant.Tensors.Tensor;
using NativeQuant.Autograd;
using NativeQuant.Generation;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Tensors;
using Spectre.Console;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq bench generate`: prefill and greedy-decode throughput of a model per weight format, with decode
/// compared to its memory-bandwidth floor (weight bytes streamed per token / <see cref="BandwidthGBs"/>), as in
/// docs/PERFORMANCE.md "Inference".</summary>
public static class BenchGenerateCommand
{
    // Sustained DRAM read bandwidth of the reference machine (2 Zen 5 threads), the floor used in docs/PERFORMANCE.md.
    private const double BandwidthGBs = 40;

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "llama2.c .bin, HF model directory, or stories15M", DefaultValueFactory = _ => "stories15M" };
        var quants = new Option<string>("--quant") { Description = "comma-separated subset of none,int8,nf4,fp4", DefaultValueFactory = _ => "none,int8,nf4" };
        var quantizeHead = ModelInput.QuantizeHeadOption();
        var decode = new Option<int>("--decode-tokens") { Description = "tokens decoded per run", DefaultValueFactory = _ => 200 };
        var prompt = new Option<int>("--prompt-tokens") { Description = "prompt length of the prefill run", DefaultValueFactory = _ => 256 };
        var reps = new Option<int>("--reps") { Description = "timed repetitions (median reported)", DefaultValueFactory = _ => 5 };
        var breakdown = new Option<bool>("--breakdown") { Description = "also split a decode step into head product, body linears and the rest (medians)" };
        var command = new Command("generate", "Time prefill and decode of a model (tok/s and ratio to the bandwidth floor)")
            { model, quants, quantizeHead, decode, prompt, reps, breakdown };
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            int nDecode = ctx.Value(decode), nPrompt = ctx.Value(prompt), r = ctx.Value(reps);
            if (nDecode < 2 || nPrompt < 1 || r < 1) throw new UserException("--decode-tokens must be >= 2, --prompt-tokens and --reps >= 1");
            double measured = ReadBandwidthGBs();
            var table = new Table().Border(TableBorder.Simple);
            var split = new List<string>();
            table.AddColumns("weights", "MB/token", "prefill tok/s", "decode tok/s", "floor tok/s", "decode/floor",
                             $"floor @{measured:F0} GB/s", "decode/measured");
            foreach (var q in ctx.Value(quants)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                ct.ThrowIfCancellationRequested();
                using var lm = CausalLM.Load(ctx.Value(model)!, new QuantConfig(QuantConfig.Parse(q), DoubleQuant: true, QuantizeHead: ctx.Value(quantizeHead)));
                lm.Eval();
                var ids = new int[Math.Min(nPrompt, lm.MaxPositions - 1)];
                for (int i = 0; i < ids.Length; i++) ids[i] = 1 + i % (lm.VocabSize - 1);
                // No stop tokens: every run decodes exactly nDecode tokens.
                var decodeOptions = new GenerationOptions(Math.Min(nDecode, lm.MaxPositions - 1), Temperature: 0f) { StopTokens = [] };
                var prefillOptions = new GenerationOptions(1, Temperature: 0f) { StopTokens = [] };
                double decodeTps = Median(r, () => lm.Generate([1], decodeOptions).DecodeTokensPerSecond);
                double prefillTps = Median(r, () => lm.Generate(ids, prefillOptions).PrefillTokensPerSecond);
                double bytes = WeightBytesPerToken(lm);
                double floor = BandwidthGBs * 1e9 / bytes;
                double floorMeasured = measured * 1e9 / bytes;
                string label = ctx.Value(quantizeHead) && q != "none" ? q + " + head" : q;
                if (ctx.Value(breakdown))
                {
                    var (step, head, body) = Breakdown(lm, ids, nDecode);
                    split.Add($"{label}: decode step {step:F0} us = head {head:F0} + body linears {body:F0} + rest {step - head - body:F0} " +
                              "(norms, RoPE, attention, sampling, hand-offs)");
                }
                table.AddRow(label, $"{bytes / 1e6:F1}", $"{prefillTps:F0}", $"{decodeTps:F0}", $"{floor:F0}", $"{decodeTps / floor:F2}",
                             $"{floorMeasured:F0}", $"{decodeTps / floorMeasured:F2}");
            }
            ctx.Console.Write(table);
            foreach (var line in split) ctx.Out.WriteLine(line);
            if (File.Exists("/proc/loadavg")) ctx.Out.WriteLine($"load average: {File.ReadAllText("/proc/loadavg").Trim()}");
            return Task.FromResult(CommandRunner.Ok);
        });
        return command;
    }

    // Medians, in microseconds, of a greedy decode step after (a prefix of) the prompt, of the head product, and of the
    // sum of every other linear product timed one module at a time on a decode-shaped input (as a decode step runs it).
    private static (double Step, double Head, double Body) Breakdown(CausalLM lm, int[] ids, int decode)
    {
        int steps = Math.Min(decode, lm.MaxPositions - 2);
        var prompt = ids[..Math.Max(1, Math.Min(ids.Length, lm.MaxPositions - steps))];
        using var noGrad = GradMode.NoGrad();
        using var scope = new TensorScope();
        using var cache = lm.CreateCache(1, prompt.Length + steps);
        using (new TensorScope()) lm.Forward(Tensor.FromSpan<int>(prompt, [1, prompt.Length], DType.Int32), cache, lastPositionOnly: true);
        var sampler = new Sampler(lm.VocabSize, new GenerationOptions(1, Temperature: 0f));
        var logits = new float[lm.VocabSize];
        var next = new int[1];
        var times = new double[steps - 1];
        for (int i = 0; i < times.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            using (new TensorScope())
                lm.Forward(Tensor.FromSpan<int>(next, [1, 1], DType.Int32), cache, lastPositionOnly: true).Data.CopyTo(logits);
            next[0] = sampler.Next(logits);
            times[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }
        double head = 0, body = 0;
        foreach (var (name, module) in lm.NamedModules())
        {
            int inFeatures = module switch { Linear l => l.InFeatures, Conv1D c => c.Weight.Size(0), IQuantizedWeight w => w.InFeatures, TiedQuantizedHead h => h.Weight.Size(1), _ => 0 };
            if (inFeatures == 0 || module is not Module<Tensor, Tensor> m) continue;
            var x = Tensor.RandN([1, 1, inFeatures], new Random(1));
            double t = MedianMicroseconds(200, () => { using var s = new TensorScope(); m.Forward(x); });
            if (name == "lm_head") head = t;
            else body += t;
        }
        return (MedianOf(times), head, body);
    }

    private static double MedianMicroseconds(int reps, Action run) => Median(reps, () =>
    {
        long start = Stopwatch.GetTimestamp();
        run();
        return Stopwatch.GetElapsedTime(start).TotalMicroseconds;
    });

    private static double MedianOf(double[] v)
    {
        Array.Sort(v);
        return v[v.Length / 2];
    }

    // Every linear weight (and the head; a tied quantized head through its copy) is read once per decoded token;
    // embeddings (one row), norms and the KV cache are small next to them for short contexts.
    private static long WeightBytesPerToken(CausalLM lm)
    {
        long bytes = 0;
        foreach (var (_, module) in lm.NamedModules())
        {
            var m = module is TiedQuantizedHead head ? head.Quantized : module;
            if (m is Linear l) bytes += Bytes(l.Weight) + (l.Bias == null ? 0 : Bytes(l.Bias));
            else if (m is Conv1D c) bytes += Bytes(c.Weight) + Bytes(c.Bias);
            else if (m is IQuantizedWeight)
                foreach (var (_, b) in m.NamedBuffers()) bytes += Bytes(b);
        }
        return bytes;
    }

    // What this machine streams right now (best of 20 parallel sums over 256 MiB, enough to reach tier-1 code):
    // on a shared VM it can be far below the nominal figure, and decode can only be judged against it.
    private static double ReadBandwidthGBs()
    {
        using var buffer = Tensor.Full([64 << 20], 1f);
        int parts = 8 * Environment.ProcessorCount;
        int chunk = (int)(buffer.NumElements / parts);
        double best = double.MaxValue;
        for (int r = 0; r < 20; r++)
        {
            long start = Stopwatch.GetTimestamp();
            Parallel.For(0, parts, p => TensorPrimitives.Sum(buffer.Data.Slice(p * chunk, chunk)));
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return buffer.NumElements * 4.0 / best / 1e9;
    }

    private static long Bytes(Tensor t) => t.NumElements * t.DType.SizeInBytes();

    private static double Median(int reps, Func<double> run)
    {
        run();  // warm-up: JIT, page-in, native scratch arenas
        var v = new double[reps];
        for (int i = 0; i < reps; i++) v[i] = run();
        return MedianOf(v);
    }
}
