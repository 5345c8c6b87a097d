using System.Text.Json.Nodes;
using NativeQuant.Data;
using NativeQuant.Interop;
using NativeQuant.Models.Llama;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Optim;
using NativeQuant.Peft;
using NativeQuant.Training;
using NUnit.Framework;

namespace NativeQuant.Tests.Training;

public class TrainerTests
{
    private const int Vocab = 16;
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("nq-trainer-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static LlamaForCausalLM TinyModel(int seed = 7) =>
        new(new LlamaConfig(Vocab, HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 2, NumAttentionHeads: 4, NumKeyValueHeads: 4,
                            MaxPositionEmbeddings: 32), new RandomWeights(seed));

    /// <summary>A synthetic task: four fixed sequences, the first token picks which (answer-only loss on the rest).</summary>
    private static List<TokenizedExample> CountingTask()
    {
        var examples = new List<TokenizedExample>();
        for (int k = 0; k < 4; k++)
        {
            int[] ids = [1, 2 + k, .. Enumerable.Range(0, 6).Select(i => 6 + (k * 3 + i) % 10)];
            int[] labels = ids.Select((t, i) => i < 2 ? TokenizedExample.IgnoreIndex : t).ToArray();
            examples.Add(new TokenizedExample(ids, labels));
        }
        return examples;
    }

    private static TrainerOptions Options(int steps, string optimizer = "adamw", int accum = 1) => new()
    {
        MaxSteps = steps, Optimizer = optimizer, LearningRate = 1e-2f, LrSchedule = "constant", GradientAccumulationSteps = accum, Seed = 3,
    };

    [Test]
    public void FullFineTune_OnSyntheticTask_ReachesNearZeroLoss()
    {
        using var model = TinyModel();
        var data = CountingTask();
        using var trainer = new Trainer(model, model, new DataLoader(data, 2, seed: 3), new LmEvaluator(data, padId: 0), Options(150), _dir);
        var losses = new List<double>();
        trainer.StepCompleted += m => losses.Add(m.Loss);
        var eval = trainer.Train()!.Value;
        Assert.That(losses[0], Is.GreaterThan(1.5), "starts near ln(16)");
        Assert.That(eval.Loss, Is.LessThan(0.02), "the four sequences are memorised");
        Assert.That(eval.Metric, Is.LessThan(1.03), "perplexity ~ 1");
        var lines = File.ReadAllLines(Path.Combine(_dir, MetricsLog.FileName));
        Assert.That(lines.Count(l => l.Contains("\"loss\"")), Is.EqualTo(150));
        Assert.That(lines.Last(), Does.Contain("eval_perplexity"));
    }

    /// <summary>LoRA (with dropout, so generator state matters) on the tiny model, paged 8-bit AdamW.</summary>
    private static (LlamaForCausalLM Model, PeftModel Peft) TinyLora()
    {
        var model = TinyModel();
        var peft = PeftModel.GetPeftModel(model, new LoraConfig { R = 4, LoraAlpha = 8, LoraDropout = 0.2f, TargetModules = new[] { "q_proj", "v_proj" }, Seed = 5 });
        return (model, peft);
    }

    private List<double> RunLora(int steps, string dir, bool resume, int stopAt = 0)
    {
        var (model, peft) = TinyLora();
        using (peft)
        using (var trainer = new Trainer(peft, model, new DataLoader(CountingTask(), 3, seed: 3), null, Options(steps, "paged_adamw_8bit", accum: 2) with { EvalEvery = 0 }, dir))
        {
            if (resume) trainer.Resume();
            var losses = new List<double>();
            trainer.StepCompleted += m => losses.Add(m.Loss);
            if (stopAt > 0)
            {
                using var cts = new CancellationTokenSource();
                trainer.StepCompleted += m => { if (m.Step == stopAt) { trainer.SaveCheckpoint(); cts.Cancel(); } };
                Assert.Throws<OperationCanceledException>(() => trainer.Train(cts.Token));
            }
            else trainer.Train();
            return losses;
        }
    }

    private static float[] AdapterValues(string dir)
    {
        using var f = NativeQuant.IO.SafeTensorsFile.Open(Path.Combine(dir, TrainingCheckpoint.FileName));
        return f.Names.Where(n => n.StartsWith("param.", StringComparison.Ordinal)).OrderBy(n => n, StringComparer.Ordinal)
                .SelectMany(n => { f.TryGet(n, out var t); return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t!.Data).ToArray(); }).ToArray();
    }

