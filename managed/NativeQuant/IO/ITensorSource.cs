namespace NativeQuant.IO;

/// <summary>
/// A read-only collection of named tensors (a safetensors file, a llama2.c checkpoint, an HF directory),
/// memory-mapped and exposed without copying. The model loader consumes this; disposing unmaps the data.
/// </summary>
public interface ITensorSource : IDisposable
{
    /// <summary>File or directory the tensors come from (used in error messages).</summary>
    string SourcePath { get; }

    /// <summary>Tensor names in a deterministic order (file order or sorted).</summary>
    IReadOnlyList<string> Names { get; }

    bool TryGet(string name, out TensorInfo tensor);

    /// <summary>
    /// True when q_proj/k_proj rows are stored in the interleaved RoPE order of llama2.c (pairs (2i, 2i+1)
    /// rotate together) rather than HF's half-split order; the model code picks the rotation accordingly.
    /// </summary>
    bool InterleavedRope { get; }

    /// <summary>Free-form string metadata (safetensors __metadata__); empty when the format has none.</summary>
    IReadOnlyDictionary<string, string> Metadata { get; }

    bool IsDisposed { get; }
}

public static class TensorSourceExtensions
{
    /// <summary>The tensor called <paramref name="name"/>, or an error naming the source and the tensor.</summary>
    public static TensorInfo Get(this ITensorSource source, string name) =>
        source.TryGet(name, out var t)
            ? t
            : throw new InvalidDataException($"{source.SourcePath}: no tensor named '{name}'");
}
