using System.Globalization;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Peft;

/// <summary>
/// A model with a LoRA adapter (PEFT's PeftModelForCausalLM): child "base_model" is the <see cref="LoraModel"/>,
/// whose child "model" is the original model, so parameter names are exactly PEFT's in-memory names
/// ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight").
/// </summary>
public sealed class PeftModel : Module
{
    private PeftModel(LoraModel lora) => RegisterModule("base_model", lora);

    /// <summary>Injects LoRA into <paramref name="model"/> as <paramref name="config"/> says and freezes the rest
    /// (PEFT's get_peft_model). The PeftModel owns the model from now on.</summary>
    public static PeftModel GetPeftModel(Module model, LoraConfig config) => new(new LoraModel(model, config));

    /// <summary>Attaches the adapter saved in <paramref name="directory"/> (adapter_config.json +
    /// adapter_model.safetensors) to <paramref name="model"/>, checking it fits (PEFT's from_pretrained).</summary>
    public static PeftModel FromPretrained(Module model, string directory, bool isTrainable = false) =>
        PeftAdapterFiles.Load(model, directory, isTrainable);

    /// <summary>Writes adapter_config.json and adapter_model.safetensors (PEFT's save_pretrained).</summary>
    public void SavePretrained(string directory) => PeftAdapterFiles.Save(this, directory);

    public LoraModel BaseModel => Child<LoraModel>("base_model");
    public LoraConfig Config => BaseModel.Config;
    /// <summary>The wrapped model (with LoRA layers in place).</summary>
    public Module Model => BaseModel.Model;

    /// <summary>Forward of a wrapped causal LM: ids (B, T) -> logits (B, T, V).</summary>
    public Tensor Forward(Tensor ids) =>
        (Model as CausalLM ?? throw new InvalidOperationException($"Forward(ids) needs a CausalLM; the wrapped model is {Model.GetType().Name}")).Forward(ids);

    /// <summary>(trainable, all) parameter counts as PEFT's get_nb_trainable_parameters gives them; quantized
    /// weights count out×in (see <see cref="LinearLayers.QuantizedWeightElements"/>).</summary>
    public (long Trainable, long All) GetNbTrainableParameters()
    {
        long trainable = 0, all = 0;
        foreach (var p in Parameters())
        {
            all += p.NumElements;
            if (p.RequiresGrad) trainable += p.NumElements;
        }
        foreach (var (_, m) in NamedModules()) all += LinearLayers.QuantizedWeightElements(m);
        return (trainable, all);
    }

    /// <summary>"trainable params: 55,296 || all params: 15,246,528 || trainable%: 0.3627" (PEFT's format).</summary>
    public string TrainableParametersSummary()
    {
        var (trainable, all) = GetNbTrainableParameters();
        double percent = all == 0 ? 0 : 100.0 * trainable / all;
        return string.Create(CultureInfo.InvariantCulture, $"trainable params: {trainable:N0} || all params: {all:N0} || trainable%: {percent:F4}");
    }

    public void PrintTrainableParameters(TextWriter? output = null) => (output ?? Console.Out).WriteLine(TrainableParametersSummary());

    /// <summary>Merges the adapter into the base weights and returns the plain model (see <see cref="LoraModel.MergeAndUnload"/>).</summary>
    public LoraMergeResult MergeAndUnload() => BaseModel.MergeAndUnload();

    /// <summary>Turns every LoRA layer off (base model output) or back on.</summary>
    public void SetAdapterEnabled(bool enabled)
    {
        foreach (var (_, layer) in BaseModel.LoraLayers()) layer.AdapterDisabled = !enabled;
    }
}
