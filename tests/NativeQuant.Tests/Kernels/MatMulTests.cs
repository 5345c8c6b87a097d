using NativeQuant.Interop;
using NativeQuant.Kernels;
using NUnit.Framework;

namespace NativeQuant.Tests.Kernels;

public class MatMulTests
{
    // fp32 GEMM vs a double product: only summation-order rounding (~1e-7 * sqrt(K)).
    private const double F32RelTol = 1e-5;
    // Row-wise int8 of both operands on randn data: ~1% relative error (bnb-class).
    private const double Int8RelTol = 0.02;
    // NF4 weight: the managed call must equal the product with the library's dequantised W.
    private const double Nf4RelTol = 1e-5;

    private static float[] Randn(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++)
            v[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return v;
    }

    private static double[] XWt(float[] x, float[] w, int m, int n, int k)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double a = 0;
                for (int p = 0; p < k; p++) a += (double)x[i * k + p] * w[j * k + p];
                y[i * n + j] = a;
            }
        return y;
    }

    private static double RelError(float[] y, double[] r)
    {
        double num = 0, den = 0;
        for (int i = 0; i < y.Length; i++) { num += (y[i] - r[i]) * (y[i] - r[i]); den += r[i] * r[i]; }
        return Math.Sqrt(num / den);
    }

    [Test]
    public void GemmLinearLayerMatchesDouble()
    {
        const int m = 7, n = 45, k = 130;
        var x = Randn(m * k, 1); var w = Randn(n * k, 2);
        var y = Enumerable.Repeat(float.NaN, m * n).ToArray();
        MatMul.Gemm(false, true, m, n, k, x, w, y);
        Assert.That(RelError(y, XWt(x, w, m, n, k)), Is.LessThan(F32RelTol));
    }

    [Test]
    public unsafe void Quant4MatchesDequantisedWeight()
    {
        const int m = 6, n = 40, k = 96, bs = 64;
        var wf = Randn(n * k, 3); var x = Randn(m * k, 4);
        var packed = new byte[n * k / 2]; var absmax = new float[(n * k + bs - 1) / bs]; var deq = new float[n * k];
        fixed (float* pw = wf, pa = absmax, pd = deq)
        fixed (byte* pp = packed)
        {
            Nq.Check(NativeMethods.nq_quant4_quantize(NqQuant4Type.Nf4, pw, n * k, bs, pp, pa));
            Nq.Check(NativeMethods.nq_quant4_dequantize(NqQuant4Type.Nf4, pp, pa, n * k, bs, pd));
        }
        var y = Enumerable.Repeat(float.NaN, m * n).ToArray();
        MatMul.Quant4(x, m, packed, absmax, n, k, bs, NqQuant4Type.Nf4, y);
        Assert.That(RelError(y, XWt(x, deq, m, n, k)), Is.LessThan(Nf4RelTol));
    }

    [Test]
    public unsafe void Int8FindsPlantedOutlierAndStaysClose()
    {
        const int m = 8, n = 32, k = 256;
        var x = Randn(m * k, 5); var wf = Randn(n * k, 6);
        for (int i = 0; i < m; i++) x[i * k + 77] = 20f;
        var w = new sbyte[n * k]; var scb = new float[n]; var deq = new float[n * k];
        fixed (float* pw = wf, ps = scb)
        fixed (sbyte* pq = w)
            Nq.Check(NativeMethods.nq_int8_rowwise_quantize(pw, n, k, pq, ps));
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++) deq[j * k + p] = w[j * k + p] * scb[j] / 127f;
        var y = new float[m * n];
        var cols = MatMul.Int8(x, m, k, w, scb, n, y);
        Assert.That(cols, Is.EqualTo(new[] { 77 }));
        Assert.That(RelError(y, XWt(x, deq, m, n, k)), Is.LessThan(Int8RelTol));
    }

    [Test]
    public unsafe void Int8BackwardWithInt8ComputeStaysClose()
    {
        const int m = 5, n = 70, k = 96;
        var dy = Randn(m * n, 7); var wf = Randn(n * k, 8);
        var w = new sbyte[n * k]; var scb = new float[n];
        fixed (float* pw = wf, ps = scb)
        fixed (sbyte* pq = w)
            Nq.Check(NativeMethods.nq_int8_rowwise_quantize(pw, n, k, pq, ps));
        var exact = new double[m * k];
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++)
                for (int j = 0; j < n; j++) exact[i * k + p] += (double)dy[i * n + j] * (w[j * k + p] * scb[j] / 127.0);
        var dx = Enumerable.Repeat(float.NaN, m * k).ToArray();
        MatMul.Int8Backward(dy, m, n, w, scb, k, dx, NqComputeType.Int8);
        Assert.That(RelError(dx, exact), Is.LessThan(Int8RelTol));
    }

    [Test]
    public void ShapeMismatchAndNativeRejectionAreReported()
    {
        var a = new float[12]; var b = new float[12]; var c = new float[9];
        var e = Assert.Throws<ArgumentException>(() => MatMul.Gemm(false, true, 3, 3, 5, a, b, c))!;
        Assert.That(e.ParamName, Is.EqualTo("a"));
        var packed = new byte[16]; var absmax = new float[1];
        var ne = Assert.Throws<NativeQuantException>(() =>
            MatMul.Quant4(new float[8], 1, packed, absmax, 4, 8, 48, NqQuant4Type.Nf4, new float[4]))!;
        Assert.That(ne.Message, Does.Contain("blocksize"));
    }
}
