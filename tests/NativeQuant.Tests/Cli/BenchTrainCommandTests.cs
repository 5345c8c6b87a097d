using System.Text.Json;
using NativeQuant.Cli;
using NUnit.Framework;

namespace NativeQuant.Tests.Cli;

public class BenchTrainCommandTests
{
    [Test]
    public async Task TinyGpt2ReportsThroughputAndMemory()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = await NqCli.RunAsync(["bench", "train", "--arch", "gpt2-tiny", "--seq", "16", "--warmup", "0", "--steps", "2", "--json"], output, error);
        Assert.That(code, Is.Zero, error.ToString());
        using var report = JsonDocument.Parse(output.ToString());
        var root = report.RootElement;
        Assert.That(root.GetProperty("target_modules").GetString(), Is.EqualTo("c_attn"));
        foreach (var field in new[] { "tokens_per_second", "step_seconds", "forward_seconds", "backward_seconds", "optimizer_seconds",
                                      "peak_rss_bytes", "native_peak_bytes", "trainable_parameters", "gradient_bytes" })
            Assert.That(root.GetProperty(field).GetDouble(), Is.Positive, field);
        // CPU time / (threads x wall): 0 would mean no CPU was measured; a little above 1 is timer granularity.
        Assert.That(root.GetProperty("utilisation").GetDouble(), Is.InRange(0.01, 1.5));
        Assert.That(root.GetProperty("pack_head").GetBoolean(), Is.True);
        Assert.That(root.GetProperty("weight_bytes").GetProperty("nf4").GetInt64(), Is.Positive, "c_attn, c_proj and the MLP are NF4");
        Assert.That(float.IsFinite(root.GetProperty("loss").GetSingle()), Is.True);
        Assert.That(root.GetProperty("compute_dtype").GetString(), Is.EqualTo("F32"));
    }

    [Test]
    public async Task ComputeDtypeF16_RunsAndIsReported_UnknownIsRejected()
    {
        string[] args = ["bench", "train", "--arch", "gpt2-tiny", "--seq", "16", "--warmup", "0", "--steps", "1", "--json", "--compute-dtype"];
        using var output = new StringWriter();
        using var error = new StringWriter();
        Assert.That(await NqCli.RunAsync([.. args, "f16"], output, error), Is.Zero, error.ToString());
        var root = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.That(root.GetProperty("compute_dtype").GetString(), Is.EqualTo("F16"));
        Assert.That(float.IsFinite(root.GetProperty("loss").GetSingle()), Is.True);
        using var badOut = new StringWriter();
        using var badErr = new StringWriter();
        Assert.That(await NqCli.RunAsync([.. args, "bf8"], badOut, badErr), Is.EqualTo(1));
        Assert.That(badErr.ToString(), Does.Contain("--compute-dtype"));
    }
}
