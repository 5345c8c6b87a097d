using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Peft;

/// <summary>PEFT's prepare_model_for_kbit_training for this engine.</summary>
public static class KbitTraining
{
    /// <summary>
    /// Freezes every parameter, checks that the non-quantized ones (norms, embeddings, head) are fp32 — PEFT casts
    /// fp16/bf16 ones up; this engine loads them as fp32 already, so anything else is an error — and turns on
    /// gradient checkpointing for a <see cref="CausalLM"/>. PEFT's enable_input_require_grads is not needed here:
    /// <see cref="Autograd.Checkpoint"/> records a block whenever its parameters (the LoRA weights) require grad,
    /// even when its input does not, whereas torch's reentrant checkpoint needs a grad-requiring input.
    /// </summary>
    public static T PrepareForKbitTraining<T>(T model, bool useGradientCheckpointing = true) where T : Module
    {
        foreach (var (name, p) in model.NamedParameters())
        {
            if (p.DType != DType.Float32)
                throw new NotSupportedException($"PrepareForKbitTraining: parameter '{name}' is {p.DType}; norms, embeddings and the head must be fp32");
            p.RequiresGrad = false;
        }
        if (useGradientCheckpointing)
        {
            if (model is not CausalLM lm)
                throw new ArgumentException($"PrepareForKbitTraining: gradient checkpointing needs a CausalLM, got {model.GetType().Name} (pass useGradientCheckpointing: false)");
            lm.GradientCheckpointing = true;
        }
        return model;
    }
}
