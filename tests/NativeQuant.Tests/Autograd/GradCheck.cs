using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Autograd;

/// <summary>Compares an op's backward with central finite differences of a random projection of its output.</summary>
internal static class GradCheck
{
    // fp32 forward: step 1e-2 keeps rounding noise (~1e-6 / 2e-2) well under the tolerance while the O(eps²)
    // truncation error of central differences stays ~1e-4 for these smooth ops.
    public const float Eps = 1e-2f;
    // Absolute + relative tolerance between analytic and numeric gradients (covers both error sources above).
    public const double Atol = 2e-3, Rtol = 2e-2;

    /// <summary>inputs: fp32 leaves that require grad. f builds the output from them.</summary>
    public static void Check(Func<Tensor[], Tensor> f, params Tensor[] inputs) => Check(f, Eps, Atol, Rtol, inputs);

    /// <summary>Same with another step and tolerances (a forward with coarser rounding than fp32).</summary>
    public static void Check(Func<Tensor[], Tensor> f, float eps, double atol, double rtol, params Tensor[] inputs)
    {
        using var scope = new TensorScope();
        var rng = new Random(7);
        var outShape = f(inputs).Shape.ToArray();
        var proj = Tensor.RandN(outShape, rng);
        foreach (var x in inputs) { x.Grad?.Dispose(); x.Grad = null; }
        var y = f(inputs);
        y.Backward(proj);
        foreach (var x in inputs)
        {
            if (!x.RequiresGrad) continue;
            Assert.That(x.Grad, Is.Not.Null, "no gradient reached an input that requires grad");
            var analytic = x.Grad!.ToArray();
            var data = x.Data;
            for (int i = 0; i < data.Length; i++)
            {
                float saved = data[i];
                data[i] = saved + eps;
                double plus = Loss(f, inputs, proj);
                data[i] = saved - eps;
                double minus = Loss(f, inputs, proj);
                data[i] = saved;
                double numeric = (plus - minus) / (2 * eps);
                Assert.That(analytic[i], Is.EqualTo(numeric).Within(atol + rtol * Math.Abs(numeric)),
                    $"d/dx[{i}] of input {x.ShapeString}: analytic {analytic[i]}, numeric {numeric}");
            }
        }
    }

    private static double Loss(Func<Tensor[], Tensor> f, Tensor[] inputs, Tensor proj)
    {
        using var scope = new TensorScope();
        using var noGrad = NativeQuant.Autograd.GradMode.NoGrad();
        var y = f(inputs).Data;
        var p = proj.Data;
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += (double)y[i] * p[i];
        return s;
    }

    public static Tensor Leaf(Random rng, params int[] shape)
    {
        var t = TensorScope.Unscoped(() => Tensor.RandN(shape, rng));
        t.RequiresGrad = true;
        return t;
    }
}
