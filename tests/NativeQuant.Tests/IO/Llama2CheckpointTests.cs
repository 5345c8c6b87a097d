using NativeQuant.Fetch;
using NativeQuant.IO;
using NUnit.Framework;

namespace NativeQuant.Tests.IO;

public class Llama2CheckpointTests
{
    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    internal static string Stories15M()
    {
        try { return NativeQuant.Assets.Path("stories15M/model.bin"); }
        catch (AssetException e) { Assert.Fail($"stories15M is not fetched: run `nq fetch` (./build.sh test fetches first). {e.Message}"); throw; }
    }

    [Test]
    public void ReadsRealStories15MConfigAndTensors()
    {
        using var ckpt = Llama2Checkpoint.Open(Stories15M());
        Assert.That(ckpt.Config, Is.EqualTo(new Llama2Config(288, 768, 6, 6, 6, 32000, 256, SharedClassifier: true)));
        Assert.That(ckpt.InterleavedRope, Is.True);
        Assert.That(ckpt.Names, Has.Count.EqualTo(1 + 6 * 9 + 1), "embeddings, 9 tensors per layer, final norm; tied so no lm_head");
        Assert.That(ckpt.TryGet("lm_head.weight", out _), Is.False);
        Assert.That(ckpt.Get("model.layers.5.mlp.down_proj.weight").Shape, Is.EqualTo(new long[] { 288, 768 }));
        Assert.That(ckpt.Get("model.layers.0.self_attn.k_proj.weight").Shape, Is.EqualTo(new long[] { 288, 288 }));
        // Embedding values are the raw floats right after the 28-byte header.
        var raw = File.ReadAllBytes(Stories15M()).AsSpan(28, 16).ToArray();
        Assert.That(ckpt.Get("model.embed_tokens.weight").Data[..16].ToArray(), Is.EqualTo(raw));
        var norm = TensorConvert.ToFloat32(ckpt.Get("model.norm.weight"));
        Assert.That(norm.All(float.IsFinite) && norm.Any(v => v != 0), Is.True);
    }

    /// <summary>A checkpoint whose every float is its own index, so each tensor's position is checkable.</summary>
    private string WriteSynthetic(int vocab, bool truncate = false, bool extra = false)
    {
        var c = new Llama2Config(8, 12, 2, 2, 1, Math.Abs(vocab), 4, vocab > 0);
        long floats = (Llama2Checkpoint.ExpectedFileBytes(c) - 28) / 4;
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        foreach (int v in new[] { 8, 12, 2, 2, 1, vocab, 4 }) w.Write(v);
        for (long i = 0; i < floats; i++) w.Write((float)i);
        if (extra) w.Write(0f);
        var bytes = ms.ToArray();
        string path = _dir.File("tiny.bin");
        File.WriteAllBytes(path, truncate ? bytes[..^10] : bytes);
        return path;
    }

    [Test]
    public void MapsSyntheticCheckpointToHfNames()
    {
        using var ckpt = Llama2Checkpoint.Open(WriteSynthetic(vocab: -16));
        var c = ckpt.Config;
        Assert.That(c.SharedClassifier, Is.False);
        Assert.That(c.KvDim, Is.EqualTo(4));
        // Offsets (in floats): emb 16*8=128, rms_att 2*8=16, wq 2*64=128, wk 2*32=64, ...
        long emb = 128, rmsAtt = 16, wq = 128;
        float First(string n) => TensorConvert.ToFloat32(ckpt.Get(n))[0];
        Assert.That(First("model.embed_tokens.weight"), Is.EqualTo(0));
        Assert.That(First("model.layers.1.input_layernorm.weight"), Is.EqualTo(emb + 8));
        Assert.That(First("model.layers.1.self_attn.q_proj.weight"), Is.EqualTo(emb + rmsAtt + 64));
        Assert.That(First("model.layers.1.self_attn.k_proj.weight"), Is.EqualTo(emb + rmsAtt + wq + 32));
        Assert.That(ckpt.Get("model.layers.0.self_attn.k_proj.weight").Shape, Is.EqualTo(new long[] { 4, 8 }));
        Assert.That(ckpt.Get("model.layers.0.mlp.down_proj.weight").Shape, Is.EqualTo(new long[] { 8, 12 }));
        Assert.That(ckpt.Get("lm_head.weight").Shape, Is.EqualTo(new long[] { 16, 8 }));
        long total = (Llama2Checkpoint.ExpectedFileBytes(c) - 28) / 4;
        Assert.That(TensorConvert.ToFloat32(ckpt.Get("lm_head.weight"))[^1], Is.EqualTo(total - 1), "wcls is the last array");
        Assert.That(ckpt.Names[0], Is.EqualTo("model.embed_tokens.weight"));
        Assert.That(ckpt.Names[^1], Is.EqualTo("lm_head.weight"));
    }

    [Test]
    public void TruncatedCheckpointNamesExpectedAndActualBytes()
    {
        string path = WriteSynthetic(vocab: 16, truncate: true);
        long expected = Llama2Checkpoint.ExpectedFileBytes(new Llama2Config(8, 12, 2, 2, 1, 16, 4, true));
        var e = Assert.Throws<InvalidDataException>(() => Llama2Checkpoint.Open(path).Dispose())!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("truncated").And.Contain($"needs {expected} bytes, file has {expected - 10}"));
    }

    [Test]
    public void TrailingBytesAreRejected()
    {
        var e = Assert.Throws<InvalidDataException>(() => Llama2Checkpoint.Open(WriteSynthetic(vocab: 16, extra: true)).Dispose())!;
        Assert.That(e.Message, Does.Contain("4 trailing bytes"));
    }

    [Test]
    public void NonsenseHeaderIsRejected()
    {
        string path = _dir.File("junk.bin");
        File.WriteAllBytes(path, Enumerable.Range(0, 64).Select(i => (byte)(i * 37)).ToArray());
        var e = Assert.Throws<InvalidDataException>(() => Llama2Checkpoint.Open(path).Dispose())!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("not a llama2.c checkpoint"));
    }

    [Test]
    public void TensorDataAfterDisposeThrows()
    {
        var ckpt = Llama2Checkpoint.Open(WriteSynthetic(vocab: 16));
        var t = ckpt.Get("model.norm.weight");
        ckpt.Dispose();
        Assert.Throws<ObjectDisposedException>(() => _ = t.Data.Length);
    }
}
