namespace NativeQuant.Autograd;

/// <summary>Counter-based random numbers: the value at (seed, index) needs no generator state, so masks can be
/// regenerated exactly and in any order.</summary>
public static class SplitMix
{
    public static ulong Hash(ulong seed, ulong index)
    {
        ulong z = seed + (index + 1) * 0x9E3779B97F4A7C15ul;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ul;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBul;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 24 bits of resolution.</summary>
    public static float Uniform(ulong seed, ulong index) => (Hash(seed, index) >> 40) * (1f / (1 << 24));
}
