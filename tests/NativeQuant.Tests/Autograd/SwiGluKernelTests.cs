using NativeQuant.Autograd;
using NUnit.Framework;

namespace NativeQuant.Tests.Autograd;

public class SwiGluKernelTests
{
    // The one-pass AVX-512 SwiGLU must equal the TensorPrimitives passes bit for bit (generated text and the pinned
    // reference logits must not move), for lengths with and without a 16-float tail, wide ranges and specials.
    [Test]
    public void OnePass_EqualsThePassesBitForBit()
    {
        var rng = new Random(21);
        foreach (int n in new[] { 16, 17, 31, 33, 100, 768, 4099 })
        {
            var g = new float[n];
            var u = new float[n];
            for (int i = 0; i < n; i++)
            {
                g[i] = (float)((rng.NextDouble() * 2 - 1) * (i % 3 == 0 ? 120 : i % 3 == 1 ? 12 : 1));
                u[i] = (float)(rng.NextDouble() * 4 - 2);
            }
            g[0] = float.NaN; g[1] = float.PositiveInfinity; g[2] = float.NegativeInfinity; g[3] = -0f; g[n - 1] = 88.9f;
            var expected = new float[n];
            Functional.SwiGluPasses(g, u, expected);
            var actual = Enumerable.Repeat(float.NaN, n).ToArray();
            Functional.SwiGlu512(g, u, actual);
            for (int i = 0; i < n; i++)
                Assert.That(BitConverter.SingleToInt32Bits(actual[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(expected[i])), $"n={n} i={i} g={g[i]}");
        }
    }
}
