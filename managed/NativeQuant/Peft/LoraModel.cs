using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Peft;

/// <summary>
/// Injects LoRA into a model (PEFT's LoraModel): every target linear layer is replaced by a <see cref="LoraLinear"/>
/// wrapping it, everything else is frozen, then the bias policy and modules_to_save decide which other parameters
/// train. The wrapped model is child "model", so parameter names read "model.model.layers.0.self_attn.q_proj...".
/// </summary>
public sealed class LoraModel : Module
{
    public const string OutputHead = "lm_head";

    public LoraModel(Module model, LoraConfig config)
    {
        config.Validate();
        Config = config;
        var targets = FindTargets(model, config.TargetModules!);
        var modulesToSave = FindModulesToSave(model, config.ModulesToSave);
        model.RequiresGrad(false);
        var rng = new Random(config.Seed);
        foreach (var path in targets)
        {
            var baseLayer = (Module<Tensor, Tensor>)model.GetSubmodule(path);
            model.SetSubmodule(path, new LoraLinear(baseLayer, config, rng, rng.Next()));
        }
        RegisterModule("model", model);
        ApplyBiasPolicy(model, config.Bias);
        foreach (var path in modulesToSave) model.GetSubmodule(path).RequiresGrad(true);
        ModulesToSavePaths = modulesToSave;
    }

    public LoraConfig Config { get; }
    public Module Model => Child<Module>("model");
    /// <summary>Paths (inside <see cref="Model"/>) of the modules trained in full and saved with the adapter.</summary>
    public IReadOnlyList<string> ModulesToSavePaths { get; }

    /// <summary>Every LoRA layer with its path inside <see cref="Model"/>.</summary>
    public IEnumerable<(string Path, LoraLinear Layer)> LoraLayers() =>
        Model.NamedModules().Where(m => m.Module is LoraLinear).Select(m => (m.Name, (LoraLinear)m.Module));

    private static List<string> FindTargets(Module model, TargetModules targets)
    {
        var all = model.NamedModules().Where(m => m.Name.Length > 0 && m.Module is not LoraLinear).ToList();
        var linear = all.Where(m => LinearLayers.IsLinear(m.Module)).Select(m => m.Name).ToList();
        List<string> found;
        if (targets.IsAllLinear)
            found = linear.Where(p => p != OutputHead).ToList();
        else
        {
            var matched = all.Where(m => targets.Matches(m.Name)).ToList();
            var notLinear = matched.FirstOrDefault(m => !LinearLayers.IsLinear(m.Module));
            if (notLinear.Module != null)
                throw new ArgumentException($"target_modules {targets} matched '{notLinear.Name}', a {notLinear.Module.GetType().Name}; LoRA wraps only linear layers: {Describe(linear)}");
            var unmatched = targets.Names?.Where(n => !matched.Any(m => TargetModules.NameMatches(n, m.Name))).ToList();
            if (unmatched is { Count: > 0 })
                throw new ArgumentException($"target_modules: no module named [{string.Join(", ", unmatched)}] in {model.GetType().Name}; its linear layers are {Describe(linear)}");
            found = matched.Select(m => m.Name).ToList();
        }
        if (found.Count == 0)
            throw new ArgumentException($"target_modules {targets} matched no linear layer of {model.GetType().Name}; its linear layers are {Describe(linear)}");
        return found;
    }

    /// <summary>"q_proj, v_proj, ... (e.g. model.layers.0.self_attn.q_proj)": distinct last name components.</summary>
    private static string Describe(List<string> linearPaths) =>
        linearPaths.Count == 0 ? "(none)"
            : $"[{string.Join(", ", linearPaths.Select(p => p[(p.LastIndexOf('.') + 1)..]).Distinct())}] (e.g. '{linearPaths[0]}')";

    private static List<string> FindModulesToSave(Module model, IReadOnlyList<string>? names)
    {
        var paths = new List<string>();
        foreach (var name in names ?? [])
        {
            var hits = model.NamedModules().Where(m => m.Name.Length > 0 && TargetModules.NameMatches(name, m.Name)).Select(m => m.Name).ToList();
            if (hits.Count == 0)
                throw new ArgumentException($"modules_to_save: no module named '{name}' in {model.GetType().Name} (top-level modules: {string.Join(", ", model.NamedChildren().Select(c => c.Name))})");
            paths.AddRange(hits);
        }
        return paths;
    }

    private void ApplyBiasPolicy(Module model, string bias)
    {
        if (bias == "all")
        {
            foreach (var (name, p) in model.NamedParameters())
                if ((name == "bias" || name.EndsWith(".bias", StringComparison.Ordinal)) && p.DType == DType.Float32) p.RequiresGrad = true;
        }
        else if (bias == "lora_only")
        {
            foreach (var (_, layer) in LoraLayers())
                if (LinearLayers.Bias(layer.BaseLayer) is { } b) b.RequiresGrad = true;
        }
    }

    /// <summary>Folds every LoRA update into its base layer, puts the base layers back in place of the wrappers
    /// and hands the model back (this wrapper is empty afterwards).</summary>
    public LoraMergeResult MergeAndUnload() => Detach(merge: true);

    /// <summary>Puts the original base layers back without merging and hands the model back (PEFT's unload()).</summary>
    public Module Unload() => Detach(merge: false).Model;

    private LoraMergeResult Detach(bool merge)
    {
        var model = Model;
        var errors = new List<MergeRoundingError>();
        foreach (var (path, layer) in LoraLayers().ToList())
        {
            model.SetSubmodule(path, layer.Unwrap(path, merge, out var rounding));
            if (rounding != null) errors.Add(rounding);
        }
        SetSubmodule("model", new Unloaded());
        return new LoraMergeResult(model, errors);
    }

    /// <summary>Stands in for the model after it was handed back to the caller.</summary>
    private sealed class Unloaded : Module;
}

/// <summary>The model with LoRA merged in, and the requantization error of each merged quantized layer.</summary>
public sealed record LoraMergeResult(Module Model, IReadOnlyList<MergeRoundingError> RoundingErrors);
