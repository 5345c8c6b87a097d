using NativeQuant.IO;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Quantization;

/// <summary>
/// Linear4bit / Linear8bitLt built straight from bitsandbytes' serialized tensors (a pre-quantized Hugging Face
/// checkpoint) and written back in the same layout, byte for byte in both directions. bitsandbytes stores every
/// quantized weight as (out, in): transformers turns GPT-2's Conv1D (in, out) into Linear4bit/Linear8bitLt by
/// transposing before quantizing, and loads pre-quantized weights without transposing.
/// </summary>
public static class BnbLayers
{
    /// <summary>The layer whose weight <paramref name="weightName"/> (out, in) the source stores quantized, or
    /// null when it stores it unquantized. <paramref name="bias"/> is called only when a layer is built.</summary>
    public static Module<Tensor, Tensor>? Read(ITensorSource source, string weightName, int outFeatures, int inFeatures,
                                               BnbQuantizationConfig config, Func<Parameter?> bias)
    {
        string where = $"{source.SourcePath}: '{weightName}'";
        if (Quant4Tensor.FindStateTensor(source, weightName) != null)
        {
            var q = Quant4Tensor.Read(source, weightName);
            if (config.Type is not (QuantType.Nf4 or QuantType.Fp4) || BnbQuantState.TypeName(q.Type) != config.TypeName)
                throw new InvalidDataException($"{where} is stored {BnbQuantState.TypeName(q.Type)}, but {BnbQuantizationConfig.Field} says {config.TypeName}");
            RequireShape(where, q.Shape, outFeatures, inFeatures);
            if (!q.QuantMap.SequenceEqual(QuantKernels.Quant4Code(q.Type)))
                throw new InvalidDataException($"{where}.quant_map differs from bitsandbytes' {BnbQuantState.TypeName(q.Type)} table (a custom code table is not supported)");
            if (q.State.Nested && q.State.NestedBlocksize != Linear4bit.NestedBlockSize)
                throw new InvalidDataException($"{where}: nested_blocksize {q.State.NestedBlocksize} is not supported (expected {Linear4bit.NestedBlockSize})");
            return new Linear4bit(outFeatures, inFeatures, q.Type, q.Blocksize, q.Storage, bias()) { ComputeDtype = config.ComputeDtype };
        }
        if (source.TryGet(Int8RowwiseTensor.ModulePrefix(weightName) + ".SCB", out _))
        {
            if (config.Type != QuantType.Int8)
                throw new InvalidDataException($"{where} is stored int8 (it has an SCB), but {BnbQuantizationConfig.Field} says {config.TypeName}");
            RequireShape(where, source.Get(weightName).Shape.ToArray(), outFeatures, inFeatures);
            var (w, scb) = Int8RowwiseTensor.Read(source, weightName, [outFeatures, inFeatures]).Storage;
            return new Linear8bitLt(outFeatures, inFeatures, w, scb, bias(), config.Int8Threshold);
        }
        return null;
    }

    private static void RequireShape(string where, IReadOnlyList<long> shape, int outFeatures, int inFeatures)
    {
        if (shape.Count != 2 || shape[0] != outFeatures || shape[1] != inFeatures)
            throw new InvalidDataException($"{where} is stored quantized with shape [{string.Join(", ", shape)}], but the model config implies [{outFeatures}, {inFeatures}] (bitsandbytes stores quantized weights as (out, in), GPT-2 Conv1D included)");
    }

    /// <summary>The tensors bitsandbytes saves for a quantized layer's weight <paramref name="weightName"/>, or
    /// null for a layer that is not quantized.</summary>
    public static IReadOnlyList<QuantComponent>? Components(Module layer, string weightName) => layer switch
    {
        Linear4bit q => Quant4Tensor.FromStorage(q.Type, q.BlockSize, [q.OutFeatures, q.InFeatures], q.Storage(), "float32").Components(weightName),
        Linear8bitLt q when q.Storage() is var (w, scb) => Int8RowwiseTensor.FromStorage([q.OutFeatures, q.InFeatures], w, scb).Components(weightName),
        _ => null,
    };
}
