using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.NN;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Autograd;

/// <summary>Decode-shaped 4-bit products split by output rows over SpinPool (<see cref="RowSplit"/>).</summary>
public unsafe class RowSplitTests
{
    private static Linear4bit Layer(int outF, int inF, int seed)
    {
        using var w = TensorScope.Unscoped(() => Tensor.RandN([outF, inF], new Random(seed), 0.05f));
        return new Linear4bit(w, null, NqQuant4Type.Nf4, 64, doubleQuant: true);
    }

    private static float[] Whole(IQuantizedWeight w, Tensor x, int m)
    {
        var y = new float[m * w.OutFeatures];
        fixed (float* yp = y) w.MatMulTransposed(x.DataPointer, m, null, yp);
        return y;
    }

    [Test]
    public void Run_SeveralWeights_EqualsEachWholeProductBitForBit()
    {
        // 5000 rows get several parts (ranges cut nested-absmax blocks anywhere); 770 ends on a partial 4-row group.
        var layers = new[] { Layer(5000, 288, 1), Layer(288, 288, 2), Layer(770, 288, 3) };
        try
        {
            Assume.That(RowSplit.Applies(layers[0], 1), "needs AVX-512 and a second core");
            using var scope = new TensorScope();
            for (int m = 1; m <= 4; m++)
            {
                var x = Tensor.RandN([m, 288], new Random(10 + m));
                var ys = layers.Select(l => Tensor.Full([m, l.OutFeatures], float.NaN)).ToArray();
                RowSplit.Run(x.DataPointer, m, layers.Cast<IRowRangeWeight>().ToArray(), ys.Select(y => (nint)y.DataPointer).ToArray());
                for (int i = 0; i < layers.Length; i++)
                    Assert.That(ys[i].ToArray(), Is.EqualTo(Whole(layers[i], x, m)), $"m={m} weight {i}");  // NaN never equals: every element written
            }
        }
        finally
        {
            foreach (var l in layers) l.Dispose();
        }
    }

    [Test]
    public void QuantizedLinear_DecodeStep_MatchesTheFloat64Product()
    {
        using var layer = Layer(3000, 288, 5);
        using var scope = new TensorScope();
        using var noGrad = GradMode.NoGrad();
        var x = Tensor.RandN([1, 1, 288], new Random(6));
        var y = layer.Forward(x).ToArray();
        var w = layer.Dequantize().ToArray();
        var xs = x.ToArray();
        double num = 0, den = 0;
        for (int n = 0; n < 3000; n++)
        {
            double exact = 0;
            for (int k = 0; k < 288; k++) exact += (double)xs[k] * w[n * 288 + k];
            num += (y[n] - exact) * (y[n] - exact);
            den += exact * exact;
        }
        // fp32 sums of 288 products in a different order than float64: ~1e-7 * sqrt(288) relative; 1e-5 still
        // catches one wrong element or a missing range.
        Assert.That(Math.Sqrt(num / den), Is.LessThan(1e-5));
        Assert.That(y, Is.EqualTo(Whole(layer, x, 1)));
    }

    [Test]
    public void OtherComputeTypes_KeepTheirOwnKernels()
    {
        using var layer = Layer(64, 288, 7);
        layer.ComputeDtype = NqComputeType.F16;
        Assert.That(RowSplit.Applies(layer, 1), Is.False);
        layer.ComputeDtype = NqComputeType.F32;
        Assert.That(RowSplit.Applies(layer, 5), Is.False, "M > 4 is a GEMM");
    }
}
