using NativeQuant.Autograd;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Autograd;

public class LayerNormReferenceTests
{
    // The fused AVX-512 LayerNorm backward sums each row in its own order (and rows are split over threads): its
    // gradients are held to a float64 reference, at GPT-2's width plus a tail, with rows far from zero mean.
    [TestCase(1, 768)]
    [TestCase(300, 771)]
    public void ForwardAndGradients_MatchFloat64(int rows, int c)
    {
        var rng = new Random(5);
        float[] Rand(int n, double scale, double offset) =>
            Enumerable.Range(0, n).Select(_ => (float)(offset + scale * (rng.NextDouble() * 2 - 1))).ToArray();
        var xs = Rand(rows * c, 3, 2);
        var ws = Rand(c, 1, 1);
        var bs = Rand(c, 0.5, 0);
        var gs = Rand(rows * c, 1, 0);
        using var scope = new TensorScope();
        var x = Tensor.FromArray(xs, rows, c);
        var w = Tensor.FromArray(ws, c);
        var b = Tensor.FromArray(bs, c);
        x.RequiresGrad = w.RequiresGrad = b.RequiresGrad = true;
        var y = Functional.LayerNorm(x, w, b, 1e-5f);
        y.Backward(Tensor.FromArray(gs, rows, c));

        var yRef = new double[rows * c];
        var dxRef = new double[rows * c];
        var dwRef = new double[c];
        var dbRef = new double[c];
        for (int r = 0; r < rows; r++)
        {
            var row = Enumerable.Range(0, c).Select(j => (double)xs[r * c + j]).ToArray();
            double mu = row.Average(), rstd = 1 / Math.Sqrt(row.Select(v => (v - mu) * (v - mu)).Average() + 1e-5);
            var xhat = row.Select(v => (v - mu) * rstd).ToArray();
            var gxhat = Enumerable.Range(0, c).Select(j => (double)gs[r * c + j] * ws[j]).ToArray();
            double m1 = gxhat.Average(), m2 = Enumerable.Range(0, c).Sum(j => gxhat[j] * xhat[j]) / c;
            for (int j = 0; j < c; j++)
            {
                yRef[r * c + j] = xhat[j] * ws[j] + bs[j];
                dxRef[r * c + j] = rstd * (gxhat[j] - m1 - xhat[j] * m2);
                dwRef[j] += gs[r * c + j] * xhat[j];
                dbRef[j] += gs[r * c + j];
            }
        }
        AssertClose(y.Data.ToArray(), yRef, 2e-6, "y");
        AssertClose(x.Grad!.ToArray(), dxRef, 2e-5, "dx");
        AssertClose(w.Grad!.ToArray(), dwRef, 2e-5 * Math.Sqrt(rows), "dw");
        AssertClose(b.Grad!.ToArray(), dbRef, 2e-6 * Math.Sqrt(rows), "db");
        foreach (var t in new[] { x, w, b }) { t.Grad!.Dispose(); t.Grad = null; }
    }

    // |actual - expected| <= tol * (1 + |expected|)
    private static void AssertClose(float[] actual, double[] expected, double tol, string what)
    {
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(tol * (1 + Math.Abs(expected[i]))), $"{what}[{i}]");
    }
}
