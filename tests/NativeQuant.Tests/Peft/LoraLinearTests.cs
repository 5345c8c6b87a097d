using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.NN;
using NativeQuant.Peft;
using NativeQuant.Tensors;
using NativeQuant.Tests.Autograd;
using NUnit.Framework;

namespace NativeQuant.Tests.Peft;

public class LoraLinearTests
{
    // fp32 GEMM vs a double-precision dot product of 16 terms: a few ulps of values of order 1.
    private const float Fp32Tol = 1e-5f;

    // |x| >= 1e-6 for every column of a random normal input: all columns are outliers (0 would disable outliers).
    private const float OutlierEverything = 1e-6f;

    private static LoraConfig Config(LoraInit init = LoraInit.Random, bool rslora = false) =>
        new() { R = 4, LoraAlpha = 8, TargetModules = new[] { "q_proj" }, InitLoraWeights = init, UseRslora = rslora, Seed = 3 };

    private static Linear NewLinear(int inF, int outF, int seed) => new(inF, outF, bias: true, new Random(seed));

    [TestCase(false)]
    [TestCase(true)]
    public void Forward_EqualsExplicitFormula(bool rslora)
    {
        using var scope = new TensorScope();
        var config = Config(rslora: rslora);
        using var layer = new LoraLinear(NewLinear(16, 12, 1), config, new Random(2), 0);
        var x = Tensor.RandN([3, 16], new Random(4));
        var y = layer.Forward(x).ToArray();

        var w = ((Linear)layer.BaseLayer).Weight.ToArray();
        var bias = ((Linear)layer.BaseLayer).Bias!.ToArray();
        var a = layer.LoraA.ToArray();
        var b = layer.LoraB.ToArray();
        var xs = x.ToArray();
        double scaling = rslora ? 8 / Math.Sqrt(4) : 8.0 / 4;
        Assert.That(layer.Scaling, Is.EqualTo((float)scaling));
        for (int m = 0; m < 3; m++)
            for (int o = 0; o < 12; o++)
            {
                double baseOut = bias[o], lora = 0;
                for (int i = 0; i < 16; i++) baseOut += w[o * 16 + i] * (double)xs[m * 16 + i];
                for (int k = 0; k < 4; k++)
                {
                    double ax = 0;
                    for (int i = 0; i < 16; i++) ax += a[k * 16 + i] * (double)xs[m * 16 + i];
                    lora += b[o * 4 + k] * ax;
                }
                Assert.That(y[m * 12 + o], Is.EqualTo(baseOut + scaling * lora).Within(Fp32Tol), $"y[{m},{o}]");
            }
    }

    [TestCase(LoraInit.Default)]
    [TestCase(LoraInit.Gaussian)]
    public void ZeroInitializedB_GivesBaseOutputExactly(LoraInit init)
    {
        using var scope = new TensorScope();
        var baseLayer = NewLinear(16, 12, 1);
        var x = Tensor.RandN([3, 16], new Random(4));
        var expected = baseLayer.Forward(x).ToArray();
        using var layer = new LoraLinear(baseLayer, Config(init), new Random(2), 0);
        Assert.That(layer.LoraB.ToArray(), Is.All.EqualTo(0f));
        Assert.That(layer.LoraA.ToArray(), Has.Some.Not.EqualTo(0f));
        Assert.That(layer.Forward(x).ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void DefaultInit_IsKaimingUniformWithBoundOneOverSqrtFanIn()
    {
        using var layer = new LoraLinear(NewLinear(64, 8, 1), Config(LoraInit.Default) with { R = 16 }, new Random(2), 0);
        var a = layer.LoraA.ToArray();
        float bound = 1f / MathF.Sqrt(64);
        Assert.That(a, Is.All.InRange(-bound, bound));
        // 1024 U(-b, b) draws: the extremes come within 2% of the bound (fails if the bound were e.g. √3 larger or smaller).
        Assert.That(a.Max(), Is.GreaterThan(0.98f * bound));
        Assert.That(a.Min(), Is.LessThan(-0.98f * bound));
    }

    /// <summary>Frozen bases of each storage kind. int8 uses a tiny outlier threshold, which sends every input
    /// column down the fp32 outlier path: the forward is then smooth in x (int8 rounding of activations would make
    /// finite differences step), while the weight stays int8 — what the chain rule through it needs.</summary>
    private static Module<Tensor, Tensor> FrozenBase(string kind, int seed)
    {
        using var w = TensorScope.Unscoped(() => Tensor.RandN([16, 16], new Random(seed), 0.3f));
        return kind switch
        {
            "fp32" => new Linear(new Parameter(w, requiresGrad: false)),
            "nf4" => new Linear4bit(w, null, NqQuant4Type.Nf4, 64, doubleQuant: true),
            "int8" => new Linear8bitLt(w, null, threshold: OutlierEverything),
            _ => throw new ArgumentException(kind),
        };
    }

    [TestCase("fp32")]
    [TestCase("nf4")]
    [TestCase("int8")]
    public void Gradients_OfLoraWeights_ThroughFrozenLayers_MatchFiniteDifferences(string kind)
    {
        using var first = new LoraLinear(FrozenBase(kind, 10), Config(), new Random(20), 0);
        using var second = new LoraLinear(FrozenBase(kind, 11), Config(), new Random(21), 0);
        using var xScope = new TensorScope();
        var x = Tensor.RandN([2, 3, 16], new Random(5));
        // first's gradients pass backward through second's frozen (quantized) weight.
        GradCheck.Check(_ => second.Forward(Functional.Silu(first.Forward(x))), first.LoraA, first.LoraB, second.LoraA, second.LoraB);
    }

    [Test]
    public void BaseWeights_GetNoGradient()
    {
        using var scope = new TensorScope();
        var baseLayer = NewLinear(16, 12, 1);
        baseLayer.RequiresGrad(false);
        using var layer = new LoraLinear(baseLayer, Config(), new Random(2), 0);
        Functional.Sum(layer.Forward(Tensor.RandN([3, 16], new Random(4)))).Backward();
        Assert.That(baseLayer.Weight.Grad, Is.Null);
        Assert.That(layer.LoraA.Grad, Is.Not.Null);
        Assert.That(layer.LoraB.Grad, Is.Not.Null);
    }

    [Test]
    public void ParameterNames_FollowPeftInMemoryLayout()
    {
        using var layer = new LoraLinear(NewLinear(16, 12, 1), Config(), new Random(2), 0);
        Assert.That(layer.NamedParameters().Select(p => p.Name),
            Is.EqualTo(new[] { "base_layer.weight", "base_layer.bias", "lora_A.default.weight", "lora_B.default.weight" }));
        Assert.That(layer.LoraA.ShapeString, Is.EqualTo("[4, 16]"));
        Assert.That(layer.LoraB.ShapeString, Is.EqualTo("[12, 4]"));
    }
}
