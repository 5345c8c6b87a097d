using System.Numerics.Tensors;
using NativeQuant.Autograd;
using NUnit.Framework;

namespace NativeQuant.Tests.Autograd;

/// <summary>A logit row's exp and sum run a block at a time (in L1): the same bits as the whole-row passes (max,
/// subtract, exp, then the double sum) for rows shorter than a block, of whole blocks, and with a long last block.</summary>
public class CrossEntropyRowTests
{
    [TestCase(5)]
    [TestCase(16)]
    [TestCase(1023)]
    [TestCase(2048)]
    [TestCase(3071)]
    [TestCase(50257)]
    public void BlockedExpSum_EqualsWholeRowPassesBitwise(int v)
    {
        var rng = new Random(v);
        var row = Enumerable.Range(0, v).Select(_ => (float)(rng.NextDouble() * 40 - 20)).ToArray();
        int t = v / 3;
        const float scale = 1f / 255;

        float max = TensorPrimitives.Max(row);
        var exp = new float[v];
        TensorPrimitives.Subtract(row, max, exp);
        TensorPrimitives.Exp(exp, exp);
        double sum = Functional.SumInDouble(exp);
        var expected = new float[v];
        TensorPrimitives.Multiply(exp, (float)(scale / sum), expected);
        expected[t] -= scale;

        Assert.That(Functional.LogSumExp(row), Is.EqualTo(max + Math.Log(sum)));
        var actual = (float[])row.Clone();
        double nll = Functional.CrossEntropyGradInPlace(actual, t, scale);
        Assert.That(nll, Is.EqualTo(max + Math.Log(sum) - row[t]));
        Assert.That(actual, Is.EqualTo(expected));
    }
}
