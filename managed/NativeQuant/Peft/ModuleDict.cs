using NativeQuant.NN;

namespace NativeQuant.Peft;

/// <summary>Submodules keyed by name (torch.nn.ModuleDict); LoRA keys its A/B/dropout by adapter name
/// ("default"), which is how PEFT's in-memory parameter names get their ".default." segment.</summary>
public sealed class ModuleDict<T> : Module where T : Module
{
    public ModuleDict(string key, T module) => RegisterModule(key, module);

    public T this[string key] => Child<T>(key);
}
