using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.Models;
using NativeQuant.Models.Llama;
using NativeQuant.NN;
using NativeQuant.Peft;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Peft;

public class PeftModelTests
{
    // fp32 merge: W + s·B·A computed once vs base + s·B(Ax) per input — rounding of sums of 16 terms.
    private const float MergeTol = 1e-5f;

    private static LoraConfig QV => new() { R = 4, LoraAlpha = 8, TargetModules = new[] { "q_proj", "v_proj" }, InitLoraWeights = LoraInit.Random };

    [Test]
    public void GetPeftModel_WrapsTargets_FreezesTheRest_WithPeftNames()
    {
        using var peft = PeftModel.GetPeftModel(TinyStack.Random(2, 8, 1), QV);
        var trainable = peft.NamedParameters().Where(p => p.Parameter.RequiresGrad).Select(p => p.Name).ToList();
        Assert.That(trainable, Does.Contain("base_model.model.layers.0.q_proj.lora_A.default.weight"));
        Assert.That(trainable, Does.Contain("base_model.model.layers.1.v_proj.lora_B.default.weight"));
        Assert.That(trainable, Has.Count.EqualTo(8));
        Assert.That(peft.NamedParameters().Single(p => p.Name == "base_model.model.layers.0.q_proj.base_layer.bias").Parameter.RequiresGrad, Is.False);
    }

    [Test]
    public void TargetModules_RegexFullMatchesThePath()
    {
        using var peft = PeftModel.GetPeftModel(TinyStack.Random(2, 8, 1), QV with { TargetModules = @"layers\.1\.(q|v)_proj" });
        Assert.That(peft.BaseModel.LoraLayers().Select(l => l.Path), Is.EqualTo(new[] { "layers.1.q_proj", "layers.1.v_proj" }));
        // A partial match is not enough (PEFT uses re.fullmatch).
        Assert.Throws<ArgumentException>(() => PeftModel.GetPeftModel(TinyStack.Random(2, 8, 1), QV with { TargetModules = @"q_proj" }));
    }

    [Test]
    public void UnknownTargetModule_ErrorListsTheLinearLayers()
    {
        var e = Assert.Throws<ArgumentException>(() => PeftModel.GetPeftModel(TinyStack.Random(1, 8, 1), QV with { TargetModules = new[] { "q_proj", "k_proj" } }));
        Assert.That(e!.Message, Does.Contain("k_proj").And.Contain("[q_proj, v_proj]"));
        var notLinear = Assert.Throws<ArgumentException>(() => PeftModel.GetPeftModel(TinyStack.Random(1, 8, 1), QV with { TargetModules = new[] { "0" } }));
        Assert.That(notLinear!.Message, Does.Contain("TinyBlock"));
    }

