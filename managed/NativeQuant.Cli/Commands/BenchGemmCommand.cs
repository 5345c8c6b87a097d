using System.CommandLine;
using System.Diagnostics;
using NativeQuant.Interop;
using NativeQuant.Kernels;
using Spectre.Console;

namespace NativeQuant.Cli.Commands;

/// <summary>`nq bench gemm`: times the native matmul kernels on the shapes of bench_gemm.cpp and prints
/// GFLOP/s (GOP/s for int8) with the ratio to the machine floor used in docs/PERFORMANCE.md.</summary>
public static class BenchGemmCommand
{
    // Floors for 2 Zen 5 threads (peak fp32 FMA, bf16 dot, VNNI) as in bench_gemm.cpp.
    private const double FloorF32 = 476, FloorBf16 = 870, FloorVnni = 1880;

    public static Command Create()
    {
        var ms = new Option<string>("--m") { Description = "comma-separated batch rows M", DefaultValueFactory = _ => "1,16,256,512" };
        var nks = new Option<string>("--nk") { Description = "comma-separated NxK weight shapes",
            DefaultValueFactory = _ => "768x768,3072x768,768x3072,4096x4096,11008x4096" };
        var kernels = new Option<string>("--kernels") { Description = "subset of f32,bf16,nf4,nf4-bwd,int8,int8-bwd",
            DefaultValueFactory = _ => "f32,bf16,nf4,nf4-bwd,int8,int8-bwd" };
        var reps = new Option<int>("--reps") { Description = "timed repetitions (median reported)", DefaultValueFactory = _ => 5 };
        var gemm = new Command("gemm", "Time the fp32/bf16/NF4/LLM.int8() matmul kernels") { ms, nks, kernels, reps };
        CommandRunner.SetAction(gemm, (ctx, ct) =>
        {
            var mList = ParseList(ctx.Value(ms)!, "--m").Select(s => int.TryParse(s, out int v) && v >= 1 ? v
                : throw new UserException($"--m: expected positive integers, got '{s}'")).ToArray();
            var shapes = ParseList(ctx.Value(nks)!, "--nk").Select(ParseShape).ToArray();
            var which = ParseList(ctx.Value(kernels)!, "--kernels").ToHashSet();
            int r = ctx.Value(reps);
            if (r < 1) throw new UserException("--reps must be >= 1");
            var table = new Table().Border(TableBorder.Simple);
            table.AddColumns("kernel", "M", "N", "K", "ms", "GFLOP/s", "floor");
            foreach (var (n, k) in shapes)
                foreach (var m in mList)
                    foreach (var (name, floor, run) in Cases(m, n, k, which))
                    {
                        ct.ThrowIfCancellationRequested();
                        double sec = Median(run, r);
                        double g = 2.0 * m * n * k / sec * 1e-9;
                        table.AddRow(name, $"{m}", $"{n}", $"{k}", $"{sec * 1e3:F3}", $"{g:F1}", $"{g / floor:F2}");
                    }
            ctx.Console.Write(table);
            return Task.FromResult(CommandRunner.Ok);
        });
        return new Command("bench", "Micro-benchmarks of the native kernels, generation and training") { gemm, BenchGenerateCommand.Create(), BenchTrainCommand.Create() };
    }

    private static IEnumerable<(string, double, Action)> Cases(int m, int n, int k, HashSet<string> which)
    {
        var rng = new Random(1);
        float[] Rand(long len) { var v = new float[len]; for (long i = 0; i < len; i++) v[i] = (float)(rng.NextDouble() * 2 - 1); return v; }
        var x = Rand((long)m * k);
        var y = new float[(long)m * n];
        if (which.Contains("f32"))
        {
            var w = Rand((long)n * k);
            yield return ("f32", FloorF32, () => MatMul.Gemm(false, true, m, n, k, x, w, y));
        }
        if (which.Contains("bf16"))
        {
            var xb = x.Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray();
            var wb = new ushort[(long)n * k];
            Array.Fill(wb, (ushort)0x3c00);
            yield return ("bf16", FloorBf16, () => MatMul.GemmBf16(false, true, m, n, k, xb, wb, y));
        }
        if (which.Contains("nf4") || which.Contains("nf4-bwd"))
        {
            var (packed, absmax) = Nf4(Rand((long)n * k));
            if (which.Contains("nf4"))
                // fp32 compute: what Linear4bit runs (bf16's vdpbf16ps is slower than fp32 FMA on the reference Xeon).
                yield return ("nf4 (f32)", FloorF32, () => MatMul.Quant4(x, m, packed, absmax, n, k, 64, NqQuant4Type.Nf4, y, NqComputeType.F32));
            var dy = Rand((long)m * n);
            var dx = new float[(long)m * k];
            if (which.Contains("nf4-bwd"))
                yield return ("nf4 bwd (f32)", FloorF32, () => MatMul.Quant4Backward(dy, m, packed, absmax, n, k, 64, NqQuant4Type.Nf4, dx, NqComputeType.F32));
        }
        if (which.Contains("int8") || which.Contains("int8-bwd"))
        {
            var (w8, scb) = Int8(Rand((long)n * k), n, k);
            var xo = (float[])x.Clone();
            for (int c = 0; c < k; c += 1000) for (int i = 0; i < m; i++) xo[(long)i * k + c] = 20f;  // 0.1% outlier columns
            if (which.Contains("int8"))
                yield return ("int8 (LLM.int8)", FloorVnni, () => MatMul.Int8(xo, m, k, w8, scb, n, y));
            var dy = Rand((long)m * n);
            var dx = new float[(long)m * k];
            if (which.Contains("int8-bwd"))
            {
                yield return ("int8 bwd (int8)", FloorVnni, () => MatMul.Int8Backward(dy, m, n, w8, scb, k, dx, NqComputeType.Int8));
                yield return ("int8 bwd (bf16)", FloorBf16, () => MatMul.Int8Backward(dy, m, n, w8, scb, k, dx, NqComputeType.Bf16));
            }
        }
    }

    private static unsafe (byte[], float[]) Nf4(float[] w)
    {
        var packed = new byte[w.Length / 2];
        var absmax = new float[(w.Length + 63) / 64];
        fixed (float* pw = w, pa = absmax)
        fixed (byte* pp = packed)
            Nq.Check(NativeMethods.nq_quant4_quantize(NqQuant4Type.Nf4, pw, w.Length, 64, pp, pa));
        return (packed, absmax);
    }

    private static unsafe (sbyte[], float[]) Int8(float[] w, int n, int k)
    {
        var q = new sbyte[w.Length];
        var scb = new float[n];
        fixed (float* pw = w, ps = scb)
        fixed (sbyte* pq = q)
            Nq.Check(NativeMethods.nq_int8_rowwise_quantize(pw, n, k, pq, ps));
        return (q, scb);
    }

    private static double Median(Action run, int reps)
    {
        run();  // warm-up: page in buffers, grow the native scratch arenas
        var t = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            long start = Stopwatch.GetTimestamp();
            run();
            t[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        Array.Sort(t);
        return t[reps / 2];
    }

    private static string[] ParseList(string text, string option)
    {
        var items = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (items.Length == 0) throw new UserException($"{option} must list at least one value");
        return items;
    }

    private static (int, int) ParseShape(string s)
    {
        var p = s.Split('x');
        if (p.Length != 2 || !int.TryParse(p[0], out int n) || !int.TryParse(p[1], out int k) || n < 1 || k < 1)
            throw new UserException($"--nk: expected NxK like 4096x4096, got '{s}'");
        return (n, k);
    }
}
