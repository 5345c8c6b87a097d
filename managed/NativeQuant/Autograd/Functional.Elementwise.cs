using NativeQuant.Interop;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tensor = NativeQuant.Tensors.Tensor;
using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

// Elementwise ops: residual add, multiply, scale, SiLU, GELU(tanh), SwiGLU, dropout, reshape.
public static unsafe partial class Functional
{
    /// <summary>a + b, where b has a's shape or a's trailing shape (broadcast over leading dims, e.g. a bias).</summary>
    public static Tensor Add(Tensor a, Tensor b)
    {
        RequireFloat(a, "Add", nameof(a));
        RequireFloat(b, "Add", nameof(b));
        if (!a.Shape.EndsWith(b.Shape)) throw new ArgumentException($"Add: {b.ShapeString} does not broadcast to {a.ShapeString}");
        var y = Tensor.Empty(a.Shape);
        if (b.NumElements == a.NumElements) AddParallel(a, b, y);
        else
        {
            var bs = b.Data;
            var ys = y.Data;
            var aSpan = a.Data;
            for (int off = 0; off < ys.Length; off += bs.Length)
                TensorPrimitives.Add(aSpan.Slice(off, bs.Length), bs, ys.Slice(off, bs.Length));
        }
        return Recording(a, b) ? Record(y, new AddNode(a, b)) : y;
    }

    /// <summary>y = a + b elementwise (contiguous, same size; y may be a or b), large ones on both cores: a GPT-2
    /// residual sum (256, 768) is a serial ~0.1-0.2 ms pass otherwise, 24 of them per step.</summary>
    internal static void AddParallel(Tensor a, Tensor b, Tensor y) =>
        SpinPool.ForRanges((int)y.NumElements, ElementwiseParallelElements,
                           (i0, i1) => TensorPrimitives.Add(a.Data[i0..i1], b.Data[i0..i1], y.Data[i0..i1]));

    // From this size elementwise passes are split over both cores (a helper's wake-up is a few microseconds).
    internal const int ElementwiseParallelElements = 1 << 17;

