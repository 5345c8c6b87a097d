using NativeQuant.Autograd;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Models.Gpt2;

/// <summary>Causal self-attention with a fused qkv Conv1D (HF GPT2Attention: c_attn, c_proj).</summary>
public sealed class Gpt2Attention : Module
{
    private readonly Gpt2Config _c;

    public Gpt2Attention(Gpt2Config c, string prefix, WeightFactory w)
    {
        _c = c;
        RegisterModule("c_attn", w.Conv1D(prefix + ".c_attn", c.NEmbd, 3 * c.NEmbd));
        RegisterModule("c_proj", w.Conv1D(prefix + ".c_proj", c.NEmbd, c.NEmbd));
    }

    /// <summary>x (B, T, C) -> (B, T, C)</summary>
    public Tensor Forward(Tensor x, int startPos, KVCache? cache, int layer)
    {
        int b = x.Size(0), t = x.Size(1), c = _c.NEmbd;
        var qkv = Child<Module<Tensor, Tensor>>("c_attn").Forward(x);                      // (B,T,3C)
        Tensor y;
        if (cache == null) y = Functional.Attention(qkv, _c.NHead);                          // (B,T,H,D)
        else
        {
            var q = Functional.NarrowLast(qkv, 0, c).Reshape(b, t, _c.NHead, _c.HeadDim);   // (B,T,H,D)
            var k = Functional.NarrowLast(qkv, c, c).Reshape(b, t, _c.NHead, _c.HeadDim);
            var v = Functional.NarrowLast(qkv, 2 * c, c).Reshape(b, t, _c.NHead, _c.HeadDim);
            var (keys, values) = cache.Append(layer, k, v);
            using (keys)
            using (values)
                y = Functional.Attention(q, keys, values, startPos);
        }
        return Child<Module<Tensor, Tensor>>("c_proj").Forward(y.Reshape(b, t, c));
    }
}

/// <summary>c_proj(gelu_tanh(c_fc(x))) (HF GPT2MLP).</summary>
public sealed class Gpt2MLP : Module<Tensor, Tensor>
{
    public Gpt2MLP(Gpt2Config c, string prefix, WeightFactory w)
    {
        RegisterModule("c_fc", w.Conv1D(prefix + ".c_fc", c.NEmbd, c.NInner));
        RegisterModule("c_proj", w.Conv1D(prefix + ".c_proj", c.NInner, c.NEmbd));
    }

    /// <summary>x (B, T, C) -> (B, T, C)</summary>
    public override Tensor Forward(Tensor x) =>
        Child<Module<Tensor, Tensor>>("c_proj").Forward(Functional.Gelu(Child<Module<Tensor, Tensor>>("c_fc").Forward(x)));
}

/// <summary>Pre-norm GPT-2 block: h = x + attn(ln_1(x)); out = h + mlp(ln_2(h)).</summary>
public sealed class Gpt2Block : Module
{
    private readonly int _index;

    public Gpt2Block(Gpt2Config c, int index, WeightFactory w)
    {
        _index = index;
        string p = $"transformer.h.{index}";
        RegisterModule("ln_1", NewLayerNorm(c, p + ".ln_1", w));
        RegisterModule("attn", new Gpt2Attention(c, p + ".attn", w));
        RegisterModule("ln_2", NewLayerNorm(c, p + ".ln_2", w));
        RegisterModule("mlp", new Gpt2MLP(c, p + ".mlp", w));
    }

    internal static LayerNorm NewLayerNorm(Gpt2Config c, string name, WeightFactory w) =>
        new(w.Parameter(name + ".weight", [c.NEmbd], InitKind.Ones), w.Parameter(name + ".bias", [c.NEmbd], InitKind.Zeros), c.LayerNormEpsilon);

    /// <summary>x (B, T, C) -> (B, T, C)</summary>
    public Tensor Forward(Tensor x, int startPos, KVCache? cache)
    {
        var h = Functional.Add(x, Child<Gpt2Attention>("attn").Forward(Child<LayerNorm>("ln_1").Forward(x), startPos, cache, _index));
        return Functional.Add(h, Child<Gpt2MLP>("mlp").Forward(Child<LayerNorm>("ln_2").Forward(h)));
    }
}
