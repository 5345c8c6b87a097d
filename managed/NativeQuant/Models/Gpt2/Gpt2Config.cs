namespace NativeQuant.Models.Gpt2;

/// <summary>Hyper-parameters of a GPT-2-family model (field meanings as HF's GPT2Config).</summary>
public sealed record Gpt2Config(int VocabSize, int NPositions, int NEmbd, int NLayer, int NHead, float LayerNormEpsilon = 1e-5f)
{
    public int HeadDim => NEmbd / NHead;
    /// <summary>n_inner: HF's default MLP width is 4 * n_embd.</summary>
    public int NInner { get; init; } = 4 * NEmbd;

    public void Validate(string source)
    {
        void Require(bool ok, string field, string expected)
        {
            if (!ok) throw new InvalidDataException($"{source}: {field} {expected}");
        }
        Require(VocabSize > 0, "vocab_size", $"must be positive, got {VocabSize}");
        Require(NEmbd > 0 && NHead > 0 && NEmbd % NHead == 0, "n_embd", $"({NEmbd}) must be a positive multiple of n_head ({NHead})");
        Require(NLayer > 0, "n_layer", $"must be positive, got {NLayer}");
        Require(NPositions > 0, "n_positions", $"must be positive, got {NPositions}");
        Require(NInner > 0, "n_inner", $"must be positive, got {NInner}");
    }
}
