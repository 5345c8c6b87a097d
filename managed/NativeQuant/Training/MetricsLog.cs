using System.Text.Json;
using System.Text.Json.Nodes;
using NativeQuant.IO;

namespace NativeQuant.Training;

/// <summary>
/// metrics.jsonl in the run directory: one JSON object per line ({"step":…,"loss":…} or {"step":…,"eval_loss":…}),
/// flushed as written so a crashed run keeps its curve. On resume, lines logged after the checkpoint's step (by
/// the interrupted run) are dropped first, so the file reads as one uninterrupted run.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    public const string FileName = "metrics.jsonl";
    private readonly StreamWriter _writer;

    private MetricsLog(string path, bool append)
    {
        Path = path;
        _writer = new StreamWriter(new FileStream(path, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    public string Path { get; }

    public static MetricsLog Create(string runDirectory) => new(System.IO.Path.Combine(runDirectory, FileName), append: false);

    /// <summary>Opens for appending after dropping records with step &gt; <paramref name="resumedStep"/>.</summary>
    public static MetricsLog Resume(string runDirectory, long resumedStep)
    {
        string path = System.IO.Path.Combine(runDirectory, FileName);
        if (File.Exists(path))
        {
            var kept = File.ReadLines(path).Where(l => l.Length > 0 && StepOf(l, path) <= resumedStep).ToList();
            AtomicFile.Write(path, s =>
            {
                using var w = new StreamWriter(s, leaveOpen: true);
                foreach (var l in kept) w.WriteLine(l);
            });
        }
        return new MetricsLog(path, append: true);
    }

    private static long StepOf(string line, string path) =>
        JsonNode.Parse(line)?["step"]?.GetValue<long>() ?? throw new InvalidDataException($"{path}: a line has no \"step\": {line}");

    public void Write(IReadOnlyDictionary<string, object> record) => _writer.WriteLine(JsonSerializer.Serialize(record));

    public void Dispose() => _writer.Dispose();
}
