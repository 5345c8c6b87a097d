using NativeQuant.NN;
using NativeQuant.Optim;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Optim;

public class OptimizerTests
{
    // The kernel updates in fp32 and the reference in double; over a few steps the difference is a few fp32 ulps of
    // values of order 1 (each step rounds m, v, sqrt, the division and the update once).
    private const double ParityTol = 2e-6;

    private static Parameter Param(float[] values) => new(Tensor.FromArray(values, values.Length));

    private static void SetGrad(Parameter p, float[] g)
    {
        p.Grad?.Dispose();
        p.Grad = TensorScope.Unscoped(() => Tensor.FromArray(g, g.Length));
    }

    /// <summary>AdamW as the header documents it (bitsandbytes' order), in double.</summary>
    private static void ReferenceAdamW(double[] p, double[] m, double[] v, double[] g, double lr, double b1, double b2, double eps, double wd, int t, double scale)
    {
        double c1 = 1 - Math.Pow(b1, t), c2 = Math.Sqrt(1 - Math.Pow(b2, t));
        for (int i = 0; i < p.Length; i++)
        {
            double gi = g[i] * scale;
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            p[i] -= lr * c2 / c1 * m[i] / (Math.Sqrt(v[i]) + eps * c2);
            p[i] *= 1 - lr * wd;
        }
    }

    [TestCase(null)]
    [TestCase(0.5)]
    public void AdamW_MatchesDoubleReference_OverSteps(double? maxNorm)
    {
        var rng = new Random(1);
        const int n = 37;
        float[] init = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        using var p = Param(init);
        using var opt = new AdamW([p], lr: 0.01f, weightDecay: 0.1f) { MaxGradNorm = maxNorm };
        double[] rp = init.Select(x => (double)x).ToArray(), m = new double[n], v = new double[n];
        for (int t = 1; t <= 5; t++)
        {
            float[] g = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            SetGrad(p, g);
            double norm = Math.Sqrt(g.Sum(x => (double)x * x));
            double scale = maxNorm is { } mx && norm > mx ? (float)(mx / (norm + 1e-6)) : 1.0;
            opt.Step();
            ReferenceAdamW(rp, m, v, g.Select(x => (double)x).ToArray(), 0.01, 0.9, 0.999, 1e-8, 0.1, t, scale);
            Assert.That(opt.LastGradNorm, Is.EqualTo(norm).Within(1e-12));
        }
        var got = p.Data.ToArray();
        for (int i = 0; i < n; i++) Assert.That(got[i], Is.EqualTo(rp[i]).Within(ParityTol), $"element {i}");
        Assert.That(opt.StepCount, Is.EqualTo(5));
        p.Grad?.Dispose();
    }

    [Test]
    public void NonFiniteGradient_Throws_NamingTheStep_AndLeavesParametersUntouched()
    {
        using var p = Param([1f, 2f, 3f]);
        using var opt = new AdamW([p]);
        SetGrad(p, [0.1f, 0.1f, 0.1f]);
        opt.Step();
        var before = p.Data.ToArray();
        SetGrad(p, [0.1f, float.NaN, 0.1f]);
        var e = Assert.Throws<NonFiniteGradientException>(() => opt.Step())!;
        Assert.That(e.Step, Is.EqualTo(2));
        Assert.That(e.Message, Does.Contain("step 2"));
        Assert.That(p.Data.ToArray(), Is.EqualTo(before));
        Assert.That(opt.StepCount, Is.EqualTo(1));
        opt.ZeroGrad();
    }

    /// <summary>Minimises ||p - target||² from zero; returns the final loss relative to the first.</summary>
    private static double QuadraticProgress(NativeOptimizer opt, Parameter p, float[] target, int steps)
    {
        double Loss() => p.Data.ToArray().Select((x, i) => (double)(x - target[i]) * (x - target[i])).Sum();
        double first = Loss();
        for (int s = 0; s < steps; s++)
        {
            SetGrad(p, p.Data.ToArray().Select((x, i) => 2 * (x - target[i])).ToArray());
            opt.Step();
        }
        opt.ZeroGrad();
        return Loss() / first;
    }

    [Test]
    public void EightBitOptimizers_ReduceLossOnAQuadratic_WithEightBitState()
    {
        const int n = 8192; // above the 4096-element threshold, so the state is 8-bit
        var target = Enumerable.Range(0, n).Select(i => MathF.Sin(i * 0.1f)).ToArray();
        foreach (var make in new Func<Parameter, NativeOptimizer>[] { p => new AdamW8bit([p], lr: 0.05f, weightDecay: 0f), p => new Lion8bit([p], lr: 0.01f) })
        {
            using var p = Param(new float[n]);
            using var opt = make(p);
            double ratio = QuadraticProgress(opt, p, target, 100);
            Assert.That(ratio, Is.LessThan(0.05), opt.GetType().Name);
            Assert.That(opt.Memory.EightBitTensors, Is.EqualTo(1));
            Assert.That(opt.Memory.ResidentBytes, Is.LessThan(2 * n + 2 * 4 * (n / 256) + 1));
        }
    }

