using System.Buffers.Binary;

namespace NativeQuant.IO;

/// <summary>
/// A legacy llama2.c `.bin` checkpoint (Karpathy's run.c format), memory-mapped and exposed under HF LLaMA
/// tensor names. Layout after the 7-int32 header (all float32): token_embedding (vocab, dim), rms_att (L, dim),
/// wq (L, dim, dim), wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn (L, dim),
/// w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim), rms_final (dim), two unused RoPE tables
/// (seq_len * head_size / 2 each), then wcls (vocab, dim) only when vocab_size is stored negative (untied).
/// q/k rows keep llama2.c's interleaved-RoPE order (<see cref="InterleavedRope"/> is true).
/// </summary>
public sealed unsafe class Llama2Checkpoint : ITensorSource
{
    private const int HeaderBytes = 7 * sizeof(int);

    private readonly MappedFile _file;
    private readonly Dictionary<string, TensorInfo> _tensors = new(StringComparer.Ordinal);
    private readonly List<string> _names = new();

    private Llama2Checkpoint(MappedFile file, Llama2Config config)
    {
        _file = file;
        Config = config;
    }

    public Llama2Config Config { get; }
    public string SourcePath => _file.Path;
    public IReadOnlyList<string> Names => _names;
    public bool InterleavedRope => true;
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();
    public bool IsDisposed { get; private set; }

    public bool TryGet(string name, out TensorInfo tensor) => _tensors.TryGetValue(name, out tensor!);

    public static Llama2Checkpoint Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        var file = new MappedFile(path);
        try
        {
            if (file.Length < HeaderBytes)
                throw new InvalidDataException($"{path}: llama2.c checkpoint is {file.Length} bytes, shorter than its {HeaderBytes}-byte header");
            var config = ReadConfig(path, file.Slice(0, HeaderBytes));
            var ckpt = new Llama2Checkpoint(file, config);
            ckpt.MapTensors();
            return ckpt;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Exact byte size a checkpoint with this header must have.</summary>
    public static long ExpectedFileBytes(Llama2Config c) => HeaderBytes + 4 * Layout(c).Sum(x => x.Elements);

    private static Llama2Config ReadConfig(string path, ReadOnlySpan<byte> header)
    {
        var h = new int[7];
        for (int i = 0; i < h.Length; i++) h[i] = BinaryPrimitives.ReadInt32LittleEndian(header[(4 * i)..]);
        int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kvHeads = h[4], vocab = h[5], seq = h[6];
        void Require(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{path}: not a llama2.c checkpoint (header dim={dim} hidden_dim={hidden} n_layers={layers} n_heads={heads} n_kv_heads={kvHeads} vocab_size={vocab} seq_len={seq}): {what}");
        }
        Require(dim > 0 && hidden > 0 && layers > 0 && heads > 0 && kvHeads > 0 && seq > 0 && vocab != 0 && vocab != int.MinValue,
            "every field must be positive (vocab_size may be negative for an untied classifier)");
        Require(dim % heads == 0, "dim must be a multiple of n_heads");
        Require(kvHeads <= heads && heads % kvHeads == 0, "n_heads must be a multiple of n_kv_heads");
        Require((dim / heads) % 2 == 0, "head size must be even (RoPE rotates pairs)");
        return new Llama2Config(dim, hidden, layers, heads, kvHeads, Math.Abs(vocab), seq, SharedClassifier: vocab > 0);
    }

    private sealed record Block(string? Name, long[] Shape, long Elements, bool PerLayer);

    /// <summary>The file's arrays in order; Name null for skipped arrays; per-layer arrays have a leading L.</summary>
    private static IEnumerable<Block> Layout(Llama2Config c)
    {
        long d = c.Dim, h = c.HiddenDim, kv = c.KvDim, v = c.VocabSize, L = c.NLayers;
        Block B(string? name, bool perLayer, params long[] shape) =>
            new(name, shape, (perLayer ? L : 1) * shape.Aggregate(1L, (a, b) => a * b), perLayer);
        yield return B("model.embed_tokens.weight", false, v, d);
        yield return B("model.layers.{0}.input_layernorm.weight", true, d);
        yield return B("model.layers.{0}.self_attn.q_proj.weight", true, d, d);
        yield return B("model.layers.{0}.self_attn.k_proj.weight", true, kv, d);
        yield return B("model.layers.{0}.self_attn.v_proj.weight", true, kv, d);
        yield return B("model.layers.{0}.self_attn.o_proj.weight", true, d, d);
        yield return B("model.layers.{0}.post_attention_layernorm.weight", true, d);
        yield return B("model.layers.{0}.mlp.gate_proj.weight", true, h, d);
        yield return B("model.layers.{0}.mlp.down_proj.weight", true, d, h);
        yield return B("model.layers.{0}.mlp.up_proj.weight", true, h, d);
        yield return B("model.norm.weight", false, d);
        yield return B(null, false, (long)c.SeqLen * c.HeadSize / 2); // freq_cis_real (unused since llama2.c computes RoPE)
        yield return B(null, false, (long)c.SeqLen * c.HeadSize / 2); // freq_cis_imag
        if (!c.SharedClassifier) yield return B("lm_head.weight", false, v, d);
    }

    private void MapTensors()
    {
        long expected = ExpectedFileBytes(Config);
        if (_file.Length != expected)
            throw new InvalidDataException(_file.Length < expected
                ? $"{SourcePath}: truncated llama2.c checkpoint: header {Describe()} needs {expected} bytes, file has {_file.Length}"
                : $"{SourcePath}: llama2.c checkpoint has {_file.Length - expected} trailing bytes: header {Describe()} needs {expected} bytes, file has {_file.Length}");

        var perLayer = new List<(string Name, long[] Shape)>[Config.NLayers];
        for (int i = 0; i < perLayer.Length; i++) perLayer[i] = new();
        var top = new List<string>();
        long offset = HeaderBytes;
        foreach (var b in Layout(Config))
        {
            if (b.Name is not null && b.PerLayer)
            {
                long each = b.Elements / Config.NLayers * 4;
                for (int l = 0; l < Config.NLayers; l++)
                {
                    string name = string.Format(b.Name, l);
                    _tensors[name] = new TensorInfo(this, name, TensorDType.F32, b.Shape, _file.Pointer + offset + l * each, each);
                    perLayer[l].Add((name, b.Shape));
                }
            }
            else if (b.Name is not null)
            {
                _tensors[b.Name] = new TensorInfo(this, b.Name, TensorDType.F32, b.Shape, _file.Pointer + offset, b.Elements * 4);
                top.Add(b.Name);
            }
            offset += b.Elements * 4;
        }
        // HF order: embeddings, then each layer's tensors together, then the final norm and head.
        _names.Add(top[0]);
        foreach (var layer in perLayer) _names.AddRange(layer.Select(x => x.Name));
        _names.AddRange(top.Skip(1));
    }

    private string Describe() =>
        $"(dim {Config.Dim}, hidden {Config.HiddenDim}, {Config.NLayers} layers, {Config.NHeads} heads, {Config.NKvHeads} kv heads, vocab {Config.VocabSize}, seq {Config.SeqLen}, {(Config.SharedClassifier ? "tied" : "untied")} classifier)";

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        _file.Dispose();
    }
}
