using System.Numerics.Tensors;

namespace NativeQuant.Generation;

/// <summary>
/// Picks the next token from logits: greedy at temperature 0, otherwise softmax(logits / T) restricted to the
/// top-k tokens and then to the smallest set whose probability reaches top-p. Buffers are allocated once.
/// </summary>
public sealed class Sampler
{
    private readonly GenerationOptions _o;
    private readonly float[] _probs;
    private readonly int[] _order;
    private readonly Random _rng;

    public Sampler(int vocabSize, GenerationOptions options)
    {
        options.Validate();
        _o = options;
        _probs = new float[vocabSize];
        _order = new int[vocabSize];
        _rng = new Random(unchecked((int)(options.Seed ^ (options.Seed >> 32))));
    }

    public int Next(ReadOnlySpan<float> logits)
    {
        if (_o.Temperature == 0f) return TensorPrimitives.IndexOfMax(logits);
        var p = _probs.AsSpan(0, logits.Length);
        TensorPrimitives.Divide(logits, _o.Temperature, p);
        TensorPrimitives.SoftMax(p, p);
        int n = logits.Length;
        bool filter = (_o.TopK > 0 && _o.TopK < n) || _o.TopP < 1f;
        if (!filter) return SampleFrom(p, null, n);

        var order = _order.AsSpan(0, n);
        for (int i = 0; i < n; i++) order[i] = i;
        var probs = _probs;
        order.Sort((a, b) => probs[b].CompareTo(probs[a]));  // descending probability
        int keep = _o.TopK > 0 ? Math.Min(_o.TopK, n) : n;
        if (_o.TopP < 1f)
        {
            float mass = 0f, total = 0f;
            for (int i = 0; i < keep; i++) total += p[order[i]];
            for (int i = 0; i < keep; i++)
            {
                mass += p[order[i]];
                if (mass >= _o.TopP * total) { keep = i + 1; break; }
            }
        }
        return SampleFrom(p, order[..keep].ToArray(), keep);
    }

    private int SampleFrom(ReadOnlySpan<float> p, int[]? candidates, int count)
    {
        double total = 0;
        for (int i = 0; i < count; i++) total += p[candidates?[i] ?? i];
        double r = _rng.NextDouble() * total, acc = 0;
        for (int i = 0; i < count; i++)
        {
            int id = candidates?[i] ?? i;
            acc += p[id];
            if (r < acc) return id;
        }
        return candidates?[count - 1] ?? count - 1;  // rounding: the last candidate
    }
}
