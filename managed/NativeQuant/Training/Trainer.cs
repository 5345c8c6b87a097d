using System.Diagnostics;
using NativeQuant.Autograd;
using NativeQuant.Data;
using NativeQuant.Interop;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Optim;
using NativeQuant.Tensors;

namespace NativeQuant.Training;

/// <summary>
/// The training loop: for each optimizer step, GradientAccumulationSteps batches from the loader are forwarded and
/// backpropagated (each micro-batch's loss weighted by its share of the step's loss tokens, so accumulation equals
/// one large batch), then the optimizer steps (clipping and the non-finite guard inside) and the scheduler moves.
/// Every EvalEvery steps and at the end it evaluates and writes <see cref="TrainingCheckpoint"/> atomically;
/// <see cref="Resume"/> restores one so the continued run reproduces the uninterrupted one bit for bit (same
/// seed and thread count). Metrics go to metrics.jsonl in the run directory.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly CausalLM _model;
    private readonly DataLoader _loader;
    private readonly IEvaluator? _evaluator;
    private readonly string _runDirectory;
    private readonly List<(string Name, Parameter Parameter)> _trainable;
    private LRScheduler _scheduler;
    private MetricsLog? _metrics;
    private long _dropoutDraws;

    /// <param name="root">The module whose grad-requiring parameters train and are checkpointed by name (e.g. the PeftModel).</param>
    /// <param name="model">The causal LM inside <paramref name="root"/> that forwards batches.</param>
    public Trainer(Module root, CausalLM model, DataLoader loader, IEvaluator? evaluator, TrainerOptions options, string runDirectory)
    {
        options.Validate();
        _model = model;
        _loader = loader;
        _evaluator = evaluator;
        Options = options;
        _runDirectory = runDirectory;
        Directory.CreateDirectory(runDirectory);
        _trainable = root.NamedParameters().Where(p => p.Parameter.RequiresGrad).ToList();
        Optimizer = OptimizerFactory.Create(options.Optimizer, _trainable.Select(t => t.Parameter), options.LearningRate,
                                            options.WeightDecay, pagerDirectory: runDirectory);
        Optimizer.MaxGradNorm = options.MaxGradNorm;
        _scheduler = LRScheduler.Create(options.LrSchedule, Optimizer, options.WarmupSteps, options.MaxSteps);
        Root = root;
    }

    public TrainerOptions Options { get; }
    public Module Root { get; }
    public NativeOptimizer Optimizer { get; }
    public long Step => Optimizer.StepCount;
    public string CheckpointPath => Path.Combine(_runDirectory, TrainingCheckpoint.FileName);
    public IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters => _trainable;

    /// <summary>After each optimizer step.</summary>
    public event Action<StepMetrics>? StepCompleted;
    /// <summary>After each evaluation (step, result).</summary>
    public event Action<long, EvalResult>? Evaluated;
    /// <summary>After each checkpoint write (path).</summary>
    public event Action<string>? CheckpointSaved;

    /// <summary>Continues from the checkpoint in the run directory (or <paramref name="path"/>).</summary>
    public void Resume(string? path = null)
    {
        var state = TrainingCheckpoint.Load(path ?? CheckpointPath, _trainable, Optimizer);
        if (state.Seed != Options.Seed)
            throw new ArgumentException($"--resume: the checkpoint was made with seed {state.Seed}, this run has seed {Options.Seed}");
        _loader.Position = state.DataPosition;
        _dropoutDraws = state.DropoutDraws;
        DropoutReplay.Advance(_model, _dropoutDraws);
        _scheduler = LRScheduler.Create(Options.LrSchedule, Optimizer, Options.WarmupSteps, Options.MaxSteps, state.Step);
        _metrics = MetricsLog.Resume(_runDirectory, state.Step);
    }

    /// <summary>Trains until <see cref="TrainerOptions.MaxSteps"/>; returns the last evaluation (if any).</summary>
    public EvalResult? Train(CancellationToken ct = default)
    {
        _metrics ??= MetricsLog.Create(_runDirectory);
        _model.Train();
        EvalResult? last = null;
        var clock = Stopwatch.StartNew();
        while (Step < Options.MaxSteps)
        {
            ct.ThrowIfCancellationRequested();
            long started = clock.ElapsedTicks;
            var (loss, tokens) = TrainStep();
            double seconds = (double)(clock.ElapsedTicks - started) / Stopwatch.Frequency;
            float lr = Optimizer.ParamGroups[0].Lr;
            Optimizer.Step();
            Optimizer.ZeroGrad();
            _scheduler.Step();
            var m = new StepMetrics(Step, Options.MaxSteps, loss, lr, Optimizer.LastGradNorm, tokens, tokens / Math.Max(seconds, 1e-9),
                                    _loader.Epoch, (long)NativeRuntime.MemoryStats.LiveBytes, clock.Elapsed);
            _metrics.Write(new Dictionary<string, object>
            {
                ["step"] = m.Step, ["loss"] = m.Loss, ["lr"] = m.Lr, ["grad_norm"] = m.GradNorm, ["tokens"] = m.Tokens,
                ["tokens_per_second"] = Math.Round(m.TokensPerSecond, 1), ["epoch"] = Math.Round(m.Epoch, 4),
            });
            StepCompleted?.Invoke(m);
            bool end = Step == Options.MaxSteps;
            if (end || (Options.EvalEvery > 0 && Step % Options.EvalEvery == 0))
            {
                if (_evaluator != null) last = Evaluate();
                SaveCheckpoint();
            }
        }
        return last;
    }

    public EvalResult Evaluate()
    {
        var r = (_evaluator ?? throw new InvalidOperationException("this trainer has no evaluator")).Evaluate(_model);
        _metrics?.Write(new Dictionary<string, object> { ["step"] = Step, ["eval_loss"] = r.Loss, ["eval_" + r.MetricName] = r.Metric });
        Evaluated?.Invoke(Step, r);
        return r;
    }

    public void SaveCheckpoint(string? path = null)
    {
        string target = path ?? CheckpointPath;
        TrainingCheckpoint.Save(target, new TrainingCheckpoint(Step, _loader.Position, _dropoutDraws, Options.Seed), _trainable, Optimizer);
        CheckpointSaved?.Invoke(target);
    }

    /// <summary>Forward + backward of one optimizer step's micro-batches; returns the step's loss (mean over its loss
    /// tokens) and the number of input tokens processed.</summary>
    private (double Loss, long Tokens) TrainStep()
    {
        var micro = new List<(Tensor Ids, Tensor Positions, Tensor Targets)>();
        try
        {
            for (int i = 0; i < Options.GradientAccumulationSteps; i++)
            {
                var batch = Batch.Collate(_loader.NextExamples(), Options.PadId);
                var (positions, targets) = TensorScope.Unscoped(batch.SupervisedNextTokens);
                micro.Add((TensorScope.Unscoped(batch.InputIdsTensor), positions, targets));
            }
            long lossTokens = micro.Sum(b => b.Targets.NumElements);
            if (lossTokens == 0) throw new InvalidOperationException($"step {Step + 1}: no token of the step's batches carries loss");
            double loss = 0;
            foreach (var (ids, positions, targets) in micro)
            {
                // A micro-batch without loss tokens adds nothing, so it is not forwarded (nor counted for DropoutReplay).
                if (targets.NumElements == 0) continue;
                using var scope = new TensorScope();
                // Loss only where targets are, head fused into it: the same loss and gradients as the full (B, T, V) head.
                var mean = _model.Loss(ids, positions, targets);
                _dropoutDraws++;
                float weight = (float)targets.NumElements / lossTokens;
                loss += (double)mean.Item() * weight;
                Functional.Scale(mean, weight).Backward();
            }
            return (loss, micro.Sum(b => b.Ids.NumElements));
        }
        finally
        {
            foreach (var (ids, positions, targets) in micro)
            {
                ids.Dispose();
                positions.Dispose();
                targets.Dispose();
            }
        }
    }

    public void Dispose()
    {
        _metrics?.Dispose();
        Optimizer.Dispose();
    }
}
