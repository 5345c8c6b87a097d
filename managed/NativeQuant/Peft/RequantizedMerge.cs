using System.Numerics.Tensors;
using NativeQuant.Interop;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Tensors;
using Tensor = NativeQuant.Tensors.Tensor;

namespace NativeQuant.Peft;

/// <summary>The merged model with its linear layers quantized in <paramref name="Format"/>, the requantization
/// error of every layer quantized anew (vs its merged fp32 weight) and their pooled total.</summary>
public sealed record RequantizedMergeResult(Module Model, QuantConfig Format, IReadOnlyList<MergeRoundingError> Errors, MergeRoundingError Total);

/// <summary>
/// Merge for a quantized output (`nq merge --requantize`): every LoRA layer is merged in fp32 into its base
/// weight (dequantized when the base is quantized, so the update is rounded once, into the output format), then
/// quantized, one layer at a time. Which layers end up quantized follows the base: those it held quantized, or, for
/// an unquantized base, every linear layer but the output head (as transformers quantizes). Base layers the adapter
/// did not touch that are already in the output format are kept byte for byte; others are requantized and reported.
/// </summary>
public static class RequantizedMerge
{
    /// <param name="format">Output format; null means the base's own (an error when the base is unquantized).</param>
    public static RequantizedMergeResult Apply(PeftModel peft, QuantConfig? format)
    {
        var model = peft.Model;
        var baseFormat = model.NamedModules().Select(m => FormatOf(m.Module)).FirstOrDefault(f => f != null);
        format ??= baseFormat ?? throw new ArgumentException("the base model is not quantized: name the output format (nf4, fp4 or int8)");
        if (format.Type == QuantType.None) throw new ArgumentException("the output format must be nf4, fp4 or int8", nameof(format));

        var errors = new List<MergeRoundingError>();
        var merged = new HashSet<string>(StringComparer.Ordinal);
        // One layer at a time, so the fp32 copies never exceed one layer: dequantize, add scaling·B·A, quantize.
        foreach (var (path, layer) in peft.BaseModel.LoraLayers().ToList())
        {
            var baseLayer = layer.BaseLayer;
            if (baseFormat == null ? path == LoraModel.OutputHead : FormatOf(baseLayer) == null) continue;  // stays fp32: merged below
            using var delta = TensorScope.Unscoped(layer.DeltaWeight);
            using var w = LinearLayers.WeightOutIn(baseLayer);
            TensorPrimitives.Add(w.Data, delta.Data, w.Data);
            errors.Add(Requantize(model, path, w, baseLayer, format, MergeRoundingError.RootMeanSquare(delta.Data)));
            merged.Add(path);
        }
        var result = peft.MergeAndUnload().Model;  // merges the LoRA layers left (fp32 ones staying fp32)

        foreach (var (path, layer) in result.NamedModules().ToList())
        {
            bool quantize = !merged.Contains(path) && (baseFormat == null
                ? LinearLayers.IsLinear(layer) && path != LoraModel.OutputHead
                : FormatOf(layer) is { } f && !SameStorage(f, format));
            if (!quantize) continue;
            using var w = LinearLayers.WeightOutIn(layer);
            errors.Add(Requantize(result, path, w, layer, format, updateRms: 0));
        }
        return new RequantizedMergeResult(result, format, errors, MergeRoundingError.Total(errors));
    }

    /// <summary>Puts <paramref name="w"/> (out, in) quantized in <paramref name="format"/>, with
    /// <paramref name="baseLayer"/>'s bias, at <paramref name="path"/>, disposing what was there, and measures the rounding.</summary>
    private static MergeRoundingError Requantize(Module model, string path, Tensor w, Module baseLayer, QuantConfig format, double updateRms)
    {
        var quantized = WeightFactory.QuantizedLayer(w, SharedBias(baseLayer), format);
        MergeRoundingError error;
        using (var back = LinearLayers.WeightOutIn(quantized)) error = MergeRoundingError.Measure(path, w.Data, back.Data, updateRms);
        model.SetSubmodule(path, quantized).Dispose();
        return error;
    }

    /// <summary>Whether two formats store weights identically (the int8 outlier threshold is a compute setting).</summary>
    private static bool SameStorage(QuantConfig a, QuantConfig b) =>
        a.Type == b.Type && (a.Type == QuantType.Int8 || (a.DoubleQuant == b.DoubleQuant && a.BlockSize == b.BlockSize));

    /// <summary>The on-load settings that produce <paramref name="m"/>'s format, or null for a non-quantized layer.</summary>
    private static QuantConfig? FormatOf(Module m) => m switch
    {
        Linear4bit q => new QuantConfig(q.Type == NqQuant4Type.Nf4 ? QuantType.Nf4 : QuantType.Fp4, q.DoubleQuant, q.BlockSize),
        Linear8bitLt q => new QuantConfig(QuantType.Int8, Int8Threshold: q.Threshold),
        _ => null,
    };

    /// <summary>A parameter over the same storage as the layer's bias (which goes when the layer is disposed).</summary>
    private static Parameter? SharedBias(Module m) => LinearLayers.Bias(m) is { } b ? new Parameter(b, b.RequiresGrad) : null;
}
