using System.Numerics.Tensors;
using NativeQuant.Generation;
using NUnit.Framework;

namespace NativeQuant.Tests.Generation;

public class SamplerTests
{
    // Greedy decoding must pick exactly what TensorPrimitives.IndexOfMax picks: the first of tied maxima, +0 over
    // -0, the first NaN; lengths around the 64-float unrolled step and its tail.
    [Test]
    public void ArgMax_AgreesWithIndexOfMax()
    {
        var rng = new Random(12);
        foreach (int n in new[] { 1, 5, 63, 64, 65, 127, 200, 1000, 32000 })
            for (int trial = 0; trial < 20; trial++)
            {
                var x = new float[n];
                for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 40 - 30);
                switch (trial % 5)
                {
                    case 1: x[rng.Next(n)] = x[rng.Next(n)] = 50f; break;                       // tied maxima
                    case 2: Array.Fill(x, -1f); x[rng.Next(n)] = -0f; x[rng.Next(n)] = 0f; break; // zero signs
                    case 3: x[rng.Next(n)] = float.NaN; break;
                    case 4: x[n - 1] = 99f; break;                                                // max in the tail
                }
                Assert.That(Sampler.ArgMax(x), Is.EqualTo(TensorPrimitives.IndexOfMax<float>(x)), $"n={n} trial={trial}");
            }
    }
}
