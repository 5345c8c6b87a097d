using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tensor = NativeQuant.Tensors.Tensor;
using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

// Elementwise ops: residual add, multiply, scale, SiLU, GELU(tanh), SwiGLU, dropout, reshape.
public static partial class Functional
{
    // sqrt(2/pi) of the tanh approximation of GELU (as GPT-2 / HF "gelu_new").
    private const float GeluC = 0.7978845608028654f;
    private const float GeluA = 0.044715f;

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

    /// <summary>GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).</summary>
    public static Tensor Gelu(Tensor x)
    {
        RequireFloat(x, "Gelu", nameof(x));
        var y = Tensor.Empty(x.Shape);
        // A GPT-2 MLP's (T, 4C) is 0.8M elements: split over both cores.
        SpinPool.ForRanges((int)x.NumElements, ElementwiseParallelElements, (i0, i1) =>
        {
            var xs = x.Data[i0..i1];
            var ys = y.Data[i0..i1];
            if (Vector512.IsHardwareAccelerated) Gelu512(xs, ys);
            else GeluPasses(xs, ys);
        });
        return Recording(x) ? Record(y, new GeluNode(x)) : y;
    }

    private sealed class GeluNode(Tensor x) : Node([x], [x])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.ForWrite(x, out bool fresh) is not { } gx) return;
            SpinPool.ForRanges((int)x.NumElements, ElementwiseParallelElements, (i0, i1) =>
            {
                // A first gradient is cleared here a piece at a time (in L1), not in a pass of its own.
                for (int j0 = i0; j0 < i1; j0 += GeluChunk)
                {
                    int j1 = Math.Min(i1, j0 + GeluChunk);
                    var xs = x.Data[j0..j1];
                    var gs = g.Data[j0..j1];
                    var d = gx.Data[j0..j1];
                    if (fresh) d.Clear();
                    if (Vector512.IsHardwareAccelerated) GeluBackward512(xs, gs, d);
                    else GeluBackwardPasses(xs, gs, d);
                }
            });
        }
    }

    // y = 0.5 x (1 + t), t = tanh(sqrt(2/pi) (x + 0.044715 x^3)), in vectorized passes (the fallback without
    // AVX-512 and the reference the one-pass kernel must equal bit for bit).
    internal static void GeluPasses(ReadOnlySpan<float> x, Span<float> y)
    {
        GeluTanh(x, y);
        for (int i = 0; i < x.Length; i++) y[i] = 0.5f * x[i] * (1f + y[i]);
    }

    // d += g * gelu'(x) with gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
    internal static void GeluBackwardPasses(ReadOnlySpan<float> xs, ReadOnlySpan<float> gs, Span<float> d)
    {
        Span<float> ts = stackalloc float[GeluChunk];
        for (int i0 = 0; i0 < xs.Length; i0 += GeluChunk)
        {
            int n = Math.Min(GeluChunk, xs.Length - i0);
            var t = ts[..n];
            GeluTanh(xs.Slice(i0, n), t);
            for (int j = 0; j < n; j++)
            {
                float v = xs[i0 + j];
                float dt = (1f - t[j] * t[j]) * GeluC * (1f + 3f * GeluA * v * v);
                d[i0 + j] += gs[i0 + j] * (0.5f * (1f + t[j]) + 0.5f * v * dt);
            }
        }
    }

    private const int GeluChunk = 1024;  // backward's tanh scratch on the stack (4 KiB)

    // t = tanh(sqrt(2/pi) (x + 0.044715 x^3)) with vectorized passes: a scalar MathF.Tanh per
    // element was a quarter of a GPT-2 training step.
    private static void GeluTanh(ReadOnlySpan<float> x, Span<float> t)
    {
        TensorPrimitives.Multiply(x, x, t);         // x^2
        TensorPrimitives.Multiply(t, GeluA, t);     // a x^2
        TensorPrimitives.Add(t, 1f, t);             // 1 + a x^2
        TensorPrimitives.Multiply(t, x, t);         // x + a x^3
        TensorPrimitives.Multiply(t, GeluC, t);
        TensorPrimitives.Tanh(t, t);
    }

    // The passes' operations fused into one pass over registers (the six passes and the backward's scratch moved each
    // element through memory ~10 times: GELU was ~7% of a GPT-2 training step). Tails go through a zero-padded vector.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Gelu512(ReadOnlySpan<float> x, Span<float> y)
    {
        int n = x.Length, w = Vector512<float>.Count, i = 0;
        for (; i <= n - w; i += w)
        {
            var v = Vector512.Create(x.Slice(i, w));
            GeluOf(v, GeluTanh512(v)).CopyTo(y.Slice(i, w));
        }
        if (i == n) return;
        Span<float> tail = stackalloc float[w];
        tail.Clear();
        x[i..].CopyTo(tail);
        var vt = Vector512.Create(tail);
        GeluOf(vt, GeluTanh512(vt)).CopyTo(tail);
        tail[..(n - i)].CopyTo(y[i..]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void GeluBackward512(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> d)
    {
        int n = x.Length, w = Vector512<float>.Count, i = 0;
        for (; i <= n - w; i += w)
        {
            var v = Vector512.Create(x.Slice(i, w));
            (Vector512.Create(d.Slice(i, w)) + Vector512.Create(g.Slice(i, w)) * GeluGrad(v, GeluTanh512(v))).CopyTo(d.Slice(i, w));
        }
        if (i == n) return;
        Span<float> tx = stackalloc float[w], tg = stackalloc float[w];
        tx.Clear();
        tg.Clear();
        x[i..].CopyTo(tx);
        g[i..].CopyTo(tg);
        var vt = Vector512.Create(tx);
        (Vector512.Create(tg) * GeluGrad(vt, GeluTanh512(vt))).CopyTo(tx);
        for (int j = 0; j < n - i; j++) d[i + j] += tx[j];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> GeluOf(Vector512<float> x, Vector512<float> t) =>
        Vector512.Create(0.5f) * x * (Vector512<float>.One + t);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> GeluGrad(Vector512<float> x, Vector512<float> t)
    {
        var half = Vector512.Create(0.5f);
        var dt = (Vector512<float>.One - t * t) * Vector512.Create(GeluC) * (Vector512<float>.One + Vector512.Create(3f * GeluA) * x * x);
        return half * (Vector512<float>.One + t) + half * x * dt;
    }

    // GeluTanh's passes on one vector. tanh(u) as TensorPrimitives.Tanh computes a float vector (AOCL's vrs4_tanhf):
    // z = e^(-2|u|) - 1, tanh|u| = -z / (z + 2), sign of u restored.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> GeluTanh512(Vector512<float> x)
    {
        var u = (x * x * Vector512.Create(GeluA) + Vector512<float>.One) * x * Vector512.Create(GeluC);
        var z = Vector512.Exp(Vector512.Create(-2f) * Vector512.Abs(u)) - Vector512<float>.One;
        var sign = u.AsUInt32() & Vector512.Create(0x8000_0000u);
        return (sign ^ (-z / (z + Vector512.Create(2f))).AsUInt32()).AsSingle();
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
