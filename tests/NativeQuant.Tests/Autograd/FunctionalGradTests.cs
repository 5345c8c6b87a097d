using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.NN;
using NativeQuant.Tensors;
using NUnit.Framework;
using static NativeQuant.Tests.Autograd.GradCheck;

namespace NativeQuant.Tests.Autograd;

public partial class FunctionalGradTests
{
    private readonly List<Tensor> _leaves = new();
    private Random _rng = null!;

    [SetUp] public void SetUp() => _rng = new Random(1234);

    [TearDown]
    public void TearDown()
    {
        foreach (var t in _leaves) t.Dispose();
        _leaves.Clear();
    }

    private Tensor L(params int[] shape)
    {
        var t = Leaf(_rng, shape);
        _leaves.Add(t);
        return t;
    }

    private Tensor Ids(int v, params int[] shape)
    {
        var t = TensorScope.Unscoped(() => Tensor.Empty(shape, DType.Int32));
        var s = t.AsSpan<int>();
        for (int i = 0; i < s.Length; i++) s[i] = _rng.Next(v);
        _leaves.Add(t);
        return t;
    }

    [Test] public void Add_WithBroadcastBias() => Check(x => Functional.Add(x[0], x[1]), L(2, 3, 4), L(4));
    // The sink hands Add's output gradient itself to the first operand: the same tensor twice, and a residual whose
    // adopted buffer later receives the other branch's gradient (leaf and non-leaf).
    [Test] public void Add_SameTensorTwice() => Check(x => Functional.Add(x[0], x[0]), L(3, 4));
    [Test] public void Add_Residual() => Check(x => Functional.Add(x[0], Functional.Gelu(x[0])), L(3, 5));
    [Test]
    public void Add_ResidualOfIntermediate() => Check(x =>
    {
        var h = Functional.Scale(x[0], 2f);
        return Functional.Add(h, Functional.Mul(h, h));
    }, L(3, 5));
    [Test] public void Mul() => Check(x => Functional.Mul(x[0], x[1]), L(3, 5), L(3, 5));
    [Test] public void Scale() => Check(x => Functional.Scale(x[0], -0.7f), L(6));
    [Test] public void Silu() => Check(x => Functional.Silu(x[0]), L(2, 7));
    [Test] public void Gelu() => Check(x => Functional.Gelu(x[0]), L(2, 7));
    [Test] public void SwiGlu() => Check(x => Functional.SwiGlu(x[0], x[1]), L(2, 6), L(2, 6));
    [Test] public void Dropout_SameSeedSameMask() => Check(x => Functional.Dropout(x[0], 0.3f, true, 42), L(4, 8));
    [Test] public void Reshape() => Check(x => Functional.Mul(Functional.Reshape(x[0], 4, 3), x[1]), L(2, 6), L(4, 3));
    [Test] public void Sum() => Check(x => Functional.Sum(x[0]), L(3, 4));
    [Test] public void Linear() => Check(x => Functional.Linear(x[0], x[1], x[2]), L(2, 3, 5), L(4, 5), L(4));
    [Test] public void MatMul_Conv1DLayout() => Check(x => Functional.MatMul(x[0], x[1], x[2]), L(3, 5), L(5, 4), L(4));
    [Test] public void RmsNorm() => Check(x => Functional.RmsNorm(x[0], x[1], 1e-5f), L(3, 8), L(8));
    [Test] public void LayerNorm() => Check(x => Functional.LayerNorm(x[0], x[1], x[2], 1e-5f), L(3, 8), L(8), L(8));
    [Test] public void Softmax() => Check(x => Functional.Softmax(x[0]), L(3, 6));
    [Test] public void NarrowLast() => Check(x => Functional.NarrowLast(x[0], 2, 3), L(2, 7));
    [Test]
    public void Embedding()
    {
        var ids = Ids(10, 2, 5);
        Check(x => Functional.Embedding(ids, x[0]), L(10, 4));
    }

    [TestCase(RopeStyle.Interleaved)]
    [TestCase(RopeStyle.RotateHalf)]
    public void Rope(RopeStyle style) => Check(x => Functional.Rope(x[0], 3, style), L(2, 3, 2, 8));

    [Test]
    public void Attention_GroupedQueryHeads() =>
        Check(x => Functional.Attention(x[0], x[1], x[2], 0), L(2, 4, 4, 3), L(2, 4, 2, 3), L(2, 4, 2, 3));

    [Test]
    public void Attention_QueriesAfterCachedPositions() =>
        Check(x => Functional.Attention(x[0], x[1], x[2], 2), L(1, 3, 2, 4), L(1, 5, 1, 4), L(1, 5, 1, 4));

