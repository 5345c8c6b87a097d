using NativeQuant.Interop;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Models;

/// <summary>How a freshly built parameter is initialised when it does not come from a checkpoint.</summary>
public enum InitKind
{
    Normal,
    Ones,
    Zeros,
}

/// <summary>
/// Supplies a model's parameters and linear layers by their HF names while the model is being built, so a
/// checkpoint can stream in (and be quantized) layer by layer and a from-scratch model gets seeded init.
/// Linear layers are quantized as their fp32 weight is produced when <paramref name="quant"/> asks for it, so
/// peak memory stays at the quantized model plus one fp32 layer.
/// </summary>
public abstract class WeightFactory(QuantConfig? quant = null)
{
    private readonly QuantConfig _quant = quant ?? QuantConfig.None;

    /// <summary>The fp32 tensor <paramref name="name"/> with exactly <paramref name="shape"/> (owned by the caller).</summary>
    protected abstract Tensor Create(string name, int[] shape, InitKind init);

    /// <summary>Called with every parameter and quantized layer built (so a failed load can free them).</summary>
    protected virtual void Created(IDisposable built) { }

    /// <summary>An fp32 parameter called <paramref name="name"/> with exactly <paramref name="shape"/>.</summary>
    public Parameter Parameter(string name, int[] shape, InitKind init)
    {
        using var t = Create(name, shape, init);
        var p = new Parameter(t);
        Created(p);
        return p;
    }

    /// <summary>Layers kept in full precision even when quantizing (transformers skips the output head too,
    /// unless <see cref="QuantConfig.QuantizeHead"/>).</summary>
    private bool KeepFullPrecision(string name) => name is "lm_head" && !_quant.QuantizeHead;

    /// <summary>A linear layer "name" (weight (out, in) at name.weight), possibly quantized.</summary>
    public Module<Tensor, Tensor> Linear(string name, int inFeatures, int outFeatures, bool bias)
    {
        Parameter? Bias() => bias ? Parameter(name + ".bias", [outFeatures], InitKind.Zeros) : null;
        if (_quant.Type == QuantType.None || KeepFullPrecision(name))
            return new Linear(Parameter(name + ".weight", [outFeatures, inFeatures], InitKind.Normal), Bias());
        using var w = Create(name + ".weight", [outFeatures, inFeatures], InitKind.Normal);
        return Quantize(w, Bias());
    }

    /// <summary>The output head sharing <paramref name="embedding"/> (vocab, hidden) as its weight.</summary>
    public Module<Tensor, Tensor> TiedHead(Parameter embedding)
    {
        if (_quant.Type == QuantType.None || !_quant.QuantizeHead) return new Linear(embedding);
        var head = new TiedQuantizedHead(embedding, QuantizedLayer(embedding, null));
        Created(head);
        return head;
    }

    /// <summary>A GPT-2 Conv1D "name" (weight (in, out)).</summary>
    public Module<Tensor, Tensor> Conv1D(string name, int inFeatures, int outFeatures)
    {
        if (_quant.Type == QuantType.None)
            return new Conv1D(Parameter(name + ".weight", [inFeatures, outFeatures], InitKind.Normal),
                              Parameter(name + ".bias", [outFeatures], InitKind.Zeros));
        // Quantized layers hold W (out, in) like bitsandbytes, which also transposes Conv1D weights.
        using var w = Create(name + ".weight", [inFeatures, outFeatures], InitKind.Normal);
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
        Created(m);
        return m;
    }

    private Module<Tensor, Tensor> QuantizedLayer(Tensor w, Parameter? bias) => _quant.Type switch
    {
        QuantType.Nf4 => new Linear4bit(w, bias, NqQuant4Type.Nf4, _quant.BlockSize, _quant.DoubleQuant),
        QuantType.Fp4 => new Linear4bit(w, bias, NqQuant4Type.Fp4, _quant.BlockSize, _quant.DoubleQuant),
        QuantType.Int8 => new Linear8bitLt(w, bias, _quant.Int8Threshold),
        _ => throw new ArgumentOutOfRangeException(nameof(quant), _quant.Type, "unknown quantization type"),
    };
}

/// <summary>Seeded N(0, std) weights, ones for norm scales, zeros for biases (GPT-2 / LLaMA init), quantized per
/// <paramref name="quant"/> (benchmarks build a quantized model of any shape without a checkpoint).</summary>
public sealed class RandomWeights(int seed, float std = 0.02f, QuantConfig? quant = null) : WeightFactory(quant)
{
    private readonly Random _rng = new(seed);

    protected override Tensor Create(string name, int[] shape, InitKind init) => TensorScope.Unscoped(() => init switch
    {
        InitKind.Normal => Tensor.RandN(shape, _rng, std),
        InitKind.Ones => Tensor.Full(shape, 1f),
        _ => Tensor.Full(shape, 0f),
    });
}
