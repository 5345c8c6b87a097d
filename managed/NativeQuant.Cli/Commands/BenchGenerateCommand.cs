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
        var command = new Command("generate", "Time prefill and decode of a model (tok/s and ratio to the bandwidth floor)")
            { model, quants, quantizeHead, decode, prompt, reps };
        CommandRunner.SetAction(command, (ctx, ct) =>
        {
            int nDecode = ctx.Value(decode), nPrompt = ctx.Value(prompt), r = ctx.Value(reps);
            if (nDecode < 2 || nPrompt < 1 || r < 1) throw new UserException("--decode-tokens must be >= 2, --prompt-tokens and --reps >= 1");
            double measured = ReadBandwidthGBs();
            var table = new Table().Border(TableBorder.Simple);
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
                table.AddRow(ctx.Value(quantizeHead) && q != "none" ? q + " + head" : q, $"{bytes / 1e6:F1}", $"{prefillTps:F0}", $"{decodeTps:F0}", $"{floor:F0}", $"{decodeTps / floor:F2}",
                             $"{floorMeasured:F0}", $"{decodeTps / floorMeasured:F2}");
            }
            ctx.Console.Write(table);
            if (File.Exists("/proc/loadavg")) ctx.Out.WriteLine($"load average: {File.ReadAllText("/proc/loadavg").Trim()}");
            return Task.FromResult(CommandRunner.Ok);
        });
        return command;
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
        Array.Sort(v);
        return v[reps / 2];
    }
}
