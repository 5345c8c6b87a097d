using NativeQuant.Autograd;
using NativeQuant.Models;
using NativeQuant.Models.Llama;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Models;

public class LoaderTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "nq-engine-loader-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        File.Copy(Path.Combine(ReferenceDump.Dir, "tiny_llama", "model.safetensors"), Path.Combine(_dir, "model.safetensors"));
    }

    [TearDown] public void TearDown() => Directory.Delete(_dir, true);

    private string Config() => File.ReadAllText(Path.Combine(ReferenceDump.Dir, "tiny_llama", "config.json"));

    [Test]
    public void UnknownArchitecture_NamesIt()
    {
        File.WriteAllText(Path.Combine(_dir, "config.json"), Config().Replace("LlamaForCausalLM", "MambaForCausalLM"));
        var e = Assert.Throws<NotSupportedException>(() => CausalLM.Load(_dir));
        Assert.That(e!.Message, Does.Contain("MambaForCausalLM").And.Contain("config.json"));
    }

    [Test]
    public void ConfigDisagreeingWithWeights_NamesTensorAndFile()
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(Config())!;
        json["intermediate_size"] = json["intermediate_size"]!.GetValue<int>() * 2;
        File.WriteAllText(Path.Combine(_dir, "config.json"), json.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => CausalLM.Load(_dir));
        Assert.That(e!.Message, Does.Contain("gate_proj.weight").And.Contain(_dir).And.Contain("[256, 64]"));
    }

    [Test]
    public void MissingConfigField_NamesField()
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(Config())!.AsObject();
        json.Remove("hidden_size");
        File.WriteAllText(Path.Combine(_dir, "config.json"), json.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => CausalLM.Load(_dir));
        Assert.That(e!.Message, Does.Contain("hidden_size"));
    }

    [Test]
    public void InterleavedRopeWithMetaWeights_EqualsRotateHalfWithPermutedWeights()
    {
        var rng = new Random(9);
        using var scope = new TensorScope();
        using var noGrad = GradMode.NoGrad();
        int heads = 2, d = 8, c = heads * d;
        var x = Tensor.RandN([1, 3, c], rng);
        var meta = Tensor.RandN([c, c], rng);
        var hf = meta.Clone();
        RopePermutation.Permute(hf, heads);
        var qMeta = Functional.Rope(Functional.Linear(x, meta).Reshape(1, 3, heads, d), 5, RopeStyle.Interleaved);
        var qHf = Functional.Rope(Functional.Linear(x, hf).Reshape(1, 3, heads, d), 5, RopeStyle.RotateHalf);
        Assert.That(DotsPerHead(qMeta, heads, d), Is.EqualTo(DotsPerHead(qHf, heads, d)).Within(1e-4f));
        // And the HF layout really is a permutation of the Meta one per head: q_hf[p*D/2+i] = q_meta[2i+p].
        var a = qMeta.ToArray();
        var b = qHf.ToArray();
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < d / 2; i++)
                Assert.That(b[h * d + i], Is.EqualTo(a[h * d + 2 * i]).Within(1e-5f));
    }

    // q·q over positions within each head: invariant under permuting a head's dims, so equal iff the rotations agree.
    private static float[] DotsPerHead(Tensor q, int heads, int d)
    {
        var a = q.ToArray();
        int t = q.Size(1);
        var dots = new List<float>();
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < t; i++)
                for (int j = 0; j < t; j++)
                {
                    float s = 0;
                    for (int e = 0; e < d; e++) s += a[(i * heads + h) * d + e] * a[(j * heads + h) * d + e];
                    dots.Add(s);
                }
        return dots.ToArray();
    }
}
