using NativeQuant.IO;

namespace NativeQuant.Optim;

/// <summary>
/// A snapshot of an optimizer (torch's optimizer.state_dict()): the class name, each group's current lr, each
/// parameter's step count (by position in the flattened groups) and its state buffers as raw bytes. Stored in a
/// safetensors file as "optimizer.&lt;index&gt;.&lt;state&gt;" tensors plus "optimizer.steps" and "optimizer.lrs", the class and step count in the metadata.
/// </summary>
public sealed record OptimizerStateDict(string Name, long StepCount, float[] Lrs, long[] Steps, IReadOnlyDictionary<string, byte[]> Buffers)
{
    private const string Prefix = "optimizer.", NameKey = "optimizer", StepCountKey = "optimizer_step_count", StepsKey = Prefix + "steps", LrsKey = Prefix + "lrs";

    public static string BufferKey(int index, string state) => $"{index}.{state}";

    public void AddTo(SafeTensorsWriter writer)
    {
        writer.Metadata[NameKey] = Name;
        writer.Metadata[StepCountKey] = StepCount.ToString(System.Globalization.CultureInfo.InvariantCulture);
        writer.AddValues(StepsKey, TensorDType.I64, [Steps.Length], Steps);
        writer.AddValues(LrsKey, TensorDType.F32, [Lrs.Length], Lrs);
        foreach (var (key, bytes) in Buffers)
            writer.Add(Prefix + key, TensorDType.U8, [bytes.Length], bytes);
    }

    /// <summary>Reads what <see cref="AddTo"/> wrote; errors name the file and the missing entry.</summary>
    public static OptimizerStateDict ReadFrom(SafeTensorsFile file)
    {
        if (!file.Metadata.TryGetValue(NameKey, out var name))
            throw new InvalidDataException($"{file.SourcePath}: no optimizer state (metadata '{NameKey}' missing)");
        if (!file.Metadata.TryGetValue(StepCountKey, out var countText) || !long.TryParse(countText, System.Globalization.CultureInfo.InvariantCulture, out long stepCount))
            throw new InvalidDataException($"{file.SourcePath}: metadata '{StepCountKey}' missing or not an integer");
        var steps = Values<long>(file, StepsKey, TensorDType.I64);
        var lrs = Values<float>(file, LrsKey, TensorDType.F32);
        var buffers = new Dictionary<string, byte[]>();
        foreach (var tensorName in file.Names)
            if (tensorName.StartsWith(Prefix, StringComparison.Ordinal) && tensorName != StepsKey && tensorName != LrsKey)
            {
                file.TryGet(tensorName, out var t);
                buffers[tensorName[Prefix.Length..]] = t.Data.ToArray();
            }
        return new OptimizerStateDict(name, stepCount, lrs, steps, buffers);
    }

    private static T[] Values<T>(SafeTensorsFile file, string key, TensorDType dtype) where T : unmanaged
    {
        if (!file.TryGet(key, out var t) || t.DType != dtype)
            throw new InvalidDataException($"{file.SourcePath}: optimizer tensor '{key}' ({dtype.SafeTensorsName()}) missing");
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(t.Data).ToArray();
    }
}
