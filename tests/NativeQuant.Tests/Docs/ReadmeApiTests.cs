using NativeQuant.Generation;
using NativeQuant.Models;
using NativeQuant.NN;
using NativeQuant.Peft;
using NUnit.Framework;

namespace NativeQuant.Tests.Docs;

/// <summary>The README's "API" snippet, line for line, so the README cannot drift from the code.</summary>
public class ReadmeApiTests
{
    [Test]
    public void ReadmeSnippetRunsAsWritten()
    {
        var dir = Path.Combine(Path.GetTempPath(), "nq-readme-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var model = CausalLM.Load("stories15M", new QuantConfig(QuantType.Nf4, DoubleQuant: true));
            var text = model.Generate("Once upon a time", new GenerationOptions(MaxNewTokens: 60, Temperature: 0f)).Text;
            var ppl = model.Perplexity("The cat sat on the mat.").Perplexity;

            KbitTraining.PrepareForKbitTraining(model);
            var peft = PeftModel.GetPeftModel(model, new LoraConfig { R = 8, LoraAlpha = 16,
                TargetModules = TargetModules.FromNames("q_proj", "v_proj") });
            var printed = new StringWriter();
            peft.PrintTrainableParameters(printed);
            peft.SavePretrained(dir);

            Assert.That(text, Does.StartWith(", there was a little girl named Lily"), "Text is the continuation after the prompt");
            Assert.That(ppl, Is.GreaterThan(1.0).And.LessThan(1000.0), "a story model finds a plain sentence plausible");
            // The README quotes this line; the count is checked by hand in PeftModelTests.
            Assert.That(printed.ToString().Trim(),
                Is.EqualTo("trainable params: 55,296 || all params: 15,247,008 || trainable%: 0.3627"));
            Assert.That(File.Exists(Path.Combine(dir, "adapter_config.json")), Is.True);
            Assert.That(File.Exists(Path.Combine(dir, "adapter_model.safetensors")), Is.True);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
