using NativeQuant.IO;
using NativeQuant.NN;
using NativeQuant.Quantization;
using NativeQuant.Tensors;

namespace NativeQuant.Models;

/// <summary>
/// Parameters read from a checkpoint (memory-mapped, converted to fp32 one tensor at a time) with shape checks
/// that name the file and tensor; linear layers are quantized as they are read (see <see cref="WeightFactory"/>),
/// or, in a checkpoint saved pre-quantized by bitsandbytes (<paramref name="prequantized"/>), built from the stored
/// quantized tensors as they are (<see cref="BnbLayers"/>).
/// </summary>
public sealed class CheckpointWeights(ITensorSource source, QuantConfig quant, Action<string, Tensor>? fixup = null,
                                      Func<string, string>? rename = null, BnbQuantizationConfig? prequantized = null) : WeightFactory(quant)
{
    protected override bool Prequantized => prequantized != null;

    protected override Module<Tensor, Tensor>? StoredQuantized(string name, int inFeatures, int outFeatures, Func<Parameter?> bias) =>
        prequantized == null ? null : BnbLayers.Read(source, (rename?.Invoke(name) ?? name) + ".weight", outFeatures, inFeatures, prequantized, bias);

    private readonly List<IDisposable> _created = new();

    /// <summary>Frees everything built so far (the loader calls this when a later tensor fails to load).</summary>
    public void DisposeCreated()
    {
        foreach (var d in _created) d.Dispose();
        _created.Clear();
    }

    protected override void Created(IDisposable built) => _created.Add(built);

    protected override Tensor Create(string name, int[] shape, InitKind init)
    {
        var info = source.Get(rename?.Invoke(name) ?? name);
        if (info.Shape.Count != shape.Length || !info.Shape.Select(d => (int)d).SequenceEqual(shape))
            throw new InvalidDataException($"{source.SourcePath}: tensor '{name}' has shape {info.ShapeText}, but the model config implies [{string.Join(", ", shape)}]");
        if (!info.DType.IsFloating())
            throw new InvalidDataException($"{source.SourcePath}: tensor '{name}' has dtype {info.DType.SafeTensorsName()}, expected a floating-point type");
        var t = TensorScope.Unscoped(() => Tensor.Empty(shape));
        try
        {
            TensorConvert.ToFloat32(info.DType, info.Data, t.Data);
            fixup?.Invoke(name, t);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }
}
