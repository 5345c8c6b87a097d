using NativeQuant.Autograd;
using NativeQuant.IO;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Tests.Peft;

/// <summary>The model of tests/reference/peft/make_peft_reference.py: blocks h = h + v_proj(silu(q_proj(h))),
/// q_proj with bias; module paths layers.N.q_proj / layers.N.v_proj.</summary>
internal sealed class TinyBlock : Module<Tensor, Tensor>
{
    public TinyBlock(Module<Tensor, Tensor> q, Module<Tensor, Tensor> v)
    {
        RegisterModule("q_proj", q);
        RegisterModule("v_proj", v);
    }

    /// <summary>h (..., D) -> (..., D)</summary>
    public override Tensor Forward(Tensor h) =>
        Functional.Add(h, Child<Module<Tensor, Tensor>>("v_proj").Forward(Functional.Silu(Child<Module<Tensor, Tensor>>("q_proj").Forward(h))));
}

internal sealed class TinyStack : Module<Tensor, Tensor>
{
    public TinyStack(IEnumerable<TinyBlock> blocks) => RegisterModule("layers", new ModuleList<TinyBlock>(blocks));

    public override Tensor Forward(Tensor x)
    {
        var layers = Child<ModuleList<TinyBlock>>("layers");
        for (int i = 0; i < layers.Count; i++) x = layers[i].Forward(x);
        return x;
    }

    /// <summary>Builds the stack from tiny_base.safetensors.</summary>
    public static TinyStack Load(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        int n = file.Names.Count(k => k.EndsWith(".v_proj.weight", StringComparison.Ordinal));
        Parameter? P(string name) => file.TryGet(name, out var t) ? Param(TensorConvert.ToFloat32(t), t.Shape.Select(d => (int)d).ToArray()) : null;
        return new TinyStack(Enumerable.Range(0, n).Select(i => new TinyBlock(
            new Linear(P($"layers.{i}.q_proj.weight")!, P($"layers.{i}.q_proj.bias")),
            new Linear(P($"layers.{i}.v_proj.weight")!))));
    }

    /// <summary>Random fp32 stack of <paramref name="blocks"/> blocks of width <paramref name="dim"/>.</summary>
    public static TinyStack Random(int blocks, int dim, int seed)
    {
        var rng = new System.Random(seed);
        return new TinyStack(Enumerable.Range(0, blocks).Select(_ => new TinyBlock(new Linear(dim, dim, bias: true, rng), new Linear(dim, dim, bias: false, rng))));
    }

    public static Parameter Param(float[] data, int[] shape)
    {
        using var t = TensorScope.Unscoped(() => Tensor.FromArray(data, shape));
        return new Parameter(t);
    }
}

internal static class PeftReference
{
    public static string Dir([System.Runtime.CompilerServices.CallerFilePath] string thisFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile)!, "..", "..", "reference", "peft"));

    public static float[] Expected(string name)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(Dir(), "expected.safetensors"));
        return TensorConvert.ToFloat32(file.Get(name));
    }

    public static int[] ExpectedShape(string name)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(Dir(), "expected.safetensors"));
        return file.Get(name).Shape.Select(d => (int)d).ToArray();
    }
}
