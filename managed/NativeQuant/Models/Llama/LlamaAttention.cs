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
        var qkv = Projections.Apply(x, Child<Module<Tensor, Tensor>>("q_proj"), Child<Module<Tensor, Tensor>>("k_proj"), Child<Module<Tensor, Tensor>>("v_proj"));
        var q = qkv[0].Reshape(b, t, _c.NumAttentionHeads, d);  // (B,T,Hq,D)
        var k = qkv[1].Reshape(b, t, _c.NumKeyValueHeads, d);   // (B,T,Hkv,D)
        var v = qkv[2].Reshape(b, t, _c.NumKeyValueHeads, d);
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
        var gateUp = Projections.Apply(x, Child<Module<Tensor, Tensor>>("gate_proj"), Child<Module<Tensor, Tensor>>("up_proj"));  // 2 x (B,T,I)
        return Child<Module<Tensor, Tensor>>("down_proj").Forward(Functional.SwiGlu(gateUp[0], gateUp[1]));
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

/// <summary>
/// Products of one input with several weights (q/k/v, gate/up). At inference, decode-shaped products (M &lt;= 4) with
/// bias-free quantized weights run together: 4-bit weights split into row ranges over both cores
/// (<see cref="RowSplit"/>); small 8-bit ones side by side on <see cref="SpinPool"/>, because below the native work
/// cut-off (gemv.h) each GEMV runs on its calling thread, so one after another they would leave the other core idle.
/// Everything else (fp32 weights split their own rows in <see cref="Gemm"/>; LoRA, training, prefill) runs each
/// module's Forward.
/// </summary>
internal static unsafe class Projections
{
    // Bytes of weight x rows below which a native GEMV stays on its calling thread (kSerialWorkBytes in gemv.h),
    // counted at one byte per weight (an upper bound for 4-bit and int8).
    private const long NativeSerialWork = 4 << 20;

    /// <summary>x (B, T, C) -> one (B, T, out_i) per module.</summary>
    public static Tensor[] Apply(Tensor x, params Module<Tensor, Tensor>[] linears)
    {
        int m = (int)(x.NumElements / x.Size(-1));
        var weights = linears.Select(l => l switch { Linear4bit { Bias: null } w => w, Linear8bitLt { Bias: null } w => (IQuantizedWeight)w, _ => null }).ToArray();
        bool together = m <= 4 && x.IsContiguous && !Functional.Recording(x) &&
                        weights.All(w => w != null && w.InFeatures == x.Size(-1));
        bool rows = together && weights.All(w => RowSplit.Applies(w, m));
        if (!rows && !(together && weights.All(w => (long)w!.OutFeatures * w.InFeatures * m < NativeSerialWork)))
            return linears.Select(l => l.Forward(x)).ToArray();

        var outputs = new Tensor[linears.Length];
        var y = new nint[linears.Length];
        for (int i = 0; i < outputs.Length; i++)
        {
            var shape = x.Shape.ToArray();
            shape[^1] = weights[i]!.OutFeatures;
            outputs[i] = Tensor.Empty(shape);
            y[i] = (nint)outputs[i].DataPointer;
        }
        float* xp = x.DataPointer;
        if (rows) RowSplit.Run(xp, m, weights.Cast<IRowRangeWeight>().ToArray(), y);
        else SpinPool.For(outputs.Length, i => weights[i]!.MatMulTransposed(xp, m, null, (float*)y[i]));
        return outputs;
    }
}