    [Test]
    public void SmallTensors_KeepThirtyTwoBitState_InEightBitOptimizers()
    {
        using var p = Param(new float[100]);
        using var opt = new AdamW8bit([p]);
        SetGrad(p, Enumerable.Repeat(0.5f, 100).ToArray());
        opt.Step();
        Assert.That(opt.Memory, Is.EqualTo(new OptimizerMemory(2 * 100 * 4, 0, 0, 0, 1)));
        opt.ZeroGrad();
    }

    [Test]
    public void PagedOptimizer_IsBitwiseTheUnpagedOne_AndReportsPagedBytes()
    {
        const int n = 10000;
        var target = Enumerable.Range(0, n).Select(i => MathF.Cos(i * 0.01f)).ToArray();
        using var a = Param(new float[n]);
        using var b = Param(new float[n]);
        using var plain = new AdamW8bit([a], lr: 0.01f);
        using var paged = new PagedAdamW8bit([new ParamGroup([b], 0.01f, (0.9f, 0.999f), 1e-8f, 1e-2f)], pagedBudgetBytes: 2 << 20);
        QuadraticProgress(plain, a, target, 10);
        QuadraticProgress(paged, b, target, 10);
        Assert.That(b.Data.ToArray(), Is.EqualTo(a.Data.ToArray()));
        Assert.That(paged.Memory.PagedBytes, Is.GreaterThan(2 * n));
        Assert.That(paged.Memory.ResidentBytes, Is.Zero);
    }

    [Test]
    public void StateDict_RoundTrip_ContinuesBitwise()
    {
        const int n = 5000;
        var target = Enumerable.Range(0, n).Select(i => (float)Math.Sin(i)).ToArray();
        using var a = Param(new float[n]);
        using var optA = new AdamW8bit([a], lr: 0.02f);
        QuadraticProgress(optA, a, target, 6);

        using var b = Param(new float[n]);
        using var optB1 = new AdamW8bit([b], lr: 0.02f);
        QuadraticProgress(optB1, b, target, 3);
        var sd = optB1.StateDict();
        var writer = new NativeQuant.IO.SafeTensorsWriter();
        sd.AddTo(writer);
        string path = Path.Combine(Path.GetTempPath(), $"nq-optim-{Guid.NewGuid():N}.safetensors");
        writer.Save(path);
        try
        {
            using var optB2 = new AdamW8bit([b], lr: 0.02f);
            using (var file = NativeQuant.IO.SafeTensorsFile.Open(path)) optB2.LoadStateDict(OptimizerStateDict.ReadFrom(file));
            Assert.That(optB2.StepCount, Is.EqualTo(3));
            QuadraticProgress(optB2, b, target, 3);
            Assert.That(b.Data.ToArray(), Is.EqualTo(a.Data.ToArray()));
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void BadInput_IsRejected_NamingTheArgument()
    {
        using var p = Param([1f]);
        Assert.That(() => OptimizerFactory.Create("adam_9bit", [p], 1e-3f), Throws.ArgumentException.With.Message.Contains("unknown optimizer 'adam_9bit'"));
        Assert.That(() => new AdamW([p], lr: 0f), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("lr"));
        Assert.That(() => new AdamW([p], lr: -1f), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => OptimizerFactory.Create("adamw", [], 1e-3f), Throws.ArgumentException.With.Message.Contains("no trainable parameters"));
        Assert.That(() => new AdamW([new ParamGroup([p], 1e-3f, (0.9f, 0.999f), 1e-8f, 0f), new ParamGroup([p], 1e-3f, (0.9f, 0.999f), 1e-8f, 0f)]),
                    Throws.ArgumentException.With.Message.Contains("more than one group"));
    }

    [Test]
    public void Schedules_FollowTransformersFormulas()
    {
        using var p = Param([1f]);
        using var opt = new AdamW([p], lr: 1f);
        var lin = LRScheduler.Create("linear", opt, warmupSteps: 2, totalSteps: 6);
        var lrs = new List<float>();
        for (int i = 0; i < 6; i++) { lrs.Add(opt.ParamGroups[0].Lr); lin.Step(); }
        Assert.That(lrs, Is.EqualTo(new[] { 0f, 0.5f, 1f, 0.75f, 0.5f, 0.25f }));
        var cos = LRScheduler.Create("cosine", opt, warmupSteps: 0, totalSteps: 4, lastStep: 2);
        Assert.That(cos.GetLastLr()[0], Is.EqualTo(0.5f).Within(1e-7f));
        Assert.That(() => LRScheduler.Create("step", opt, 0, 4), Throws.ArgumentException.With.Message.Contains("unknown lr schedule"));
    }
}
