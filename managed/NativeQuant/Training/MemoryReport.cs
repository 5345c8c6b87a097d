using System.Globalization;
using NativeQuant.Interop;
using NativeQuant.NN;
using NativeQuant.Optim;
using NativeQuant.Tensors;

namespace NativeQuant.Training;

/// <summary>
/// Where a training run's memory goes: frozen and trainable weights by storage format, the adapter's parameters,
/// their gradients, optimizer state (resident and paged), the native high-water mark (which includes the
/// activations of the largest step) and the process's peak resident set (VmHWM, everything: managed heap,
/// mapped files, native buffers).
/// </summary>
public sealed record MemoryReport(
    IReadOnlyDictionary<string, long> WeightBytesByFormat,
    long TrainableParameters,
    long GradientBytes,
    OptimizerMemory Optimizer,
    long NativeLiveBytes,
    long NativePeakBytes,
    long PeakRssBytes)
{
    public static MemoryReport Capture(Module model, NativeOptimizer? optimizer)
    {
        var byFormat = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var m in WithTiedQuantizedHeads(model.NamedModules().Select(nm => nm.Item2)))
        {
            string quantized = m switch
            {
                Linear4bit q => q.Type.ToString().ToLowerInvariant() + (q.DoubleQuant ? "+dq" : ""),
                Linear8bitLt => "int8",
                _ => "",
            };
            foreach (var (name, t) in m.NamedBuffers().Where(b => !b.Name.Contains('.')).Select(b => (b.Name, b.Buffer))
                         .Concat(DirectParameters(m)))
            {
                if (!seen.Add(t)) continue;
                string key = quantized.Length > 0 && t is not Parameter ? quantized : t.DType.ToString().ToLowerInvariant();
                byFormat[key] = byFormat.GetValueOrDefault(key) + t.NumElements * t.DType.SizeInBytes();
            }
            if (m is Linear { PackedHeadBytes: > 0 } head)  // the frozen head's packed copy (Linear.PackedHead)
            {
                string key = head.PackedHeadCompute == NqComputeType.Int8 ? "int8-head-pack" : "f16-head-pack";
                byFormat[key] = byFormat.GetValueOrDefault(key) + head.PackedHeadBytes;
            }
        }
        long trainable = 0, grads = 0;
        foreach (var p in model.Parameters())
        {
            if (!p.RequiresGrad) continue;
            trainable += p.NumElements;
            grads += p.NumElements * sizeof(float); // materialised by every backward (grads are freed after each step)
        }
        var native = NativeRuntime.MemoryStats;
        return new MemoryReport(byFormat, trainable, grads, optimizer?.Memory ?? default,
                                (long)native.LiveBytes, (long)native.PeakBytes, PeakRss());
    }

    // A tied quantized head's copy is not a registered child (its only parameter is the embedding), yet it is resident.
    private static IEnumerable<Module> WithTiedQuantizedHeads(IEnumerable<Module> modules) =>
        modules.SelectMany(m => m is TiedQuantizedHead h ? [m, h.Quantized] : new[] { m });

    private static IEnumerable<(string, Tensor)> DirectParameters(Module m) =>
        m.NamedParameters().Where(p => !p.Name.Contains('.')).Select(p => (p.Name, (Tensor)p.Parameter));

    /// <summary>VmHWM from /proc/self/status (0 where there is no procfs).</summary>
    public static long PeakRss()
    {
        const string path = "/proc/self/status";
        if (!File.Exists(path)) return 0;
        foreach (var line in File.ReadLines(path))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        return 0;
    }

    public IEnumerable<string> Lines()
    {
        yield return "weights: " + string.Join(", ", WeightBytesByFormat.Select(kv => $"{kv.Key} {Mib(kv.Value)}"));
        yield return $"trainable params: {TrainableParameters:N0} ({Mib(TrainableParameters * 4)}), gradients {Mib(GradientBytes)}";
        yield return $"optimizer state: resident {Mib(Optimizer.ResidentBytes)}, paged {Mib(Optimizer.PagedBytes)} "
                     + $"({Mib(Optimizer.PagedOutBytes)} on disk now); {Optimizer.EightBitTensors} tensors 8-bit, {Optimizer.FullPrecisionTensors} 32-bit";
        yield return $"native: live {Mib(NativeLiveBytes)}, peak {Mib(NativePeakBytes)} (peak - weights - state = activations of the largest step); peak RSS {Mib(PeakRssBytes)}";
    }

    public static string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:F2} MiB");
}
