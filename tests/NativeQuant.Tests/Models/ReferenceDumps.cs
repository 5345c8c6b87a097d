using System.Text.Json;

namespace NativeQuant.Tests.Models;

/// <summary>Reads tests/reference/&lt;name&gt;_reference.json and its raw little-endian fp32 logits dump
/// (logits_shape rows at logits_positions), produced by the independent torch implementation.</summary>
internal sealed record ReferenceDump(int[] InputIds, int[] Positions, float[] Logits, int Vocab, double MeanCrossEntropy, JsonElement Json)
{
    public static string Dir => Path.Combine(FindRepoRoot(), "tests", "reference");

    public static ReferenceDump Load(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, name + "_reference.json")));
        var j = doc.RootElement.Clone();
        int[] Ints(string f) => j.GetProperty(f).EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var bytes = File.ReadAllBytes(Path.Combine(Dir, name + "_logits.bin"));
        var logits = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, logits, 0, bytes.Length);
        return new ReferenceDump(Ints("input_ids"), Ints("logits_positions"), logits, j.GetProperty("vocab_size").GetInt32(),
                                 j.GetProperty("mean_cross_entropy").GetDouble(), j);
    }

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (Directory.Exists(Path.Combine(d.FullName, "tests", "reference"))) return d.FullName;
        return "/work/main";
    }
}
