using System.Numerics.Tensors;
using Tensor = NativeQuant.Tensors.Tensor;
using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

// Row lookup: token / position embeddings, and picking positions out of hidden states.
public static partial class Functional
{
    /// <summary>ids (...) int32 -> rows of weight (V, C): (..., C). Ids outside [0, V) are an error naming the id.</summary>
    public static Tensor Embedding(Tensor ids, Tensor weight) => GatherRows(ids, weight, "Embedding", "token id", "the vocabulary");

    /// <summary>torch.index_select(x, 0, index): x (N, C), index (K) int32 -> (K, C); the gradient scatters back
    /// (adding where an index repeats).</summary>
    public static Tensor IndexSelect(Tensor x, Tensor index) => GatherRows(index, x, "IndexSelect", "index", "the rows");

    private static Tensor GatherRows(Tensor ids, Tensor weight, string op, string what, string range)
    {
        ids.RequireDType(DType.Int32);
        RequireFloat(weight, op, nameof(weight));
        if (weight.Rank != 2) throw new ArgumentException($"{op}: the source must be (N, C), got {weight.ShapeString}");
        int v = weight.Size(0), c = weight.Size(1);
        var idSpan = ids.AsSpan<int>();
        foreach (int id in idSpan)
            if ((uint)id >= (uint)v) throw new ArgumentOutOfRangeException(nameof(ids), id, $"{op}: {what} {id} is outside {range} [0, {v})");
        var shape = new int[ids.Rank + 1];
        ids.Shape.CopyTo(shape);
        shape[^1] = c;
        var y = Tensor.Empty(shape);
        var w = weight.Data;
        var ys = y.Data;
        for (int i = 0; i < idSpan.Length; i++) w.Slice(idSpan[i] * c, c).CopyTo(ys.Slice(i * c, c));
        return Recording(weight) ? Record(y, new EmbeddingNode(ids, weight)) : y;
    }

    private sealed class EmbeddingNode(Tensor ids, Tensor weight) : Node([weight], [ids])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.For(weight) is not { } gw) return;
            int c = weight.Size(1);
            var idSpan = ids.AsSpan<int>();
            var gs = g.Data;
            var d = gw.Data;
            for (int i = 0; i < idSpan.Length; i++)
            {
                var row = d.Slice(idSpan[i] * c, c);
                TensorPrimitives.Add(row, gs.Slice(i * c, c), row);
            }
        }
    }
}
