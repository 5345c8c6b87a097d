using NativeQuant.Autograd;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Models.Llama;

/// <summary>Multi-head attention with grouped kv heads and rotary embeddings (HF LlamaAttention).</summary>
public sealed class LlamaAttention : Module
{
    private readonly LlamaConfig _c;

    public LlamaAttention(LlamaConfig c, string prefix, WeightFactory w)
    {
        _c = c;
        int kv = c.NumKeyValueHeads * c.HeadDim;
        RegisterModule("q_proj", w.Linear(prefix + ".q_proj", c.HiddenSize, c.HiddenSize, bias: false));
        RegisterModule("k_proj", w.Linear(prefix + ".k_proj", c.HiddenSize, kv, bias: false));
        RegisterModule("v_proj", w.Linear(prefix + ".v_proj", c.HiddenSize, kv, bias: false));
        RegisterModule("o_proj", w.Linear(prefix + ".o_proj", c.HiddenSize, c.HiddenSize, bias: false));
    }

    /// <summary>x (B, T, C) at positions startPos.. -> (B, T, C); with a cache, k/v are stored in layer
    /// <paramref name="layer"/> and the queries attend to every cached position.</summary>
    public Tensor Forward(Tensor x, int startPos, KVCache? cache, int layer)
    {
        int b = x.Size(0), t = x.Size(1), d = _c.HeadDim;
        var q = Child<Module<Tensor, Tensor>>("q_proj").Forward(x).Reshape(b, t, _c.NumAttentionHeads, d);   // (B,T,Hq,D)
        var k = Child<Module<Tensor, Tensor>>("k_proj").Forward(x).Reshape(b, t, _c.NumKeyValueHeads, d);    // (B,T,Hkv,D)
        var v = Child<Module<Tensor, Tensor>>("v_proj").Forward(x).Reshape(b, t, _c.NumKeyValueHeads, d);
        q = Functional.Rope(q, startPos, _c.RopeStyle, _c.RopeTheta);
        k = Functional.Rope(k, startPos, _c.RopeStyle, _c.RopeTheta);
        Tensor y;
        if (cache == null) y = Functional.Attention(q, k, v, 0);
        else
        {
            var (keys, values) = cache.Append(layer, k, v);  // (B, startPos+T, Hkv, D) views
            using (keys)
            using (values)
                y = Functional.Attention(q, keys, values, startPos);
        }
        return Child<Module<Tensor, Tensor>>("o_proj").Forward(y.Reshape(b, t, _c.HiddenSize));
    }
}

/// <summary>down(silu(gate(x)) * up(x)) (HF LlamaMLP).</summary>
public sealed class LlamaMLP : Module<Tensor, Tensor>
{
    public LlamaMLP(LlamaConfig c, string prefix, WeightFactory w)
    {
        RegisterModule("gate_proj", w.Linear(prefix + ".gate_proj", c.HiddenSize, c.IntermediateSize, bias: false));
        RegisterModule("up_proj", w.Linear(prefix + ".up_proj", c.HiddenSize, c.IntermediateSize, bias: false));
        RegisterModule("down_proj", w.Linear(prefix + ".down_proj", c.IntermediateSize, c.HiddenSize, bias: false));
    }

    /// <summary>x (B, T, C) -> (B, T, C)</summary>
    public override Tensor Forward(Tensor x)
    {
        var gate = Child<Module<Tensor, Tensor>>("gate_proj").Forward(x);   // (B,T,I)
        var up = Child<Module<Tensor, Tensor>>("up_proj").Forward(x);       // (B,T,I)
        return Child<Module<Tensor, Tensor>>("down_proj").Forward(Functional.SwiGlu(gate, up));
    }
}

/// <summary>Pre-norm transformer block: h = x + attn(norm(x)); out = h + mlp(norm(h)).</summary>
public sealed class LlamaDecoderLayer : Module
{
    private readonly int _index;

    public LlamaDecoderLayer(LlamaConfig c, int index, WeightFactory w)
    {
        _index = index;
        string p = $"model.layers.{index}";
        RegisterModule("self_attn", new LlamaAttention(c, p + ".self_attn", w));
        RegisterModule("mlp", new LlamaMLP(c, p + ".mlp", w));
        RegisterModule("input_layernorm", new RMSNorm(w.Parameter(p + ".input_layernorm.weight", [c.HiddenSize], InitKind.Ones), c.RmsNormEps));
        RegisterModule("post_attention_layernorm", new RMSNorm(w.Parameter(p + ".post_attention_layernorm.weight", [c.HiddenSize], InitKind.Ones), c.RmsNormEps));
    }

    /// <summary>x (B, T, C) -> (B, T, C)</summary>
    public Tensor Forward(Tensor x, int startPos, KVCache? cache)
    {
        var a = Child<LlamaAttention>("self_attn").Forward(Child<RMSNorm>("input_layernorm").Forward(x), startPos, cache, _index);
        var h = Functional.Add(x, a);
        var m = Child<LlamaMLP>("mlp").Forward(Child<RMSNorm>("post_attention_layernorm").Forward(h));
        return Functional.Add(h, m);
    }
}
