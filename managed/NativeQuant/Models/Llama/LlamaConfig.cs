using NativeQuant.Autograd;

namespace NativeQuant.Models.Llama;

/// <summary>Hyper-parameters of a LLaMA-family model (field meanings as HF's LlamaConfig).</summary>
public sealed record LlamaConfig(
    int VocabSize,
    int HiddenSize,
    int IntermediateSize,
    int NumHiddenLayers,
    int NumAttentionHeads,
    int NumKeyValueHeads,
    int MaxPositionEmbeddings,
    float RmsNormEps = 1e-5f,
    float RopeTheta = 10000f,
    bool TieWordEmbeddings = false,
    RopeStyle RopeStyle = RopeStyle.RotateHalf)
{
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Throws naming the field when the values cannot describe a model.</summary>
    public void Validate(string source)
    {
        void Require(bool ok, string field, string expected)
        {
            if (!ok) throw new InvalidDataException($"{source}: {field} {expected}");
        }
        Require(VocabSize > 0, "vocab_size", $"must be positive, got {VocabSize}");
        Require(HiddenSize > 0 && NumAttentionHeads > 0 && HiddenSize % NumAttentionHeads == 0, "hidden_size",
                $"({HiddenSize}) must be a positive multiple of num_attention_heads ({NumAttentionHeads})");
        Require(HeadDim % 2 == 0, "hidden_size / num_attention_heads", $"must be even for rotary embeddings, got {HeadDim}");
        Require(NumKeyValueHeads > 0 && NumAttentionHeads % NumKeyValueHeads == 0, "num_key_value_heads",
                $"({NumKeyValueHeads}) must divide num_attention_heads ({NumAttentionHeads})");
        Require(IntermediateSize > 0, "intermediate_size", $"must be positive, got {IntermediateSize}");
        Require(NumHiddenLayers > 0, "num_hidden_layers", $"must be positive, got {NumHiddenLayers}");
        Require(MaxPositionEmbeddings > 0, "max_position_embeddings", $"must be positive, got {MaxPositionEmbeddings}");
    }
}
