using NativeQuant.Interop;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Tensors;

/// <summary>Gemm.Sgemm cuts products below the native serial cut-off into row ranges that both cores run (LoRA's
/// rank-8 products): every range computes its rows as the whole product does, so the bits equal one native call.</summary>
public unsafe class GemmRowSplitTests
{
    [TestCase(256, 2304, 8, true, 0f)]    // LoRA up-projection x·Bᵀ
    [TestCase(256, 2304, 8, true, 1f)]    // ... accumulated into the base output
    [TestCase(256, 8, 768, true, 0f)]     // x·Aᵀ: skinny natively, in every range too
    [TestCase(256, 8, 2304, false, 0f)]   // dh = g·B
    [TestCase(256, 768, 8, false, 1f)]    // dx += dh·A
    [TestCase(300, 512, 24, false, 1f)]   // a row count that leaves a short last range
    public void EqualsOneNativeCallBitwise(int m, int n, int k, bool transB, float beta)
    {
        var rng = new Random(m + n + k);
        float[] Rand(int count) => Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] a = Rand(m * k), b = Rand(n * k), c0 = Rand(m * n);
        var expected = (float[])c0.Clone();
        fixed (float* ap = a, bp = b, cp = expected)
            Nq.Check(NativeMethods.nq_gemm_f32(0, transB ? 1 : 0, m, n, k, ap, bp, beta, null, cp));
        // A few calls: the first may find the SpinPool helper resting (then the product runs whole).
        for (int call = 0; call < 3; call++)
        {
            var actual = (float[])c0.Clone();
            fixed (float* ap = a, bp = b, cp = actual)
                Gemm.Sgemm(false, transB, m, n, k, ap, bp, beta, cp);
            Assert.That(actual, Is.EqualTo(expected), $"call {call}");
        }
    }
}