    private sealed class AddNode(Tensor a, Tensor b) : Node([a, b], [])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            sink.Accumulate(a, g);
            if (b.NumElements == g.NumElements) sink.Accumulate(b, g);
            else if (sink.For(b) is { } gb) SumRowsInto(g.Data, gb.Data);  // a broadcast bias
        }
    }

    /// <summary>a * b elementwise (same shapes).</summary>
    public static Tensor Mul(Tensor a, Tensor b)
    {
        RequireFloat(a, "Mul", nameof(a));
        RequireFloat(b, "Mul", nameof(b));
        RequireSameShape(a, b, "Mul");
        var y = Tensor.Empty(a.Shape);
        TensorPrimitives.Multiply(a.Data, b.Data, y.Data);
        return Recording(a, b) ? Record(y, new MulNode(a, b)) : y;
    }

    private sealed class MulNode(Tensor a, Tensor b) : Node([a, b], [b.RequiresGrad ? a : null, a.RequiresGrad ? b : null])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.For(a) is { } ga) TensorPrimitives.MultiplyAdd(g.Data, b.Data, ga.Data, ga.Data);
            if (sink.For(b) is { } gb) TensorPrimitives.MultiplyAdd(g.Data, a.Data, gb.Data, gb.Data);
        }
    }

    /// <summary>x * s.</summary>
    public static Tensor Scale(Tensor x, float s)
    {
        RequireFloat(x, "Scale", nameof(x));
        var y = Tensor.Empty(x.Shape);
        TensorPrimitives.Multiply(x.Data, s, y.Data);
        return Recording(x) ? Record(y, new ScaleNode(x, s)) : y;
    }

    private sealed class ScaleNode(Tensor x, float s) : Node([x], [])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.For(x) is { } gx) TensorPrimitives.MultiplyAdd(g.Data, s, gx.Data, gx.Data);
        }
    }

    /// <summary>SiLU (swish): x * sigmoid(x).</summary>
    public static Tensor Silu(Tensor x)
    {
        RequireFloat(x, "Silu", nameof(x));
        var y = Tensor.Empty(x.Shape);
        var xs = x.Data;
        var ys = y.Data;
        for (int i = 0; i < xs.Length; i++) ys[i] = xs[i] / (1f + MathF.Exp(-xs[i]));
        return Recording(x) ? Record(y, new SiluNode(x)) : y;
    }

    private static float SiluGrad(float x)
    {
        float s = 1f / (1f + MathF.Exp(-x));
        return s * (1f + x * (1f - s));
    }

    private sealed class SiluNode(Tensor x) : Node([x], [x])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.For(x) is not { } gx) return;
            var xs = x.Data;
            var gs = g.Data;
            var d = gx.Data;
            for (int i = 0; i < xs.Length; i++) d[i] += gs[i] * SiluGrad(xs[i]);
        }
    }

    /// <summary>GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), natively (nq_gelu_forward:
    /// x sigmoid(2u) with a float exp, a few ulp from float64 besides the rounding of u).</summary>
    public static Tensor Gelu(Tensor x)
    {
        RequireFloat(x, "Gelu", nameof(x));
        var y = Tensor.Empty(x.Shape);
        float* xp = x.DataPointer, yp = y.DataPointer;
        // A GPT-2 MLP's (T, 4C) is 0.8M elements: split over both cores (the kernel runs on the calling thread).
        SpinPool.ForRanges((int)x.NumElements, ElementwiseParallelElements, (i0, i1) =>
        {
            if (i1 > i0) Nq.Check(NativeMethods.nq_gelu_forward(xp + i0, i1 - i0, yp + i0));
        });
        return Recording(x) ? Record(y, new GeluNode(x)) : y;
    }

    private sealed class GeluNode(Tensor x) : Node([x], [x])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.ForWrite(x, out bool fresh) is not { } gx) return;
            RequireFloat(g, "Gelu", nameof(g));
            float* xp = x.DataPointer, gp = g.DataPointer, dp = gx.DataPointer;
            float beta = fresh ? 0f : 1f;  // a first gradient is written (beta 0 reads nothing), later ones added
            SpinPool.ForRanges((int)x.NumElements, ElementwiseParallelElements, (i0, i1) =>
            {
                if (i1 > i0) Nq.Check(NativeMethods.nq_gelu_backward(xp + i0, gp + i0, i1 - i0, beta, dp + i0));
            });
        }
    }

    /// <summary>SwiGLU: silu(gate) * up (the LLaMA MLP's gating).</summary>
    public static Tensor SwiGlu(Tensor gate, Tensor up)
    {
        RequireFloat(gate, "SwiGlu", nameof(gate));
        RequireFloat(up, "SwiGlu", nameof(up));
        RequireSameShape(gate, up, "SwiGlu");
        var y = Tensor.Empty(gate.Shape);
        if (Vector512.IsHardwareAccelerated && y.NumElements >= Vector512<float>.Count) SwiGlu512(gate.Data, up.Data, y.Data);
        else SwiGluPasses(gate.Data, up.Data, y.Data);
        return Recording(gate, up) ? Record(y, new SwiGluNode(gate, up)) : y;
    }

    // g / (1 + exp(-g)) * up in vectorized passes (a scalar MathF.Exp per element was ~8 ns, 10% of prefill).
    internal static void SwiGluPasses(ReadOnlySpan<float> gs, ReadOnlySpan<float> us, Span<float> ys)
    {
        TensorPrimitives.Negate(gs, ys);
        TensorPrimitives.Exp(ys, ys);
        TensorPrimitives.Add(ys, 1f, ys);
        TensorPrimitives.Divide(gs, ys, ys);
        TensorPrimitives.Multiply(ys, us, ys);
    }

    // The same operations in one pass (bit-identical: TensorPrimitives.Exp is Vector512.Exp here), jitted fully
    // optimized at once: the generic TensorPrimitives passes run as tier-0 code for the first seconds of a process
    // (scalar helper calls per element, ~14 ns each: 60-80 us per decoded token for stories15M's six 768-wide SwiGLUs).
    // ys.Length >= 16; the last vector overlaps the previous one.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SwiGlu512(ReadOnlySpan<float> gs, ReadOnlySpan<float> us, Span<float> ys)
    {
        int n = ys.Length, w = Vector512<float>.Count;
        for (int i = 0; ; i += w)
        {
            if (i > n - w) i = n - w;
            var g = Vector512.Create(gs.Slice(i, w));
            (g / (Vector512.Exp(-g) + Vector512<float>.One) * Vector512.Create(us.Slice(i, w))).CopyTo(ys.Slice(i, w));
            if (i == n - w) return;
        }
    }

    private sealed class SwiGluNode(Tensor gate, Tensor up) : Node([gate, up], [gate, up])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            var ga = sink.For(gate);
            var gu = sink.For(up);
            var gs = gate.Data;
            var us = up.Data;
            var go = g.Data;
            for (int i = 0; i < gs.Length; i++)
            {
                float x = gs[i];
                if (ga != null) ga.Data[i] += go[i] * us[i] * SiluGrad(x);
                if (gu != null) gu.Data[i] += go[i] * x / (1f + MathF.Exp(-x));
            }
        }
    }

    /// <summary>Inverted dropout: zeroes each element with probability <paramref name="p"/> and scales survivors
    /// by 1/(1-p). The mask is a pure function of <paramref name="seed"/> (SplitMix64 per element), so a
    /// checkpointed recomputation with the same seed reproduces it exactly.</summary>
    public static Tensor Dropout(Tensor x, float p, bool training, ulong seed)
    {
        RequireFloat(x, "Dropout", nameof(x));
        if (p < 0f || p >= 1f) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout: p must be in [0, 1)");
        if (!training || p == 0f) return Reshape(x, x.Shape.ToArray());
        var mask = Tensor.Empty(x.Shape);
        var ms = mask.Data;
        float keep = 1f / (1f - p);
        for (int i = 0; i < ms.Length; i++) ms[i] = SplitMix.Uniform(seed, (ulong)i) < p ? 0f : keep;
        var y = Tensor.Empty(x.Shape);
        TensorPrimitives.Multiply(x.Data, ms, y.Data);
        if (Recording(x)) return Record(y, new DropoutNode(x, mask));
        mask.Dispose();
        return y;
    }

    private sealed class DropoutNode(Tensor x, Tensor mask) : Node([x], [])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.For(x) is { } gx) TensorPrimitives.MultiplyAdd(g.Data, mask.Data, gx.Data, gx.Data);
        }
    }

    /// <summary>A view with a new shape (one dim may be -1); gradients flow back reshaped.</summary>
    public static Tensor Reshape(Tensor x, params int[] shape)
    {
        var y = x.ViewRaw(shape);
        return Recording(x) ? Record(y, new ReshapeNode(x)) : y;
    }

    private sealed class ReshapeNode(Tensor x) : Node([x], [])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            sink.Accumulate(x, g);
        }
    }

    /// <summary>Sum of all elements (a scalar of shape [1]).</summary>
    public static Tensor Sum(Tensor x)
    {
        RequireFloat(x, "Sum", nameof(x));
        var y = Tensor.Empty([1]);
        y.Data[0] = TensorPrimitives.Sum(x.Data);
        return Recording(x) ? Record(y, new SumNode(x)) : y;
    }

    private sealed class SumNode(Tensor x) : Node([x], [])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.For(x) is { } gx) TensorPrimitives.Add(gx.Data, g.Data[0], gx.Data);
        }
    }
}