    [Test]
    public void Resume_ReproducesTheUninterruptedRun_Bitwise()
    {
        string full = Path.Combine(_dir, "full"), split = Path.Combine(_dir, "split");
        Directory.CreateDirectory(full);
        Directory.CreateDirectory(split);
        var uninterrupted = RunLora(8, full, resume: false);
        var firstHalf = RunLora(8, split, resume: false, stopAt: 4);
        var secondHalf = RunLora(8, split, resume: true);
        Assert.That(firstHalf.Concat(secondHalf).ToArray(), Is.EqualTo(uninterrupted.ToArray()));
        Assert.That(AdapterValues(split), Is.EqualTo(AdapterValues(full)));
        var logged = File.ReadAllLines(Path.Combine(split, MetricsLog.FileName)).Select(l => JsonNode.Parse(l)!["loss"]!.GetValue<double>()).ToArray();
        Assert.That(logged, Is.EqualTo(uninterrupted.ToArray()), "metrics.jsonl reads as one run");
    }

    [Test]
    public void FailedCheckpointWrite_LeavesThePreviousCheckpointIntact()
    {
        var (model, peft) = TinyLora();
        using (peft)
        using (var trainer = new Trainer(peft, model, new DataLoader(CountingTask(), 2, seed: 1), null, Options(2), _dir))
        {
            trainer.Train();
            byte[] before = File.ReadAllBytes(trainer.CheckpointPath);
            // A parameter that can no longer be read fails the write half-way (tensors before it already streamed).
            trainer.TrainableParameters.OrderBy(t => t.Name, StringComparer.Ordinal).Last().Parameter.Dispose();
            Assert.That(() => trainer.SaveCheckpoint(), Throws.Exception);
            Assert.That(File.ReadAllBytes(trainer.CheckpointPath), Is.EqualTo(before));
            Assert.That(Directory.GetFiles(_dir, ".*tmp*"), Is.Empty, "no temporary file left behind");
        }
    }

    [Test]
    public void NativeMemory_DoesNotGrow_Over100Steps()
    {
        var (model, peft) = TinyLora();
        using (peft)
        using (var trainer = new Trainer(peft, model, new DataLoader(CountingTask(), 2, seed: 1), null, Options(100, "adamw_8bit"), _dir))
        {
            var live = new Dictionary<long, ulong>();
            trainer.StepCompleted += m => live[m.Step] = NativeRuntime.MemoryStats.LiveBytes;
            trainer.Train();
            Assert.That(live[100], Is.EqualTo(live[5]));
        }
    }

    [Test]
    public void GradientAccumulation_EqualsOneLargeBatch()
    {
        // Summation order differs (two half batches vs one), so the updates agree to fp32 rounding, not bitwise.
        const double accumTol = 1e-5;
        double Loss(int batch, int accum)
        {
            using var model = TinyModel();
            using var trainer = new Trainer(model, model, new DataLoader(CountingTask(), batch, seed: 9, shuffle: false), null, Options(3, accum: accum), _dir);
            var losses = new List<double>();
            trainer.StepCompleted += m => losses.Add(m.Loss);
            trainer.Train();
            return losses[^1];
        }
        Assert.That(Loss(2, 2), Is.EqualTo(Loss(4, 1)).Within(accumTol));
    }

    [Test]
    public void BadInput_IsRejected_WithTheSettingNamed()
    {
        Assert.That(() => new DataLoader([], 2, 1), Throws.ArgumentException.With.Message.Contains("empty"));
        Assert.That(() => (Options(10) with { Optimizer = "sgd" }).Validate(), Throws.ArgumentException.With.Message.Contains("unknown optimizer 'sgd'"));
        Assert.That(() => (Options(10) with { LearningRate = 0f }).Validate(), Throws.ArgumentException.With.Message.Contains("lr"));
        Assert.That(() => new FinetuneSettings { LoraR = 0 }.Validate(), Throws.ArgumentException.With.Message.Contains("--lora-r"));
        Assert.That(() => new FinetuneSettings { Lr = -1f }.Validate(), Throws.ArgumentException.With.Message.Contains("--lr"));
        string empty = Path.Combine(_dir, "empty.jsonl");
        File.WriteAllText(empty, "");
        Assert.That(() => FinetuneJob.Create(new FinetuneSettings { Data = empty, Quant = "none" }, _dir),
                    Throws.ArgumentException.With.Message.Contains("no examples"));
    }
}
