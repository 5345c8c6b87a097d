using NativeQuant.Interop;
using NativeQuant.IO;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Models;

/// <summary>
/// Parameters read from a checkpoint (memory-mapped, converted to fp32 one tensor at a time) with shape checks
/// that name the file and tensor; linear layers are quantized as they are read when a <see cref="QuantConfig"/>
/// asks for it, so peak memory stays at the quantized model plus one fp32 layer.
/// </summary>
public sealed class CheckpointWeights(ITensorSource source, QuantConfig quant, Action<string, Tensor>? fixup = null,
                                      Func<string, string>? rename = null) : WeightFactory
{
    private readonly List<IDisposable> _created = new();

    /// <summary>Frees everything built so far (the loader calls this when a later tensor fails to load).</summary>
    public void DisposeCreated()
    {
        foreach (var d in _created) d.Dispose();
        _created.Clear();
    }

    /// <summary>Layers kept in full precision even when quantizing (transformers skips the output head too,
    /// unless <see cref="QuantConfig.QuantizeHead"/>).</summary>
    private bool KeepFullPrecision(string name) => name is "lm_head" && !quant.QuantizeHead;

    public override Parameter Parameter(string name, int[] shape, InitKind init)
    {
        using var t = Read(name, shape);
        var p = new Parameter(t);
        _created.Add(p);
        return p;
    }

    /// <summary>The fp32 tensor <paramref name="name"/>, checked against <paramref name="shape"/> (owned by the caller).</summary>
    public Tensor Read(string name, int[] shape)
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

    public override Module<Tensor, Tensor> Linear(string name, int inFeatures, int outFeatures, bool bias)
    {
        if (quant.Type == QuantType.None || KeepFullPrecision(name)) return base.Linear(name, inFeatures, outFeatures, bias);
        using var w = Read(name + ".weight", [outFeatures, inFeatures]);
        return Quantize(w, bias ? Parameter(name + ".bias", [outFeatures], InitKind.Zeros) : null);
    }

    public override Module<Tensor, Tensor> TiedHead(Parameter embedding)
    {
        if (quant.Type == QuantType.None || !quant.QuantizeHead) return base.TiedHead(embedding);
        var head = new TiedQuantizedHead(embedding, QuantizedLayer(embedding, null));
        _created.Add(head);
        return head;
    }

    public override Module<Tensor, Tensor> Conv1D(string name, int inFeatures, int outFeatures)
    {
        if (quant.Type == QuantType.None) return base.Conv1D(name, inFeatures, outFeatures);
        // Quantized layers hold W (out, in) like bitsandbytes, which also transposes Conv1D weights.
        using var w = Read(name + ".weight", [inFeatures, outFeatures]);
        using var wt = TensorScope.Unscoped(() =>
        {
            using var view = w.TransposeView(0, 1);
            return view.Contiguous();
        });
        return Quantize(wt, Parameter(name + ".bias", [outFeatures], InitKind.Zeros));
    }

    private Module<Tensor, Tensor> Quantize(Tensor w, Parameter? bias)
    {
        var m = QuantizedLayer(w, bias);
        _created.Add(m);
        return m;
    }

    private Module<Tensor, Tensor> QuantizedLayer(Tensor w, Parameter? bias) => quant.Type switch
    {
        QuantType.Nf4 => new Linear4bit(w, bias, NqQuant4Type.Nf4, quant.BlockSize, quant.DoubleQuant),
        QuantType.Fp4 => new Linear4bit(w, bias, NqQuant4Type.Fp4, quant.BlockSize, quant.DoubleQuant),
        QuantType.Int8 => new Linear8bitLt(w, bias, quant.Int8Threshold),
        _ => throw new ArgumentOutOfRangeException(nameof(quant), quant.Type, "unknown quantization type"),
    };
}
