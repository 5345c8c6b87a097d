using NativeQuant.Tensors;

namespace NativeQuant.Models.Llama;

/// <summary>
/// Meta / llama2.c q and k weights rotate row pairs (2i, 2i+1) of each head; HF's converter permutes them so that
/// rows (i, i + D/2) pair up for rotate_half. Loading llama2.c weights through this permutation gives a model in
/// the HF layout (so adapters keyed on HF names and shapes transfer) that computes exactly the same function.
/// </summary>
public static class RopePermutation
{
    /// <summary>A loader fixup permuting q_proj/k_proj weight rows from interleaved to rotate-half order.</summary>
    public static Action<string, Tensor> ToRotateHalf(LlamaConfig c) => (name, t) =>
    {
        if (name.EndsWith(".self_attn.q_proj.weight", StringComparison.Ordinal)) Permute(t, c.NumAttentionHeads);
        else if (name.EndsWith(".self_attn.k_proj.weight", StringComparison.Ordinal)) Permute(t, c.NumKeyValueHeads);
    };

    /// <summary>In place: HF row (h, p*D/2 + i) = Meta row (h, 2i + p) for a weight (heads*D, in).</summary>
    public static void Permute(Tensor w, int heads)
    {
        int rows = w.Size(0), cols = w.Size(1), d = rows / heads, half = d / 2;
        var data = w.Data;
        var head = new float[d * cols];
        for (int h = 0; h < heads; h++)
        {
            var block = data.Slice(h * d * cols, d * cols);
            block.CopyTo(head);
            for (int i = 0; i < half; i++)
                for (int p = 0; p < 2; p++)
                    head.AsSpan((2 * i + p) * cols, cols).CopyTo(block.Slice((p * half + i) * cols, cols));
        }
    }
}
