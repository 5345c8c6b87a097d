using NativeQuant.Data;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Peft;
using NativeQuant.Tokenizers;

namespace NativeQuant.Training;

/// <summary>
/// A fine-tuning run assembled from <see cref="FinetuneSettings"/>: the base model loaded (quantized on load), made
/// ready for k-bit training, wrapped with LoRA; the data read, split (stratified by label for classification),
/// encoded with the template; the evaluator for the task; and the <see cref="Trainer"/> writing into the run
/// directory. `nq finetune` and `nq demo` drive it.
/// </summary>
public sealed class FinetuneJob : IDisposable
{
    public const string AdapterDirectory = "adapter";

    private FinetuneJob(FinetuneSettings settings, string runDirectory, CausalLM model, PeftModel peft, Trainer trainer,
                        IEvaluator evaluator, int trainExamples, IReadOnlyList<ClassificationExample>? heldOut)
    {
        Settings = settings;
        RunDirectory = runDirectory;
        Model = model;
        Peft = peft;
        Trainer = trainer;
        Evaluator = evaluator;
        TrainExamples = trainExamples;
        HeldOut = heldOut;
    }

    public FinetuneSettings Settings { get; }
    public string RunDirectory { get; }
    public CausalLM Model { get; }
    public PeftModel Peft { get; }
    public Trainer Trainer { get; }
    public IEvaluator Evaluator { get; }
    public int TrainExamples { get; }
    /// <summary>Encoded held-out classification examples (null for causal-lm).</summary>
    public IReadOnlyList<ClassificationExample>? HeldOut { get; }
    public ITokenizer Tokenizer => Model.Tokenizer!;

