using NativeQuant.Autograd;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Autograd;

/// <summary>Attention through the native kernel (decode-sized T &lt; 8 reads k/v in place; T &gt;= 8 transposes keys
/// and scores 8-query tiles; head dims in 16-column vectors with a masked tail) against a direct double-precision
/// evaluation.</summary>
public class AttentionTests
{
    [TestCase(1, 1, 9, 48, 6, 6)]     // a decode step after 9 cached positions
    [TestCase(1, 1, 40, 48, 6, 6)]    // a decode step, keys past two 16-key blocks
    [TestCase(2, 2, 45, 32, 4, 2)]    // two queries (in-place path), grouped kv heads
    [TestCase(3, 2, 9, 48, 6, 3)]     // a few queries after cached positions, grouped kv heads
    [TestCase(4, 4, 0, 48, 2, 2)]     // prefill below one 8-query tile
    [TestCase(2, 7, 30, 40, 4, 2)]    // in-place path, partial vector of the head dim
    [TestCase(1, 37, 0, 16, 3, 1)]    // prefill: tiled path, a partial last tile
    [TestCase(2, 5, 3, 8, 2, 2)]      // head dim below one vector
    public void MatchesDirectEvaluation(int batch, int t, int offset, int d, int hq, int hkv)
    {
        using var scope = new TensorScope();
        using var noGrad = GradMode.NoGrad();
        var rng = new Random(t * 31 + d);
        int s = offset + t;
        var q = Tensor.RandN([batch, t, hq, d], rng, 1f);
        var k = Tensor.RandN([batch, s, hkv, d], rng, 1f);
        var v = Tensor.RandN([batch, s, hkv, d], rng, 1f);
        var y = Functional.Attention(q, k, v, offset).Data.ToArray();
        float[] qd = q.Data.ToArray(), kd = k.Data.ToArray(), vd = v.Data.ToArray();
        double scale = 1 / Math.Sqrt(d);
        for (int b = 0; b < batch; b++)
        for (int i = 0; i < t; i++)
        for (int h = 0; h < hq; h++)
        {
            int kh = h / (hq / hkv), visible = offset + i + 1;
            var w = new double[visible];
            for (int j = 0; j < visible; j++)
                for (int c = 0; c < d; c++)
                    w[j] += qd[((b * t + i) * hq + h) * d + c] * (double)kd[((b * s + j) * hkv + kh) * d + c] * scale;
            double max = w.Max(), sum = 0;
            for (int j = 0; j < visible; j++) sum += w[j] = Math.Exp(w[j] - max);
            for (int c = 0; c < d; c++)
            {
                double expect = 0;
                for (int j = 0; j < visible; j++) expect += w[j] / sum * vd[((b * s + j) * hkv + kh) * d + c];
                Assert.That(y[((b * t + i) * hq + h) * d + c], Is.EqualTo(expect).Within(1e-5), $"y[{b},{i},{h},{c}]");
            }
        }
    }

    // The fused-projection entry reads q/k/v in place and adds their gradients into one buffer: the same bits as
    // attention over the three narrowed copies, forward and backward (GPT-2's layout: 3 heads of 20, two sequences).
    [Test]
    public void FusedQkv_EqualsNarrowedOperandsBitwise()
    {
        const int b = 2, t = 19, h = 3, d = 20, c = h * d;
        using var scope = new TensorScope();
        var rng = new Random(7);
        var qkv = Tensor.RandN([b, t, 3 * c], rng, 1f);
        qkv.RequiresGrad = true;
        var dy = Tensor.RandN([b, t, h, d], rng, 1f);
        var fused = Functional.Attention(Functional.Scale(qkv, 1f), h);
        var yFused = fused.ToArray();
        fused.Backward(dy);
        var gFused = qkv.Grad!.ToArray();
        qkv.Grad.Dispose();
        qkv.Grad = null;

        var x = Functional.Scale(qkv, 1f);
        var split = Functional.Attention(Functional.NarrowLast(x, 0, c).Reshape(b, t, h, d), Functional.NarrowLast(x, c, c).Reshape(b, t, h, d),
                                         Functional.NarrowLast(x, 2 * c, c).Reshape(b, t, h, d), 0);
        Assert.That(yFused, Is.EqualTo(split.ToArray()));
        split.Backward(dy);
        Assert.That(gFused, Is.EqualTo(qkv.Grad!.ToArray()));
    }
}
