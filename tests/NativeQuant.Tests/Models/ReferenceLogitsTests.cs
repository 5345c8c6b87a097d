using NativeQuant.Autograd;
using NativeQuant.Models;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Models;

/// <summary>Logits of each model family against dumps from the independent torch implementation.</summary>
public class ReferenceLogitsTests
{
    // fp32 end to end: differences come only from summation order (GEMM blocking, softmax), ~1e-5 on these sizes.
    private const float LogitTolerance = 1e-4f;
    // Mean cross-entropy is an average of logsumexps, as exact as the logits.
    private const double LossTolerance = 1e-4;

    [TestCase("tiny_llama", "tiny_llama")]
    [TestCase("tiny_gpt2", "tiny_gpt2")]
    public void HfDirectory_MatchesTorch(string dumpName, string dir) =>
        CheckModel(Path.Combine(ReferenceDump.Dir, dir), ReferenceDump.Load(dumpName));

    [Test]
    public void Stories15M_MatchesTorch() => CheckModel("stories15M", ReferenceDump.Load("stories15m"));

    private static void CheckModel(string path, ReferenceDump r)
    {
        using var model = CausalLM.Load(path);
        using var scope = new TensorScope();
        using var noGrad = GradMode.NoGrad();
        var ids = Tensor.FromSpan<int>(r.InputIds, [1, r.InputIds.Length], DType.Int32);
        var logits = model.Forward(ids).Data;  // (1,T,V)
        float maxDiff = 0;
        for (int p = 0; p < r.Positions.Length; p++)
            for (int v = 0; v < r.Vocab; v++)
                maxDiff = Math.Max(maxDiff, Math.Abs(logits[r.Positions[p] * r.Vocab + v] - r.Logits[p * r.Vocab + v]));
        TestContext.Out.WriteLine($"{path}: max |logit diff| = {maxDiff:E2}");
        Assert.That(maxDiff, Is.LessThan(LogitTolerance));

        var targets = r.InputIds[1..];
        double nll = Functional.NllPerRow(logits[..((r.InputIds.Length - 1) * r.Vocab)], targets, r.Vocab, int.MinValue, out int n);
        Assert.That(nll / n, Is.EqualTo(r.MeanCrossEntropy).Within(LossTolerance));
    }
}
