using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>y = x Wᵀ + b with weight (out_features, in_features), as torch.nn.Linear.</summary>
public sealed unsafe class Linear : Module<Tensor, Tensor>
{
    public Linear(Parameter weight, Parameter? bias = null)
    {
        if (weight.Rank != 2) throw new ArgumentException($"Linear: weight must be 2-D, got {weight.ShapeString}");
        RegisterParameter("weight", weight);
        if (bias != null) RegisterParameter("bias", bias);
        Weight = weight;
        Bias = bias;
    }

    /// <summary>PyTorch's default init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.</summary>
    public Linear(int inFeatures, int outFeatures, bool bias, Random rng)
        : this(Init.Uniform([outFeatures, inFeatures], 1f / MathF.Sqrt(inFeatures), rng),
               bias ? Init.Uniform([outFeatures], 1f / MathF.Sqrt(inFeatures), rng) : null) { }

    public Parameter Weight { get; }
    public Parameter? Bias { get; }
    public int InFeatures => Weight.Size(1);
    public int OutFeatures => Weight.Size(0);

    /// <summary>Precision of the forward and dX products (dW stays fp32), as torch.autocast would run this layer:
    /// F32 (default), F16 or BF16 (see nq_gemm_f32_compute). A QLoRA model's full-precision output head takes the
    /// 4-bit layers' compute dtype: it is a third of a GPT-2-small training step's FLOPs.</summary>
    public NqComputeType ComputeDtype
    {
        get => _compute;
        set => _compute = QuantConfig.RequireFloatCompute(value, "Linear");
    }
    private NqComputeType _compute = NqComputeType.F32;

    /// <summary>Precision of the fused head-and-loss products a causal LM trains through
    /// (<see cref="Functional.LinearCrossEntropy"/>): null (default) = <see cref="ComputeDtype"/>, or any of F32, F16,
    /// BF16 and Int8 (exact int32 products with the softmax weights quantized per 384-entry block, see
    /// nq_linear_cross_entropy). Int8 applies while the weight is frozen; a trainable one computes in
    /// <see cref="ComputeDtype"/>.</summary>
    public NqComputeType? LossComputeDtype
    {
        get => _lossCompute;
        set
        {
            _lossCompute = value is null or NqComputeType.Int8 ? value : QuantConfig.RequireFloatCompute(value.Value, "Linear");
        }
    }
    private NqComputeType? _lossCompute;

    /// <summary>The precision <see cref="LossComputeDtype"/> resolves to now.</summary>
    public NqComputeType LossCompute =>
        _lossCompute is { } c && (c != NqComputeType.Int8 || !Weight.RequiresGrad) ? c : _compute;

    /// <summary>x (..., in) -> (..., out)</summary>
    public override Tensor Forward(Tensor x) => Functional.Linear(x, Weight, Bias, _compute);

    /// <summary>The weight as the fp16 or int8 operands of an output head fused with its loss
    /// (nq_linear_cross_entropy_pack, about the fp32 weight's size for fp16, half of it for int8), or null where that
    /// does not apply: the weight is trainable, <see cref="LossCompute"/> is not F16 or Int8, or the CPU has no
    /// AVX512-FP16 (F16) or AVX2 (Int8). Built on first use and kept: converting a GPT-2-small head twice per step
    /// was 5% of it. A frozen weight is taken to be immutable from then on, as bitsandbytes takes a quantized
    /// one; <see cref="Module.LoadStateDict"/> and <see cref="ReleasePackedHead"/> drop the copy, and
    /// <see cref="PackHead"/> = false trades the speed (~10% of the head's time) back for the memory.</summary>
    public NativeBuffer? PackedHead()
    {
        int v = OutFeatures, c = InFeatures;
        ulong bytes = 0;  // stays 0 where packing does not apply (also once the ISA is capped below the kernel's)
        var compute = LossCompute;
        if (PackHead && !Weight.RequiresGrad && compute is NqComputeType.F16 or NqComputeType.Int8)
            Nq.Check(NativeMethods.nq_linear_cross_entropy_pack_bytes(v, c, compute, &bytes));
        if (bytes == 0 || _packedFor != compute) ReleasePackedHead();  // (packed for another compute type)
        if (bytes == 0) return null;
        if (_packedHead != null || _packFailed) return _packedHead;
        NativeBuffer packed;
        try
        {
            packed = new NativeBuffer((long)bytes);
        }
        catch (NativeQuantException e) when (e.Status == NqStatus.ErrOutOfMemory)
        {
            _packFailed = true;  // an optional copy: run without it rather than fail the step
            return null;
        }
        try
        {
            Nq.Check(NativeMethods.nq_linear_cross_entropy_pack(Weight.DataPointer, v, c, compute, packed.Pointer, bytes));
        }
        catch
        {
            packed.Dispose();
            throw;
        }
        _packedFor = compute;
        return _packedHead = packed;
    }
    private NativeBuffer? _packedHead;
    private NqComputeType _packedFor;
    private bool _packFailed;  // no memory for it: not retried every step

    /// <summary>Whether <see cref="PackedHead"/> may build its copy (default true).</summary>
    public bool PackHead { get; set; } = true;

    /// <summary>Bytes held by <see cref="PackedHead"/> (0 when none is built).</summary>
    public long PackedHeadBytes => _packedHead?.Length ?? 0;

    /// <summary>The compute type the copy <see cref="PackedHead"/> holds was packed for.</summary>
    public NqComputeType PackedHeadCompute => _packedFor;

    /// <summary>Frees the packed head copy (rebuilt on the next use that needs it).</summary>
    public void ReleasePackedHead()
    {
        _packedHead?.Dispose();
        _packedHead = null;
    }

    protected internal override void OnStateLoaded() => ReleasePackedHead();

    public override void Dispose()
    {
        ReleasePackedHead();
        base.Dispose();
    }
}

/// <summary>HF's GPT-2 Conv1D: y = x W + b with weight (in_features, out_features).</summary>
public sealed class Conv1D : Module<Tensor, Tensor>
{
    public Conv1D(Parameter weight, Parameter bias)
    {
        if (weight.Rank != 2 || bias.Rank != 1 || bias.Size(0) != weight.Size(1))
            throw new ArgumentException($"Conv1D: weight (in, out) and bias (out) do not agree: {weight.ShapeString}, {bias.ShapeString}");
        Weight = RegisterParameter("weight", weight);
        Bias = RegisterParameter("bias", bias);
    }

    public Parameter Weight { get; }
    public Parameter Bias { get; }

    /// <summary>x (..., in) -> (..., out)</summary>
    public override Tensor Forward(Tensor x) => Functional.MatMul(x, Weight, Bias);
}
