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

    /// <summary>x (..., in) -> (..., out)</summary>
    public override Tensor Forward(Tensor x) => Functional.Linear(x, Weight, Bias, _compute);

    /// <summary>The weight as the fp16 operands of an output head fused with its loss (nq_linear_cross_entropy_pack,
    /// about the fp32 weight's size), or null where that does not apply: the weight is trainable, the compute type
    /// is not F16, or the CPU has no AVX512-FP16. Built on first use and kept: converting a GPT-2-small head twice per
    /// step was 5% of it. A frozen weight is taken to be immutable from then on, as bitsandbytes takes a quantized
    /// one; <see cref="Module.LoadStateDict"/> and <see cref="ReleasePackedHead"/> drop the copy, and
    /// <see cref="PackHead"/> = false trades the speed (~10% of the head's time) back for the memory.</summary>
    public NativeBuffer? PackedHead()
    {
        int v = OutFeatures, c = InFeatures;
        ulong bytes = 0;  // stays 0 where packing does not apply (also once the ISA is capped below AVX512-FP16)
        if (PackHead && !Weight.RequiresGrad && _compute == NqComputeType.F16)
            Nq.Check(NativeMethods.nq_linear_cross_entropy_pack_bytes(v, c, _compute, &bytes));
        if (bytes == 0)
        {
            ReleasePackedHead();
            return null;
        }
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
            Nq.Check(NativeMethods.nq_linear_cross_entropy_pack(Weight.DataPointer, v, c, _compute, packed.Pointer, bytes));
        }
        catch
        {
            packed.Dispose();
            throw;
        }
        return _packedHead = packed;
    }
    private NativeBuffer? _packedHead;
    private bool _packFailed;  // no memory for it: not retried every step

    /// <summary>Whether <see cref="PackedHead"/> may build its copy (default true).</summary>
    public bool PackHead { get; set; } = true;

    /// <summary>Bytes held by <see cref="PackedHead"/> (0 when none is built).</summary>
    public long PackedHeadBytes => _packedHead?.Length ?? 0;

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
