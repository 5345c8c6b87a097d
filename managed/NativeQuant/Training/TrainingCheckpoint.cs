using System.Globalization;
using NativeQuant.IO;
using NativeQuant.NN;
using NativeQuant.Optim;
using NativeQuant.Tensors;

namespace NativeQuant.Training;

/// <summary>
/// Everything needed to continue a run exactly, in ONE safetensors file written atomically (so a failed write
/// leaves the previous checkpoint intact): the trainable parameters ("param.&lt;name&gt;"), the optimizer state,
/// and in the metadata the step, the data position, the dropout draws (the only generator state outside the
/// seed) and the seed itself.
/// </summary>
public sealed record TrainingCheckpoint(long Step, long DataPosition, long DropoutDraws, int Seed)
{
    public const string FileName = "checkpoint.safetensors";
    private const string ParamPrefix = "param.", FormatKey = "nq_checkpoint", FormatVersion = "1";

    public static void Save(string path, TrainingCheckpoint state, IReadOnlyList<(string Name, Parameter Parameter)> trainable, NativeOptimizer optimizer)
    {
        var w = new SafeTensorsWriter();
        w.Metadata[FormatKey] = FormatVersion;
        w.Metadata["step"] = Text(state.Step);
        w.Metadata["data_position"] = Text(state.DataPosition);
        w.Metadata["dropout_draws"] = Text(state.DropoutDraws);
        w.Metadata["seed"] = Text(state.Seed);
        foreach (var (name, p) in trainable)
            w.Add(ParamPrefix + name, TensorDType.F32, p.Shape.ToArray().Select(d => (long)d).ToArray(), p.NumElements * sizeof(float),
                  s => s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(p.Data)));
        optimizer.StateDict().AddTo(w);
        w.Save(path);
    }

    /// <summary>Restores parameters and optimizer state; returns the run position. The parameter set must match
    /// the checkpoint's exactly (names and shapes).</summary>
    public static TrainingCheckpoint Load(string path, IReadOnlyList<(string Name, Parameter Parameter)> trainable, NativeOptimizer optimizer)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--resume: no checkpoint at '{path}'", path);
        using var file = SafeTensorsFile.Open(path);
        if (!file.Metadata.TryGetValue(FormatKey, out var version) || version != FormatVersion)
            throw new InvalidDataException($"{path}: not a NativeQuant training checkpoint (format {FormatVersion})");
        var saved = file.Names.Where(n => n.StartsWith(ParamPrefix, StringComparison.Ordinal)).Select(n => n[ParamPrefix.Length..]).ToHashSet();
        var expected = trainable.Select(t => t.Name).ToHashSet();
        if (!saved.SetEquals(expected))
            throw new InvalidDataException($"{path}: checkpoint trains [{string.Join(", ", saved.Except(expected).Take(3))}...] "
                                           + $"but this run trains [{string.Join(", ", expected.Except(saved).Take(3))}...]; was it made with other LoRA settings?");
        foreach (var (name, p) in trainable)
        {
            file.TryGet(ParamPrefix + name, out var t);
            if (t!.DType != TensorDType.F32 || !t.Shape.SequenceEqual(p.Shape.ToArray().Select(d => (long)d)))
                throw new InvalidDataException($"{path}: '{name}' is {t.DType.SafeTensorsName()}{t.ShapeText}, this run has F32{p.ShapeString}");
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.Data).CopyTo(p.Data);
        }
        optimizer.LoadStateDict(OptimizerStateDict.ReadFrom(file));
        return new TrainingCheckpoint(Number(file, path, "step"), Number(file, path, "data_position"),
                                      Number(file, path, "dropout_draws"), (int)Number(file, path, "seed"));
    }

    private static string Text(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static long Number(SafeTensorsFile file, string path, string key) =>
        file.Metadata.TryGetValue(key, out var s) && long.TryParse(s, CultureInfo.InvariantCulture, out long v) ? v
            : throw new InvalidDataException($"{path}: metadata '{key}' missing or not an integer");
}
