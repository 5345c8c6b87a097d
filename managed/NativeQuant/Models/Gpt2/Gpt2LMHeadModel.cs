using NativeQuant.Autograd;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Models.Gpt2;

/// <summary>wte, wpe, blocks h.*, ln_f (HF GPT2Model).</summary>
public sealed class Gpt2Model : Module
{
    public Gpt2Model(Gpt2Config c, WeightFactory w)
    {
        RegisterModule("wte", new Embedding(w.Parameter("transformer.wte.weight", [c.VocabSize, c.NEmbd], InitKind.Normal)));
        RegisterModule("wpe", new Embedding(w.Parameter("transformer.wpe.weight", [c.NPositions, c.NEmbd], InitKind.Normal)));
        RegisterModule("h", new ModuleList<Gpt2Block>(Enumerable.Range(0, c.NLayer).Select(i => new Gpt2Block(c, i, w))));
        RegisterModule("ln_f", Gpt2Block.NewLayerNorm(c, "transformer.ln_f", w));
    }

    public Embedding Wte => Child<Embedding>("wte");
    public Embedding Wpe => Child<Embedding>("wpe");
    public ModuleList<Gpt2Block> H => Child<ModuleList<Gpt2Block>>("h");
    public LayerNorm LnF => Child<LayerNorm>("ln_f");
}

/// <summary>GPT-2 with its head tied to wte (HF GPT2LMHeadModel).</summary>
public sealed class Gpt2LMHeadModel : CausalLM
{
    public Gpt2LMHeadModel(Gpt2Config config, WeightFactory weights)
    {
        Config = config;
        var t = RegisterModule("transformer", new Gpt2Model(config, weights));
        RegisterModule("lm_head", weights.TiedHead(t.Wte.Weight));
    }

    public Gpt2Config Config { get; }
    public Gpt2Model Transformer => Child<Gpt2Model>("transformer");
    public override int VocabSize => Config.VocabSize;
    public override int MaxPositions => Config.NPositions;
    public override int NumLayers => Config.NLayer;
    public override int NumKeyValueHeads => Config.NHead;
    public override int HeadDim => Config.HeadDim;

    protected override Tensor Hidden(Tensor ids, int startPos, KVCache? cache)
    {
        var tr = Transformer;
        int b = ids.Size(0), t = ids.Size(1);
        var positions = Tensor.Empty([b, t], DType.Int32);  // (B,T)
        var ps = positions.AsSpan<int>();
        for (int i = 0; i < ps.Length; i++) ps[i] = startPos + i % t;
        var h = Functional.Add(tr.Wte.Forward(ids), tr.Wpe.Forward(positions));  // (B,T,C)
        var blocks = tr.H;
        for (int i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i];
            h = RunBlock(block, x => block.Forward(x, startPos, cache), h, cache);
        }
        return tr.LnF.Forward(h);
    }

}
