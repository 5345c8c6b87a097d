using NativeQuant.IO;
using NUnit.Framework;

namespace NativeQuant.Tests.IO;

public class HfDirectoryTests
{
    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    private void WriteShard(string file, params string[] names)
    {
        var w = new SafeTensorsWriter();
        foreach (var n in names) w.AddValues(n, TensorDType.F32, [2], new[] { 1f, (float)n.Length });
        w.Save(_dir.File(file));
    }

    [Test]
    public void ReadsShardedDirectory()
    {
        File.WriteAllText(_dir.File("config.json"), "{\"model_type\":\"llama\",\"hidden_size\":2}");
        WriteShard("model-00001-of-00002.safetensors", "a.weight", "b.weight");
        WriteShard("model-00002-of-00002.safetensors", "c.weight");
        File.WriteAllText(_dir.File("model.safetensors.index.json"),
            "{\"metadata\":{},\"weight_map\":{\"a.weight\":\"model-00001-of-00002.safetensors\",\"b.weight\":\"model-00001-of-00002.safetensors\",\"c.weight\":\"model-00002-of-00002.safetensors\"}}");
        using var dir = HfDirectory.Open(_dir.Path);
        Assert.That(dir.Config.GetProperty("model_type").GetString(), Is.EqualTo("llama"));
        Assert.That(dir.Names, Is.EqualTo(new[] { "a.weight", "b.weight", "c.weight" }));
        Assert.That(TensorConvert.ToFloat32(dir.Get("c.weight")), Is.EqualTo(new[] { 1f, 8f }));
        using var viaFactory = TensorSources.Open(_dir.Path);
        Assert.That(viaFactory, Is.InstanceOf<HfDirectory>());
    }

    [Test]
    public void MissingShardIsNamed()
    {
        File.WriteAllText(_dir.File("config.json"), "{}");
        File.WriteAllText(_dir.File("model.safetensors.index.json"), "{\"weight_map\":{\"a\":\"gone.safetensors\"}}");
        var e = Assert.Throws<FileNotFoundException>(() => HfDirectory.Open(_dir.Path).Dispose())!;
        Assert.That(e.Message, Does.Contain("gone.safetensors").And.Contain("'a'"));
    }

    [Test]
    public void IndexNamingTensorAbsentFromShardIsRejected()
    {
        File.WriteAllText(_dir.File("config.json"), "{}");
        WriteShard("s.safetensors", "a");
        File.WriteAllText(_dir.File("model.safetensors.index.json"), "{\"weight_map\":{\"a\":\"s.safetensors\",\"zz\":\"s.safetensors\"}}");
        var e = Assert.Throws<InvalidDataException>(() => HfDirectory.Open(_dir.Path).Dispose())!;
        Assert.That(e.Message, Does.Contain("'zz'").And.Contain("does not contain it"));
    }

    [Test]
    public void MissingConfigIsNamed()
    {
        WriteShard("model.safetensors", "a");
        var e = Assert.Throws<FileNotFoundException>(() => HfDirectory.Open(_dir.Path).Dispose())!;
        Assert.That(e.Message, Does.Contain("config.json"));
    }
}
