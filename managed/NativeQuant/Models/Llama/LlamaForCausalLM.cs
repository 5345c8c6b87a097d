using NativeQuant.Autograd;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Models.Llama;

/// <summary>The LLaMA decoder stack without the head: embed_tokens, layers, norm (HF LlamaModel).</summary>
public sealed class LlamaModel : Module
{
    public LlamaModel(LlamaConfig c, WeightFactory w)
    {
        RegisterModule("embed_tokens", new Embedding(w.Parameter("model.embed_tokens.weight", [c.VocabSize, c.HiddenSize], InitKind.Normal)));
        RegisterModule("layers", new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new LlamaDecoderLayer(c, i, w))));
        RegisterModule("norm", new RMSNorm(w.Parameter("model.norm.weight", [c.HiddenSize], InitKind.Ones), c.RmsNormEps));
    }

    public Embedding EmbedTokens => Child<Embedding>("embed_tokens");
    public ModuleList<LlamaDecoderLayer> Layers => Child<ModuleList<LlamaDecoderLayer>>("layers");
    public RMSNorm Norm => Child<RMSNorm>("norm");
}

/// <summary>LLaMA with its language-model head (HF LlamaForCausalLM); the head may share the embedding.</summary>
public sealed class LlamaForCausalLM : CausalLM
{
    public LlamaForCausalLM(LlamaConfig config, WeightFactory weights)
    {
        Config = config;
        var model = RegisterModule("model", new LlamaModel(config, weights));
        RegisterModule("lm_head", config.TieWordEmbeddings
            ? weights.TiedHead(model.EmbedTokens.Weight)
            : weights.Linear("lm_head", config.HiddenSize, config.VocabSize, bias: false));
    }

    public LlamaConfig Config { get; }
    public LlamaModel Model => Child<LlamaModel>("model");
    public override int VocabSize => Config.VocabSize;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override int NumLayers => Config.NumHiddenLayers;
    public override int NumKeyValueHeads => Config.NumKeyValueHeads;
    public override int HeadDim => Config.HeadDim;

    protected override Tensor Hidden(Tensor ids, int startPos, KVCache? cache)
    {
        var model = Model;
        var h = model.EmbedTokens.Forward(ids);  // (B,T,C)
        var layers = model.Layers;
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            h = RunBlock(layer, x => layer.Forward(x, startPos, cache), h, cache);
        }
        return model.Norm.Forward(h);
    }

}
