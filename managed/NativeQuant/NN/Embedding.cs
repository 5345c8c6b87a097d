using NativeQuant.Autograd;
using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>Lookup table weight (num_embeddings, embedding_dim), as torch.nn.Embedding.</summary>
public sealed class Embedding : Module<Tensor, Tensor>
{
    public Embedding(Parameter weight)
    {
        if (weight.Rank != 2) throw new ArgumentException($"Embedding: weight must be 2-D, got {weight.ShapeString}");
        Weight = RegisterParameter("weight", weight);
    }

    public Parameter Weight { get; }
    public int NumEmbeddings => Weight.Size(0);
    public int EmbeddingDim => Weight.Size(1);

    /// <summary>ids (...) int32 -> (..., dim)</summary>
    public override Tensor Forward(Tensor ids) => Functional.Embedding(ids, Weight);
}
