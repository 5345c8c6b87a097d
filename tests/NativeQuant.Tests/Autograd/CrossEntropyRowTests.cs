using NativeQuant.Autograd;
using NUnit.Framework;

namespace NativeQuant.Tests.Autograd;

/// <summary>Cross-entropy rows through the managed API against float64: <see cref="Functional.LogSumExp"/> (managed,
/// blocked exp) and <see cref="Functional.CrossEntropyRowsGrad"/> (nq_cross_entropy_rows, rows split over the
/// SpinPool when large), with rows shorter than a block, of whole blocks, with a long last block and ignored rows.</summary>
public unsafe class CrossEntropyRowTests
{
    // fp32 exp (TensorPrimitives or the native polynomial, a few ulp) of x - max, whose rounding adds |x - max| 2^-24
    // relative; p-weighted over the row that is <= 6e-8 * entropy (< 11 for 50k classes) + ~2e-7 on log Σ.
    private const double NllTolerance = 2e-6;
    // Gradient elements in units of scale: p <= 1 with the relative errors above, p |x - max| <= 1/e.
    private const double GradTolerance = 1e-6;

    [TestCase(5)]
    [TestCase(16)]
    [TestCase(1023)]
    [TestCase(2048)]
    [TestCase(3071)]
    [TestCase(50257)]
    public void RowsMatchFloat64(int v)
    {
        const int rows = 24, ignore = -100;
        var rng = new Random(v);
        var logits = new float[rows * v];
        for (int i = 0; i < logits.Length; i++) logits[i] = (float)(rng.NextDouble() * 40 - 20 + (i / v % 3 - 1) * 1000);
        var targets = Enumerable.Range(0, rows).Select(r => r % 5 == 4 ? ignore : rng.Next(v)).ToArray();
        const float scale = 1f / 19;

        var grad = (float[])logits.Clone();
        var nll = new double[rows];
        Array.Fill(nll, double.NaN);
        fixed (float* g = grad)
        fixed (int* t = targets)
        fixed (double* n = nll)
            Functional.CrossEntropyRowsGrad(g, rows, v, t, ignore, scale, n);

        for (int r = 0; r < rows; r++)
        {
            var row = logits.AsSpan(r * v, v);
            double max = row.ToArray().Max(), sum = 0;
            foreach (float x in row) sum += Math.Exp(x - max);
            double lse = max + Math.Log(sum);
            Assert.That(Functional.LogSumExp(row), Is.EqualTo(lse).Within(NllTolerance), $"LogSumExp row {r}");
            if (targets[r] == ignore)
            {
                Assert.That(nll[r], Is.EqualTo(0.0));
                Assert.That(grad.AsSpan(r * v, v).ToArray(), Is.All.EqualTo(0f), $"ignored row {r}");
                continue;
            }
            Assert.That(nll[r], Is.EqualTo(lse - row[targets[r]]).Within(NllTolerance), $"nll row {r}");
            for (int i = 0; i < v; i++)
            {
                double expected = scale * (Math.Exp(row[i] - max) / sum - (i == targets[r] ? 1 : 0));
                if (Math.Abs(grad[r * v + i] - expected) > GradTolerance * scale)
                    Assert.Fail($"row {r} element {i}: {grad[r * v + i]} vs {expected}");
            }
        }
    }
}