    public static FinetuneJob Create(FinetuneSettings s, string runDirectory)
    {
        s.Validate();
        var quant = new QuantConfig(ModelLoader.ResolveQuant(s.Model, s.Quant, QuantType.Nf4), s.DoubleQuant, QuantizeHead: s.QuantizeHead,
                                    ComputeDtype: s.ComputeDtype == null ? null : QuantConfig.ParseComputeDtype(s.ComputeDtype),
                                    PackHead: s.PackHead);
        var model = CausalLM.Load(s.Model, quant);
        try
        {
            var tokenizer = model.Tokenizer ?? throw new ArgumentException($"--model {s.Model}: no tokenizer found next to the weights");
            var (train, evaluator, heldOut) = s.Task == "classify" ? ClassifyData(s, tokenizer) : CausalLmData(s, tokenizer);
            var options = new TrainerOptions
            {
                MaxSteps = s.Steps > 0 ? s.Steps : (int)Math.Ceiling(s.Epochs * train.Count / ((double)s.BatchSize * s.GradAccum)),
                GradientAccumulationSteps = s.GradAccum, Optimizer = s.Optimizer, LearningRate = s.Lr, LrSchedule = s.Schedule,
                WarmupSteps = s.Warmup, MaxGradNorm = s.MaxGradNorm > 0 ? s.MaxGradNorm : null, EvalEvery = s.EvalEvery,
                Seed = s.Seed, PadId = tokenizer.EosId,
            };
            options.Validate();
            // QLoRA's recipe: freeze, check fp32 norms/embeddings, checkpoint activations (only worth it when the
            // base is quantized; an fp32 base trains the same without it).
            KbitTraining.PrepareForKbitTraining(model, useGradientCheckpointing: quant.Type != QuantType.None);
            var peft = PeftModel.GetPeftModel(model, new LoraConfig
            {
                R = s.LoraR, LoraAlpha = s.LoraAlpha, LoraDropout = s.LoraDropout, Seed = s.Seed,
                TargetModules = s.TargetModules == NativeQuant.Peft.TargetModules.AllLinearKeyword
                    ? NativeQuant.Peft.TargetModules.FromPattern(s.TargetModules)
                    : NativeQuant.Peft.TargetModules.FromNames(s.TargetModules.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)),
                BaseModelNameOrPath = s.Model,
            });
            var trainer = new Trainer(peft, model, new DataLoader(train, s.BatchSize, s.Seed), evaluator, options, runDirectory);
            return new FinetuneJob(s, runDirectory, model, peft, trainer, evaluator, train.Count, heldOut);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Writes the adapter in PEFT's format (adapter_config.json + adapter_model.safetensors).</summary>
    public string SaveAdapter()
    {
        string dir = Path.Combine(RunDirectory, AdapterDirectory);
        Peft.SavePretrained(dir);
        return dir;
    }

    private static (List<TokenizedExample>, IEvaluator, IReadOnlyList<ClassificationExample>?) ClassifyData(FinetuneSettings s, ITokenizer tokenizer)
    {
        var template = new PromptTemplate(s.Template);
        var verbalizer = ParseVerbalizer(s.Verbalizer);
        var labels = verbalizer.Map.Keys.ToList();
        var rows = ReadRows(s.Data);
        var split = DatasetSplit.Split(rows, 0, s.TestFraction, (ulong)s.Seed,
                                       r => r.TryGetValue(template.AnswerField, out var l) ? l : throw new KeyNotFoundException($"--data {s.Data}: a row has no '{template.AnswerField}' field"));
        // No EOS after the answer: the class is decided by the answer tokens alone, and llama2.c checkpoints never
        // saw EOS in training (stories are separated by BOS), so its head row cannot be made likely by LoRA.
        var encoder = new SupervisedExampleEncoder(tokenizer, template, verbalizer, s.SeqLen,
                                                   template.Fields.Contains(s.TruncateField) ? s.TruncateField : null) { AppendEos = false };
        var train = Take(Fitting(split.Train, tokenizer, template, verbalizer, encoder, out int skippedTrain), s.TrainSize)
            .Select((r, i) => encoder.Encode(r, i)).ToList();
        var heldOutRows = Take(Fitting(split.Test, tokenizer, template, verbalizer, encoder, out int skippedTest), s.EvalSize);
        var heldOut = ClassificationExamples.Encode(encoder, template.AnswerField, labels, heldOutRows);
        if (skippedTrain + skippedTest > 0)
            Console.Error.WriteLine($"note: {skippedTrain} training and {skippedTest} held-out examples do not fit --seq-len {s.SeqLen} even with '{s.TruncateField}' cut to nothing; they are left out");
        return (train, new ClassificationEvaluator(heldOut), heldOut);
    }

    private static (List<TokenizedExample>, IEvaluator, IReadOnlyList<ClassificationExample>?) CausalLmData(FinetuneSettings s, ITokenizer tokenizer)
    {
        var docs = TextDocuments.Read(s.Data);
        var split = DatasetSplit.Split(docs, 0, s.TestFraction, (ulong)s.Seed);
        if (split.Test.Count == 0) throw new ArgumentException($"--data {s.Data}: too few documents ({docs.Count}) to hold some out for evaluation");
        var train = TextPacker.Pack(split.Train, tokenizer, s.SeqLen).ToList();
        var test = Take(TextPacker.Pack(split.Test, tokenizer, s.SeqLen), s.EvalSize);
        if (train.Count == 0 || test.Count == 0) throw new ArgumentException($"--data {s.Data}: not enough text for one {s.SeqLen}-token block in each split");
        return (Take(train, s.TrainSize).ToList(), new LmEvaluator(test, tokenizer.EosId), null);
    }

    /// <summary>Rows whose prompt, with the truncatable field emptied, fits the encoder's length for every label.</summary>
    private static List<IReadOnlyDictionary<string, string>> Fitting(IReadOnlyList<IReadOnlyDictionary<string, string>> rows, ITokenizer tokenizer,
                                                                     PromptTemplate template, Verbalizer verbalizer, SupervisedExampleEncoder encoder, out int skipped)
    {
        var fit = new List<IReadOnlyDictionary<string, string>>(rows.Count);
        foreach (var row in rows)
        {
            string prompt = template.RenderPrompt(row, encoder.TruncateField, "");
            if (verbalizer.Map.Values.All(answer => tokenizer.Encode(prompt + answer, addBos: true, addEos: encoder.AppendEos).Length <= encoder.MaxLength))
                fit.Add(row);
        }
        skipped = rows.Count - fit.Count;
        return fit;
    }

    private static IReadOnlyList<T> Take<T>(IReadOnlyList<T> items, int n) => n > 0 && n < items.Count ? items.Take(n).ToList() : items;

    public static Verbalizer ParseVerbalizer(IReadOnlyList<string> pairs)
    {
        var map = new Dictionary<string, string>();
        foreach (var pair in pairs)
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0 || eq == pair.Length - 1) throw new ArgumentException($"--verbalizer '{pair}': expected label=answer, e.g. \"spam= spam\"");
            if (!map.TryAdd(pair[..eq], pair[(eq + 1)..])) throw new ArgumentException($"--verbalizer: label '{pair[..eq]}' given twice");
        }
        if (map.Count < 2) throw new ArgumentException($"--verbalizer: classification needs at least 2 labels, got {map.Count}");
        return new Verbalizer(map);
    }

    private static IReadOnlyList<IReadOnlyDictionary<string, string>> ReadRows(string data)
    {
        var rows = data switch
        {
            "spam-assassin" => StdlibDatasets.SpamAssassin().Select(e => e.ToRow()).ToList(),
            _ when data.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) => JsonlReader.Read(TextDocuments.RequireFile(data)).ToList(),
            _ when data.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) => CsvReader.Read(TextDocuments.RequireFile(data)).ToList(),
            _ => throw new ArgumentException($"--data {data}: expected spam-assassin, a .jsonl or a .csv file"),
        };
        return rows.Count > 0 ? rows : throw new ArgumentException($"--data {data}: no examples");
    }


    public void Dispose()
    {
        Trainer.Dispose();
        Peft.Dispose();
    }
}
