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

    /// <summary>True when the source stores its linear layers already quantized (bitsandbytes): the layers it
    /// stores unquantized are those bitsandbytes skipped, and stay so.</summary>
    protected virtual bool Prequantized => false;

    /// <summary>The linear "name" built from its stored quantized weight (out, in) — bitsandbytes stores GPT-2
    /// Conv1D weights transposed like Linear ones — or null when the source stores it unquantized.</summary>
    protected virtual Module<Tensor, Tensor>? StoredQuantized(string name, int inFeatures, int outFeatures, Func<Parameter?> bias) => null;

    /// <summary>Whether a layer stored unquantized is quantized now: transformers leaves the output head in full
    /// precision (unless <see cref="QuantConfig.QuantizeHead"/>), and a pre-quantized checkpoint's other fp layers.</summary>
    private bool QuantizeOnLoad(string name) =>
        _quant.Type != QuantType.None && (name == "lm_head" ? _quant.QuantizeHead : !Prequantized);

    /// <summary>A linear layer "name" (weight (out, in) at name.weight), possibly quantized.</summary>
    public Module<Tensor, Tensor> Linear(string name, int inFeatures, int outFeatures, bool bias)
    {
        Parameter? Bias() => bias ? Parameter(name + ".bias", [outFeatures], InitKind.Zeros) : null;
        if (StoredQuantized(name, inFeatures, outFeatures, Bias) is { } stored) return Adopt(stored);
        if (!QuantizeOnLoad(name))
        {
            var linear = new Linear(Parameter(name + ".weight", [outFeatures, inFeatures], InitKind.Normal), Bias());
            return name == "lm_head" ? FullPrecisionHead(linear) : linear;
        }
        using var w = Create(name + ".weight", [outFeatures, inFeatures], InitKind.Normal);
        return Quantize(w, Bias());
    }

    /// <summary>The output head sharing <paramref name="embedding"/> (vocab, hidden) as its weight.</summary>
    public Module<Tensor, Tensor> TiedHead(Parameter embedding)
    {
        if (_quant.Type == QuantType.None || !_quant.QuantizeHead) return FullPrecisionHead(new Linear(embedding));
        return Adopt(new TiedQuantizedHead(embedding, QuantizedLayer(embedding, null, _quant)));
    }

    // A 4-bit model's fp32 head computes in the 4-bit layers' compute dtype, as under torch.autocast in QLoRA
    // training (transformers keeps lm_head unquantized; prepare_model_for_kbit_training casts it to fp32); with Int8
    // its logits compute in F16 and only the fused training loss in Int8 (per-block scales keep the softmax gradient).
    private Linear FullPrecisionHead(Linear head)
    {
        if (_quant.Type is QuantType.Nf4 or QuantType.Fp4)
        {
            head.ComputeDtype = _quant.FloatCompute;
            if (_quant.Compute == NqComputeType.Int8) head.LossComputeDtype = NqComputeType.Int8;
        }
        head.PackHead = _quant.PackHead;
        return head;
    }

    /// <summary>A GPT-2 Conv1D "name" (weight (in, out)).</summary>
    public Module<Tensor, Tensor> Conv1D(string name, int inFeatures, int outFeatures)
    {
        Parameter Bias() => Parameter(name + ".bias", [outFeatures], InitKind.Zeros);
        if (StoredQuantized(name, inFeatures, outFeatures, Bias) is { } stored) return Adopt(stored);
        if (!QuantizeOnLoad(name))
            return new Conv1D(Parameter(name + ".weight", [inFeatures, outFeatures], InitKind.Normal), Bias());
        // Quantized layers hold W (out, in) like bitsandbytes, which also transposes Conv1D weights.
        using var w = Create(name + ".weight", [inFeatures, outFeatures], InitKind.Normal);
        using var wt = TensorScope.Unscoped(() =>
        {
            using var view = w.TransposeView(0, 1);
            return view.Contiguous();
        });
        return Quantize(wt, Bias());
    }

    private Module<Tensor, Tensor> Quantize(Tensor w, Parameter? bias) => Adopt(QuantizedLayer(w, bias, _quant));

    private Module<Tensor, Tensor> Adopt(Module<Tensor, Tensor> m)
    {
        Created(m);
        return m;
    }

    /// <summary>A quantized layer of fp32 weight <paramref name="w"/> (out, in) in <paramref name="quant"/>'s
    /// format; the caller keeps ownership of <paramref name="w"/>.</summary>
    public static Module<Tensor, Tensor> QuantizedLayer(Tensor w, Parameter? bias, QuantConfig quant) => quant.Type switch
    {
        QuantType.Nf4 => new Linear4bit(w, bias, NqQuant4Type.Nf4, quant.BlockSize, quant.DoubleQuant) { ComputeDtype = quant.Compute },
        QuantType.Fp4 => new Linear4bit(w, bias, NqQuant4Type.Fp4, quant.BlockSize, quant.DoubleQuant) { ComputeDtype = quant.Compute },
        QuantType.Int8 => new Linear8bitLt(w, bias, quant.Int8Threshold),
        _ => throw new ArgumentOutOfRangeException(nameof(quant), quant.Type, "unknown quantization type"),
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
