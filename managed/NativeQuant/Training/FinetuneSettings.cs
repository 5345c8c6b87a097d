namespace NativeQuant.Training;

/// <summary>
/// Everything a `nq finetune` run is made of, with the CLI flag names as property names (a --config YAML/JSON file
/// uses the same keys: lora_r, grad_accum, ...). Defaults are the QLoRA recipe scaled to a small CPU budget.
/// </summary>
public sealed record FinetuneSettings
{
    public string Model { get; init; } = "stories15M";
    /// <summary>nf4 | fp4 | int8 | none; null: nf4, or the checkpoint's own format when it is stored pre-quantized.</summary>
    public string? Quant { get; init; }
    public bool DoubleQuant { get; init; } = true;
    /// <summary>Quantize the (frozen) output head too, in the --quant format (QuantConfig.QuantizeHead).</summary>
    public bool QuantizeHead { get; init; }
    /// <summary>f32 | f16 | int8: precision of the 4-bit matmuls (QuantConfig.ComputeDtype); null = f32, or a
    /// pre-quantized checkpoint's bnb_4bit_compute_dtype.</summary>
    public string? ComputeDtype { get; init; }
    /// <summary>Keep a packed fp16 copy of a frozen fp32 head under f16 compute (QuantConfig.PackHead).</summary>
    public bool PackHead { get; init; } = true;
    public int LoraR { get; init; } = 8;
    public float LoraAlpha { get; init; } = 16;
    public float LoraDropout { get; init; }
    /// <summary>Comma-separated module names, or "all-linear".</summary>
    public string TargetModules { get; init; } = "q_proj,v_proj";
    /// <summary>classify | causal-lm</summary>
    public string Task { get; init; } = "classify";
    /// <summary>"spam-assassin", or a .jsonl/.csv file (classify: rows with the template's fields and "label";
    /// causal-lm: a text file or a .jsonl with "text").</summary>
    public string Data { get; init; } = "spam-assassin";
    public string Template { get; init; } = "Subject: {subject}\n{body}\nThis e-mail is:{label}";
    /// <summary>label=answer pairs; the answer's leading space is kept ("spam= spam").</summary>
    public IReadOnlyList<string> Verbalizer { get; init; } = ["spam= spam", "ham= ham"];
    /// <summary>Template field cut to fit seq_len.</summary>
    public string TruncateField { get; init; } = "body";
    public string Optimizer { get; init; } = "paged_adamw_8bit";
    public float Lr { get; init; } = 1e-3f;
    public string Schedule { get; init; } = "linear";
    public int Warmup { get; init; } = 10;
    /// <summary>Optimizer steps; 0 means derive from <see cref="Epochs"/>.</summary>
    public int Steps { get; init; } = 100;
    public double Epochs { get; init; }
    public int BatchSize { get; init; } = 4;
    public int GradAccum { get; init; } = 1;
    public int SeqLen { get; init; } = 128;
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>0: evaluate only at the end.</summary>
    public int EvalEvery { get; init; }
    /// <summary>Held-out examples scored at each evaluation (0: the whole held-out split).</summary>
    public int EvalSize { get; init; } = 200;
    /// <summary>Training examples used (0: the whole train split).</summary>
    public int TrainSize { get; init; }
    public double TestFraction { get; init; } = 0.1;
    public int Seed { get; init; } = 42;
    public string? Output { get; init; }
    public bool Resume { get; init; }

    public void Validate()
    {
        if (LoraR <= 0) throw new ArgumentException($"--lora-r must be a positive integer, got {LoraR}");
        if (BatchSize <= 0) throw new ArgumentException($"--batch-size must be positive, got {BatchSize}");
        if (SeqLen < 8) throw new ArgumentException($"--seq-len must be at least 8, got {SeqLen}");
        if (Steps < 0 || (Steps == 0 && !(Epochs > 0))) throw new ArgumentException($"give --steps > 0 or --epochs > 0 (got steps {Steps}, epochs {Epochs})");
        if (!(Lr > 0f) || !float.IsFinite(Lr)) throw new ArgumentException($"--lr must be a positive number, got {Lr}");
        if (Task is not ("classify" or "causal-lm")) throw new ArgumentException($"--task must be classify or causal-lm, got '{Task}'");
        if (EvalSize < 0 || TrainSize < 0) throw new ArgumentException("--eval-size and --train-size must be >= 0");
        if (!(TestFraction > 0 && TestFraction < 1)) throw new ArgumentException($"test fraction must be in (0, 1), got {TestFraction}");
    }
}
