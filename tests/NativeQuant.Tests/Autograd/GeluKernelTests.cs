using NativeQuant.Autograd;
using NUnit.Framework;

namespace NativeQuant.Tests.Autograd;

public class GeluKernelTests
{
    // The one-pass AVX-512 GELU forward and backward must equal the TensorPrimitives passes bit for bit (GPT-2's pinned
    // reference logits must not move), for lengths with and without a 16-float tail, wide ranges and specials. (4111:
    // the backward passes' last 1024-chunk is not a 3-element one, where TensorPrimitives.Tanh runs scalar MathF.Tanh.)
    [Test]
    public void OnePass_EqualsThePassesBitForBit()
    {
        var rng = new Random(22);
        foreach (int n in new[] { 1, 5, 16, 17, 31, 33, 100, 768, 4111 })
        {
            var x = new float[n];
            var g = new float[n];
            var d0 = new float[n];
            for (int i = 0; i < n; i++)
            {
                x[i] = (float)((rng.NextDouble() * 2 - 1) * (i % 3 == 0 ? 60 : i % 3 == 1 ? 6 : 0.5));
                g[i] = (float)(rng.NextDouble() * 4 - 2);
                d0[i] = (float)(rng.NextDouble() * 2 - 1);
            }
            if (n >= 5) { x[0] = float.NaN; x[1] = float.PositiveInfinity; x[2] = float.NegativeInfinity; x[3] = -0f; x[4] = 9.3f; }
            var expected = new float[n];
            var actual = new float[n];
            Functional.GeluPasses(x, expected);
            Functional.Gelu512(x, actual);
            AssertBits(expected, actual, x, $"forward n={n}");
            var dExpected = (float[])d0.Clone();
            var dActual = (float[])d0.Clone();
            Functional.GeluBackwardPasses(x, g, dExpected);
            Functional.GeluBackward512(x, g, dActual);
            AssertBits(dExpected, dActual, x, $"backward n={n}");
        }
    }

    private static void AssertBits(float[] expected, float[] actual, float[] x, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            if (!(float.IsNaN(expected[i]) && float.IsNaN(actual[i])))  // NaN's sign bit is not part of the contract
                Assert.That(BitConverter.SingleToInt32Bits(actual[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(expected[i])), $"{what} i={i} x={x[i]}");
    }
}