    [Test]
    public void Config_Validation_NamesTheField()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => (QV with { R = 0 }).Validate())!.Message, Does.Contain("r)"));
        Assert.That(Assert.Throws<ArgumentException>(() => (QV with { Bias = "some" }).Validate())!.Message, Does.Contain("bias"));
        Assert.That(Assert.Throws<ArgumentException>(() => (QV with { LoraDropout = 1f }).Validate())!.Message, Does.Contain("lora_dropout"));
        Assert.That(Assert.Throws<ArgumentException>(() => (QV with { TargetModules = null }).Validate())!.Message, Does.Contain("target_modules"));
    }

    [Test]
    public void BiasPolicy_And_ModulesToSave_ChooseWhatTrains()
    {
        using (var all = PeftModel.GetPeftModel(TinyStack.Random(1, 8, 1), QV with { Bias = "lora_only" }))
            Assert.That(all.NamedParameters().Single(p => p.Name.EndsWith("q_proj.base_layer.bias")).Parameter.RequiresGrad, Is.True);
        using var saved = PeftModel.GetPeftModel(TinyStack.Random(2, 8, 1), QV with { TargetModules = new[] { "q_proj" }, ModulesToSave = ["layers.1.v_proj"] });
        Assert.That(saved.NamedParameters().Single(p => p.Name == "base_model.model.layers.1.v_proj.weight").Parameter.RequiresGrad, Is.True);
        Assert.That(saved.NamedParameters().Single(p => p.Name == "base_model.model.layers.0.v_proj.weight").Parameter.RequiresGrad, Is.False);
        Assert.That(PeftAdapterFiles.AdapterState(saved).Keys, Does.Contain("base_model.model.layers.1.v_proj.weight"));
    }

    [Test]
    public void AllLinear_WrapsEveryLinearButTheHead_AndCountsMatchPeft_OnStories15M()
    {
        using (var peft = PeftModel.GetPeftModel(CausalLM.Load("stories15M"), new LoraConfig { R = 8, LoraAlpha = 16, TargetModules = new[] { "q_proj", "v_proj" } }))
        {
            // stories15M: dim 288, hidden 768, 6 layers, vocab 32000, head tied to the embedding (counted once).
            // base = 32000·288 (embed) + 6·(4·288² attn + 3·288·768 mlp + 2·288 norms) + 288 (final norm)
            //      = 9,216,000 + 6·995,904 + 288 = 15,191,712
            // LoRA = 6 layers · 2 modules · (8·288 A + 288·8 B) = 55,296; all = 15,247,008; 55,296/15,247,008 = 0.3627%.
            Assert.That(peft.TrainableParametersSummary(), Is.EqualTo("trainable params: 55,296 || all params: 15,247,008 || trainable%: 0.3627"));
        }
        using (var nf4 = PeftModel.GetPeftModel(CausalLM.Load("stories15M", new QuantConfig(QuantType.Nf4, DoubleQuant: true)),
                                                new LoraConfig { R = 8, TargetModules = "all-linear" }))
        {
            Assert.That(nf4.BaseModel.LoraLayers().Count(), Is.EqualTo(6 * 7));
            Assert.That(nf4.BaseModel.LoraLayers().Any(l => l.Path == "lm_head"), Is.False);
            // 4-bit weights count out×in as PEFT counts Params4bit; LoRA on all 7 projections:
            // per layer 4·8·(288+288) + 2·8·(288+768) + 8·(768+288) = 18,432 + 16,896 + 8,448 = 43,776; ×6 = 262,656.
            Assert.That(nf4.GetNbTrainableParameters(), Is.EqualTo((262_656L, 15_191_712L + 262_656L)));
        }
    }

    [Test]
    public void PrintTrainableParameters_WritesPeftFormat()
    {
        using var peft = PeftModel.GetPeftModel(TinyStack.Random(2, 8, 1), QV);
        var sw = new StringWriter();
        peft.PrintTrainableParameters(sw);
        // base: 2·(8·8 + 8 + 8·8) = 272; LoRA: 4 modules · (4·8 + 8·4) = 256; 256/528 = 48.4848%.
        Assert.That(sw.ToString().TrimEnd(), Is.EqualTo("trainable params: 256 || all params: 528 || trainable%: 48.4848"));
    }

    [Test]
    public void MergeAndUnload_Fp32_ReproducesAdapterOutput()
    {
        using var scope = new TensorScope();
        var x = Tensor.RandN([2, 3, 8], new Random(9));
        var peft = PeftModel.GetPeftModel(TinyStack.Random(2, 8, 1), QV);
        var withLora = ((TinyStack)peft.Model).Forward(x).ToArray();
        var result = peft.MergeAndUnload();
        using var merged = (TinyStack)result.Model;
        peft.Dispose();
        Assert.That(merged.NamedModules().Any(m => m.Module is LoraLinear), Is.False);
        Assert.That(result.RoundingErrors, Is.Empty);
        Assert.That(merged.Forward(x).ToArray(), Is.EqualTo(withLora).Within(MergeTol));
    }

    // Merging into an fp layer changes its weight in place: a packed copy of the old weight (Linear.PackedHead,
    // built where fp16 compute is native) must go with it.
    [Test]
    public void MergeAndUnload_DropsAPackedCopyOfTheOldWeight()
    {
        var stack = TinyStack.Random(1, 8, 1);
        var v = (Linear)stack.NamedModules().Single(m => m.Item1 == "layers.0.v_proj").Item2;
        v.ComputeDtype = NqComputeType.F16;
        v.Weight.RequiresGrad = false;
        bool packed = v.PackedHead() != null;
        using var peft = PeftModel.GetPeftModel(stack, QV);
        var result = peft.MergeAndUnload();
        using var merged = result.Model;
        Assert.That(merged.NamedModules().Single(m => m.Item1 == "layers.0.v_proj").Item2, Is.SameAs(v));
        Assert.That(v.PackedHeadBytes, Is.Zero, packed ? "the stale copy was dropped" : "none was built");
        if (packed) Assert.That(v.PackedHead(), Is.Not.Null, "rebuilt from the merged weight on the next use");
    }

    [TestCase("nf4")]
    [TestCase("int8")]
    public void MergeAndUnload_Quantized_RequantizesAndReportsRoundingError(string kind)
    {
        using var scope = new TensorScope();
        using var w = TensorScope.Unscoped(() => Tensor.RandN([32, 64], new Random(3), 0.2f));
        Module<Tensor, Tensor> q = kind == "nf4" ? new Linear4bit(w, null, NqQuant4Type.Nf4, 64, doubleQuant: false) : new Linear8bitLt(w, null, 6f);
        var peft = PeftModel.GetPeftModel(new TinyHolder(q), new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = new[] { "proj" }, InitLoraWeights = LoraInit.Random });
        var layer = peft.BaseModel.LoraLayers().Single().Layer;
        using var before = TensorScope.Unscoped(() => Dequantized(layer.BaseLayer));
        using var delta = TensorScope.Unscoped(layer.DeltaWeight);
        var result = peft.MergeAndUnload();
        using var holder = (TinyHolder)result.Model;
        peft.Dispose();
        var after = Dequantized(holder.Proj).ToArray();
        Assert.That(holder.Proj.GetType(), Is.EqualTo(q.GetType()));
        var err = result.RoundingErrors.Single();
        // Independent recomputation of the reported error: requantized weight vs dequantized base + update.
        double max = 0;
        var b = before.ToArray();
        var d = delta.ToArray();
        for (int i = 0; i < after.Length; i++) max = Math.Max(max, Math.Abs(after[i] - (b[i] + d[i])));
        Assert.That(err.MaxAbs, Is.EqualTo(max).Within(1e-7));
        Assert.That(err.MaxAbs, Is.GreaterThan(0));
        // The update survived requantization: the merged weight moved towards base + update.
        double movedRms = Math.Sqrt(after.Select((v, i) => Math.Pow(v - b[i], 2)).Average());
        Assert.That(err.Rms, Is.LessThan(err.UpdateRms));
        Assert.That(movedRms, Is.GreaterThan(0.5 * err.UpdateRms));
    }

    private static Tensor Dequantized(Module m) => m switch
    {
        Linear4bit l => l.Dequantize(),
        Linear8bitLt l => l.Dequantize(),
        _ => throw new ArgumentException(m.GetType().Name),
    };

    private sealed class TinyHolder : Module
    {
        public TinyHolder(Module<Tensor, Tensor> proj) => RegisterModule("proj", proj);
        public Module<Tensor, Tensor> Proj => Child<Module<Tensor, Tensor>>("proj");
    }

    [Test]
    public void PrepareForKbitTraining_FreezesAndEnablesCheckpointing_LoraStillGetsGradients()
    {
        var model = new LlamaForCausalLM(new LlamaConfig(64, 16, 32, 2, 2, 2, 16), new RandomWeights(1));
        model.RequiresGrad(true);
        KbitTraining.PrepareForKbitTraining(model);
        Assert.That(model.GradientCheckpointing, Is.True);
        Assert.That(model.Parameters().Any(p => p.RequiresGrad), Is.False);
        using var peft = PeftModel.GetPeftModel(model, new LoraConfig { R = 2, TargetModules = new[] { "q_proj", "v_proj" }, InitLoraWeights = LoraInit.Random });
        peft.Train();
        using var scope = new TensorScope();
        var ids = Tensor.FromArray([1, 2, 3, 4, 5, 6], 1, 6);
        var logits = peft.Forward(ids);
        Functional.Sum(logits).Backward();
        foreach (var (_, layer) in peft.BaseModel.LoraLayers())
            Assert.That(layer.LoraA.Grad, Is.Not.Null, "gradient reached lora_A through a checkpointed block whose input does not require grad");
    }
}
