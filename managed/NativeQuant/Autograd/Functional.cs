using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

/// <summary>
/// Differentiable ops (torch.nn.functional). Each op computes its forward on contiguous fp32 tensors and,
/// when grad mode is on and an input requires grad, records a <see cref="Node"/> whose backward adds into
/// the gradients of exactly those inputs. The ops live in one file per concern (Functional.*.cs).
/// </summary>
public static partial class Functional
{
    internal static bool Recording(Tensor? a, Tensor? b = null, Tensor? c = null) =>
        GradMode.IsEnabled && (a is { RequiresGrad: true } || b is { RequiresGrad: true } || c is { RequiresGrad: true });

    internal static Tensor Record(Tensor output, Node node)
    {
        output.GradFn = node;
        output.RequiresGrad = true;
        if (node.SavesOutput) output.SavedForBackward = true;
        return output;
    }

    /// <summary>Checks that an op argument is a contiguous fp32 tensor, naming the op and argument otherwise.</summary>
    internal static void RequireFloat(Tensor t, string op, string arg)
    {
        if (t.DType != DType.Float32) throw new ArgumentException($"{op}: '{arg}' must be fp32, got {t.DType}{t.ShapeString}", arg);
        if (!t.IsContiguous) throw new ArgumentException($"{op}: '{arg}' must be contiguous (call Contiguous())", arg);
    }

    internal static void RequireSameShape(Tensor a, Tensor b, string op)
    {
        if (!a.Shape.SequenceEqual(b.Shape)) throw new ArgumentException($"{op}: shapes {a.ShapeString} and {b.ShapeString} differ");
    }

    internal static int LastDim(Tensor t, string op)
    {
        if (t.Rank == 0) throw new ArgumentException($"{op}: expected at least one dimension, got a scalar");
        return t.Size(-1);
    }
}
