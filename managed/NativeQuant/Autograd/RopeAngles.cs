namespace NativeQuant.Autograd;

/// <summary>cos and sin of pos * theta^(-2i/D) for positions 0..Positions-1 and pairs i &lt; D/2, computed once per
/// (theta, D) and grown on demand: every layer's q and k at every step use the same angles, and three
/// transcendentals per pair and position cost more than the rotation itself. Immutable once published.</summary>
internal sealed class RopeAngles
{
    private static RopeAngles? s_last;

    private RopeAngles(float theta, int d, int positions)
    {
        Theta = theta;
        D = d;
        Positions = positions;
        int half = d / 2;
        Cos = new float[positions * half];
        Sin = new float[positions * half];
        for (int pos = 0; pos < positions; pos++)
            for (int i = 0; i < half; i++)
            {
                // fp32 like llama2.c and HF: inv_freq in float, then pos * inv_freq in float.
                float invFreq = 1f / MathF.Pow(theta, 2f * i / d);
                float angle = pos * invFreq;
                Cos[pos * half + i] = MathF.Cos(angle);
                Sin[pos * half + i] = MathF.Sin(angle);
            }
    }

    public float Theta { get; }
    public int D { get; }
    public int Positions { get; }
    /// <summary>(Positions, D/2) row-major.</summary>
    public float[] Cos { get; }
    public float[] Sin { get; }

    public static RopeAngles For(float theta, int d, int positions)
    {
        var last = Volatile.Read(ref s_last);
        bool same = last != null && last.Theta == theta && last.D == d;
        if (same && last!.Positions >= positions) return last;
        var table = new RopeAngles(theta, d, Math.Max(positions, same ? 2 * last!.Positions : 256));
        Volatile.Write(ref s_last, table);
        return table;
    }
}
