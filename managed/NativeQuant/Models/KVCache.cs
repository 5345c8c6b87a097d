using NativeQuant.Tensors;

namespace NativeQuant.Models;

/// <summary>
/// Keys and values of every layer for the positions decoded so far: per layer (B, MaxLength, Hkv, D), allocated
/// once, so decoding a token allocates no cache memory. A forward writes its T new positions at
/// [Length, Length+T) in every layer and then advances <see cref="Length"/>.
/// </summary>
public sealed class KVCache : IDisposable
{
    private readonly Tensor[] _keys, _values;

    public KVCache(int layers, int batch, int maxLength, int kvHeads, int headDim)
    {
        if (maxLength <= 0) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "KV cache length must be positive");
        MaxLength = maxLength;
        _keys = new Tensor[layers];
        _values = new Tensor[layers];
        TensorScope.Unscoped(() =>
        {
            for (int l = 0; l < layers; l++)
            {
                _keys[l] = Tensor.Empty([batch, maxLength, kvHeads, headDim]);
                _values[l] = Tensor.Empty([batch, maxLength, kvHeads, headDim]);
            }
            return 0;
        });
    }

    public int MaxLength { get; }
    /// <summary>Positions already stored (the next token's position).</summary>
    public int Length { get; private set; }

    /// <summary>Stores k/v (B, T, Hkv, D) of <paramref name="layer"/> at positions Length..Length+T-1 and returns
    /// views of all keys and values up to and including them.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        int t = k.Size(1);
        if (Length + t > MaxLength)
            throw new InvalidOperationException($"KV cache full: {Length} + {t} positions exceed its length {MaxLength} (the model's context)");
        using (var dk = _keys[layer].NarrowView(1, Length, t)) dk.CopyFrom(k);
        using (var dv = _values[layer].NarrowView(1, Length, t)) dv.CopyFrom(v);
        return (_keys[layer].NarrowView(1, 0, Length + t), _values[layer].NarrowView(1, 0, Length + t));
    }

    /// <summary>Marks the positions written by the last forward as stored.</summary>
    public void Advance(int t) => Length += t;

    /// <summary>Forgets everything (the buffers are kept for reuse).</summary>
    public void Reset() => Length = 0;

    public void Dispose()
    {
        foreach (var t in _keys) t?.Dispose();
        foreach (var t in _values) t?.Dispose();
    }
}
