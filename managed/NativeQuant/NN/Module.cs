using NativeQuant.Tensors;

namespace NativeQuant.NN;

/// <summary>
/// Base of every layer and model (torch.nn.Module): named parameters, buffers and submodules in registration
/// order, dotted names matching PyTorch/HF ("model.layers.0.self_attn.q_proj.weight"), Train()/Eval(),
/// StateDict/LoadStateDict, and deterministic disposal of all native memory it owns.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly OrderedDictionary<string, Parameter?> _parameters = new();
    private readonly OrderedDictionary<string, Tensor> _buffers = new();
    private readonly OrderedDictionary<string, Module> _modules = new();
    private bool _disposed;

    public bool Training { get; private set; } = true;

    protected Parameter RegisterParameter(string name, Parameter parameter)
    {
        CheckName(name);
        _parameters[name] = parameter;
        return parameter;
    }

    /// <summary>Non-learnable state saved with the module (e.g. quantized weight codes and scales).</summary>
    protected Tensor RegisterBuffer(string name, Tensor buffer)
    {
        CheckName(name);
        _buffers[name] = buffer;
        return buffer;
    }

    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        _modules[name] = module;
        return module;
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.')) throw new ArgumentException($"invalid module attribute name '{name}'");
        if (_parameters.ContainsKey(name) || _buffers.ContainsKey(name) || _modules.ContainsKey(name))
            throw new ArgumentException($"'{name}' is already registered on {GetType().Name}");
    }

    /// <summary>The direct child called <paramref name="name"/> (children can be swapped, e.g. by LoRA injection,
    /// so forwards read them through this lookup rather than caching fields).</summary>
    protected T Child<T>(string name) where T : Module => (T)_modules[name];

    public IEnumerable<(string Name, Module Module)> NamedChildren()
    {
        foreach (var kv in _modules) yield return (kv.Key, kv.Value);
    }

    /// <summary>This module ("") and every descendant with its dotted name, depth first.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix, this);
        foreach (var kv in _modules)
            foreach (var m in kv.Value.NamedModules(prefix.Length == 0 ? kv.Key : prefix + "." + kv.Key))
                yield return m;
    }

    /// <summary>Every parameter with its dotted name; a parameter shared by two modules (tied embeddings) is
    /// listed once, under its first name, as in PyTorch.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters()
    {
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (name, p) in AllNamedParameters())
            if (seen.Add(p)) yield return (name, p);
    }

    private IEnumerable<(string Name, Parameter Parameter)> AllNamedParameters()
    {
        foreach (var (prefix, m) in NamedModules())
            foreach (var kv in m._parameters)
                if (kv.Value != null) yield return (prefix.Length == 0 ? kv.Key : prefix + "." + kv.Key, kv.Value);
    }

    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers()
    {
        foreach (var (prefix, m) in NamedModules())
            foreach (var kv in m._buffers)
                yield return (prefix.Length == 0 ? kv.Key : prefix + "." + kv.Key, kv.Value);
    }

    public IEnumerable<Parameter> Parameters()
    {
        foreach (var (_, p) in NamedParameters()) yield return p;
    }

    public long NumParameters()
    {
        long n = 0;
        foreach (var p in Parameters()) n += p.NumElements;
        return n;
    }

    /// <summary>The descendant at a dotted path ("model.layers.0.mlp").</summary>
    public Module GetSubmodule(string path)
    {
        Module m = this;
        if (path.Length == 0) return m;
        foreach (var part in path.Split('.'))
            if (!m._modules.TryGetValue(part, out m!)) throw new KeyNotFoundException($"{GetType().Name} has no submodule '{path}' (missing '{part}')");
        return m;
    }

    /// <summary>Replaces the descendant at a dotted path (used to inject adapters or quantized layers). The old
    /// module is returned, not disposed: a wrapper usually keeps it.</summary>
    public Module SetSubmodule(string path, Module replacement)
    {
        int dot = path.LastIndexOf('.');
        var parent = dot < 0 ? this : GetSubmodule(path[..dot]);
        string name = path[(dot + 1)..];
        if (!parent._modules.TryGetValue(name, out var old)) throw new KeyNotFoundException($"no submodule '{path}'");
        parent._modules[name] = replacement;
        return old;
    }

    public Module Train(bool mode = true)
    {
        foreach (var (_, m) in NamedModules()) m.Training = mode;
        return this;
    }

    public Module Eval() => Train(false);

    /// <summary>Every parameter and buffer by dotted name (tied parameters under each of their names). The
    /// tensors are the module's own, not copies.</summary>
    public OrderedDictionary<string, Tensor> StateDict()
    {
        var sd = new OrderedDictionary<string, Tensor>();
        foreach (var (name, p) in AllNamedParameters()) sd[name] = p;
        foreach (var (name, b) in NamedBuffers()) sd[name] = b;
        return sd;
    }

    /// <summary>Copies values into this module's parameters/buffers. strict: every key must match both ways;
    /// shapes and dtypes must always match. Errors list the offending names.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> stateDict, bool strict = true)
    {
        var own = StateDict();
        var missing = own.Keys.Where(k => !stateDict.ContainsKey(k)).ToList();
        var unexpected = stateDict.Keys.Where(k => !own.ContainsKey(k)).ToList();
        if (strict && (missing.Count > 0 || unexpected.Count > 0))
            throw new ArgumentException($"LoadStateDict: missing keys [{string.Join(", ", missing)}]; unexpected keys [{string.Join(", ", unexpected)}]");
        foreach (var (name, dst) in own)
        {
            if (!stateDict.TryGetValue(name, out var src)) continue;
            if (!src.Shape.SequenceEqual(dst.Shape) || src.DType != dst.DType)
                throw new ArgumentException($"LoadStateDict: '{name}' expects {dst.DType}{dst.ShapeString}, got {src.DType}{src.ShapeString}");
            dst.CopyFrom(src);
        }
        foreach (var (_, m) in NamedModules()) m.OnStateLoaded();
    }

    /// <summary>Called on every module after <see cref="LoadStateDict"/> wrote its tensors: drop anything derived
    /// from their old values.</summary>
    protected internal virtual void OnStateLoaded() { }

    /// <summary>Sets RequiresGrad on every parameter (freeze with false).</summary>
    public void RequiresGrad(bool value)
    {
        foreach (var p in Parameters()) if (p.DType == DType.Float32) p.RequiresGrad = value;
    }

    /// <summary>Drops accumulated gradients.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters())
        {
            p.Grad?.Dispose();
            p.Grad = null;
        }
    }

    public virtual void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var kv in _modules) kv.Value.Dispose();
        foreach (var kv in _parameters) kv.Value?.Dispose();
        foreach (var kv in _buffers) kv.Value.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A module with a typed forward (most layers: tensor in, tensor out).</summary>
public abstract class Module<TIn, TOut> : Module
{
    public abstract TOut Forward(TIn input);
}
