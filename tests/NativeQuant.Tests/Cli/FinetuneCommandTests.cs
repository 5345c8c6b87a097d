using System.Text.Json;
using NativeQuant.Cli;
using NativeQuant.NN;
using NativeQuant.Tests.IO;
using NativeQuant.Training;
using NUnit.Framework;

namespace NativeQuant.Tests.Cli;

/// <summary>`nq finetune --quantize-head` (and quantize_head in --config) on stories15M, whose head is tied to the
/// embedding: the head gets a frozen NF4 copy, which changes the logits and so the first step's loss.</summary>
public class FinetuneCommandTests
{
    private TempDir _dir = null!;
    private string _data = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = new TempDir();
        _data = _dir.File("stories.txt");
        File.WriteAllText(_data, string.Join("\n\n", Enumerable.Range(0, 20).Select(i =>
            $"Story {i}. Once upon a time, a little dog named Max found a red ball in the park. He played with it all day and was very happy.")));
    }

    [TearDown] public void TearDown() => _dir.Dispose();

    private FinetuneSettings Settings(bool quantizeHead) => new()
    {
        Model = "stories15M", QuantizeHead = quantizeHead, Task = "causal-lm", Data = _data, Steps = 2, Warmup = 0, BatchSize = 2, SeqLen = 16, EvalSize = 2,
    };

    [Test]
    public void QuantizeHead_GivesTheTiedHeadAQuantizedCopy()
    {
        using (var job = FinetuneJob.Create(Settings(true), _dir.File("with")))
            Assert.That(job.Model.GetSubmodule("lm_head"), Is.InstanceOf<TiedQuantizedHead>()
                .With.Property(nameof(TiedQuantizedHead.Quantized)).InstanceOf<Linear4bit>());
        using (var job = FinetuneJob.Create(Settings(false), _dir.File("without")))
            Assert.That(job.Model.GetSubmodule("lm_head"), Is.InstanceOf<Linear>());
    }

    private async Task<double> FirstLoss(string run, params string[] extra)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        string dir = _dir.File(run);
        int code = await NqCli.RunAsync(["finetune", "--model", "stories15M", "--task", "causal-lm", "--data", _data, "--steps", "2", "--warmup", "0",
                                         "--batch-size", "2", "--seq-len", "16", "--eval-size", "2", "--output", dir, .. extra], output, error);
        Assert.That(code, Is.EqualTo(0), error.ToString());
        string first = File.ReadLines(Path.Combine(dir, MetricsLog.FileName)).First(l => l.Contains("\"loss\""));
        return JsonDocument.Parse(first).RootElement.GetProperty("loss").GetDouble();
    }

    [Test]
    public async Task QuantizeHead_FlagAndConfigKeyTrainTheSameRun_AndDifferFromTheFp32Head()
    {
        string config = _dir.File("run.yaml");
        File.WriteAllText(config, "quantize_head: true\n");
        double flag = await FirstLoss("flag", "--quantize-head");
        double fromConfig = await FirstLoss("config", "--config", config);
        double fp32Head = await FirstLoss("plain");
        Assert.That(fromConfig, Is.EqualTo(flag));
        Assert.That(fp32Head, Is.Not.EqualTo(flag).Within(1e-4));
    }
}
