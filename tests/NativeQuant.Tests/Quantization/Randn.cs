namespace NativeQuant.Tests.Quantization;

/// <summary>Seeded standard-normal samples (Box-Muller), so error bounds are reproducible.</summary>
public static class Randn
{
    public static float[] Sample(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2 * Math.Log(u1));
            x[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < n) x[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
        }
        return x;
    }
}