    // Head dims past one 16-float vector (vector and scalar column paths) and more than one four-row block.
    [Test]
    public void Attention_WideHeadsSeveralRowBlocks() =>
        Check(x => Functional.Attention(x[0], x[1], x[2], 2), L(1, 6, 4, 20), L(1, 8, 2, 20), L(1, 8, 2, 20));

    // q | k | v side by side in each row of a fused projection, two heads of 4.
    [Test]
    public void Attention_FusedQkv() => Check(x => Functional.Attention(Functional.Scale(x[0], 1f), 2), L(2, 5, 24));

    // y an intermediate nothing reads (the GEMM accumulates into it) and a leaf (y + x·Wᵀ into a new tensor).
    [Test] public void AddLinear_IntoIntermediate() => Check(x => Functional.AddLinear(Functional.Scale(x[0], 2f), x[1], x[2]), L(2, 3, 4), L(2, 3, 5), L(4, 5));
    [Test] public void AddLinear_LeafOperand() => Check(x => Functional.AddLinear(x[0], x[1], x[2]), L(6, 4), L(6, 5), L(4, 5));

    // Accumulating into y (a GEMM with beta 1) gives the bits of the product plus an add pass, and the same gradients.
    [Test]
    public void AddLinear_EqualsAddOfLinearBitwise()
    {
        using var scope = new TensorScope();
        var rng = new Random(5);
        var y0 = Tensor.RandN([64, 96], rng);
        var x = Tensor.RandN([64, 8], rng);
        var w = Tensor.RandN([96, 8], rng);
        var dz = Tensor.RandN([64, 96], rng);
        y0.RequiresGrad = x.RequiresGrad = w.RequiresGrad = true;
        float[][] Run(bool fused)
        {
            var y = Functional.Scale(y0, 1f);
            var z = fused ? Functional.AddLinear(y, x, w) : Functional.Add(y, Functional.Linear(x, w));
            var value = z.ToArray();
            z.Backward(dz);
            var result = new[] { value, y0.Grad!.ToArray(), x.Grad!.ToArray(), w.Grad!.ToArray() };
            foreach (var t in new[] { y0, x, w }) { t.Grad!.Dispose(); t.Grad = null; }
            return result;
        }
        var expected = Run(false);
        var actual = Run(true);
        for (int i = 0; i < expected.Length; i++) Assert.That(actual[i], Is.EqualTo(expected[i]), $"output/gradient {i}");
    }

    [Test]
    public void CrossEntropy_WithIgnoredTargets()
    {
        var targets = TensorScope.Unscoped(() => Tensor.FromArray(new[] { 3, -100, 0, 5 }, 4));
        _leaves.Add(targets);
        Check(x => Functional.CrossEntropy(x[0], targets), L(4, 6));
    }

    [Test]
    public void FrozenWeight_GetsNoGradButPassesGradient()
    {
        var x = L(2, 5);
        var w = L(3, 5);
        w.RequiresGrad = false;
        using var scope = new TensorScope();
        Functional.Sum(Functional.Linear(x, w)).Backward();
        Assert.That(w.Grad, Is.Null);
        Assert.That(x.Grad, Is.Not.Null);
    }

    [Test]
    public unsafe void QuantizedLinear_InputGradient_Nf4()
    {
        using var w = TensorScope.Unscoped(() => Tensor.RandN([8, 64], new Random(3), 0.1f));
        using var layer = new Linear4bit(w, null, NqQuant4Type.Nf4, 64, doubleQuant: true);
        Check(x => layer.Forward(x[0]), L(3, 64));
    }

    [Test]
    public void Checkpoint_MatchesPlainBackward()
    {
        var x = L(2, 3, 4);
        var w = L(4, 4);
        Tensor Segment(Tensor h) => Functional.Gelu(Functional.Dropout(Functional.Linear(h, w), 0.2f, true, Checkpoint.NextSeed(new Random(5))));
        using (var s = new TensorScope()) Functional.Sum(Segment(x)).Backward();
        var gx = x.Grad!.ToArray();
        var gw = w.Grad!.ToArray();
        x.Grad.Dispose(); x.Grad = null;
        w.Grad.Dispose(); w.Grad = null;
        using (var s = new TensorScope()) Functional.Sum(Checkpoint.Apply(Segment, x, [w])).Backward();
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(gx).Within(1e-6f));
        Assert.That(w.Grad!.ToArray(), Is.EqualTo(gw).Within(1e-6f));
    }
}
