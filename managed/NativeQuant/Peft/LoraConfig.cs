namespace NativeQuant.Peft;

/// <summary>How lora_A / lora_B start (PEFT's <c>init_lora_weights</c>).</summary>
public enum LoraInit
{
    /// <summary>true: A kaiming-uniform(a=√5) as torch.nn.Linear, B zeros — the adapter starts as a no-op.</summary>
    Default,
    /// <summary>"gaussian": A ~ N(0, 1/r), B zeros.</summary>
    Gaussian,
    /// <summary>false: A and B both kaiming-uniform (not a no-op; for tests and debugging).</summary>
    Random,
}

/// <summary>
/// LoRA hyper-parameters; field meanings and defaults mirror PEFT's <c>LoraConfig</c> (r=8, lora_alpha=8,
/// lora_dropout=0, bias "none"). <see cref="Validate"/> rejects values PEFT would reject, naming the field.
/// </summary>
public sealed record LoraConfig
{
    public const string PeftType = "LORA";
    public const string CausalLmTaskType = "CAUSAL_LM";
    public static readonly string[] BiasValues = ["none", "all", "lora_only"];

    public int R { get; init; } = 8;
    public float LoraAlpha { get; init; } = 8;
    public float LoraDropout { get; init; }
    public TargetModules? TargetModules { get; init; }
    /// <summary>"none", "all" (every bias in the model trains) or "lora_only" (biases of wrapped layers).</summary>
    public string Bias { get; init; } = "none";
    /// <summary>Rank-stabilised scaling alpha/√r instead of alpha/r.</summary>
    public bool UseRslora { get; init; }
    public LoraInit InitLoraWeights { get; init; } = LoraInit.Default;
    /// <summary>Modules (matched like list-form target modules) whose parameters train fully and are saved
    /// with the adapter, e.g. ["lm_head"].</summary>
    public IReadOnlyList<string>? ModulesToSave { get; init; }
    /// <summary>PEFT's flag for weights stored (in, out) (GPT-2's Conv1D). Kept for the file format; this engine
    /// knows each layer's layout from its type, so Conv1D targets merge correctly whatever the flag says.</summary>
    public bool FanInFanOut { get; init; }
    public string TaskType { get; init; } = CausalLmTaskType;
    public string? BaseModelNameOrPath { get; init; }
    public string? Revision { get; init; }
    public bool InferenceMode { get; init; }
    /// <summary>Seeds lora_A init and the dropout masks (PEFT uses torch's global generator).</summary>
    public int Seed { get; init; }

    /// <summary>alpha / r, or alpha / √r with rslora.</summary>
    public float Scaling => UseRslora ? LoraAlpha / MathF.Sqrt(R) : LoraAlpha / R;

    public void Validate()
    {
        if (R <= 0) throw new ArgumentException($"LoraConfig.R (r) must be a positive integer, got {R}");
        if (!float.IsFinite(LoraAlpha)) throw new ArgumentException($"LoraConfig.LoraAlpha (lora_alpha) must be finite, got {LoraAlpha}");
        if (!(LoraDropout >= 0f && LoraDropout < 1f)) throw new ArgumentException($"LoraConfig.LoraDropout (lora_dropout) must be in [0, 1), got {LoraDropout}");
        if (TargetModules == null || TargetModules.Names is { Count: 0 } || TargetModules.Pattern is "")
            throw new ArgumentException("LoraConfig.TargetModules (target_modules) is required: module names such as [\"q_proj\", \"v_proj\"], a regex, or \"all-linear\"");
        if (!BiasValues.Contains(Bias)) throw new ArgumentException($"LoraConfig.Bias (bias) must be one of {string.Join(", ", BiasValues)}, got '{Bias}'");
        if (TaskType != CausalLmTaskType) throw new ArgumentException($"LoraConfig.TaskType (task_type) must be '{CausalLmTaskType}', got '{TaskType}'");
    }
}
