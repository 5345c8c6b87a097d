using NativeQuant.Interop;
using System.Numerics.Tensors;
using Tensor = NativeQuant.Tensors.Tensor;
using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

// Matrix products: Linear (weight (out, in), as torch.nn.Linear), MatMul (weight (in, out), as HF's Conv1D),
// and the quantized linear hook. All go through Gemm.Sgemm.
public static unsafe partial class Functional
{
    /// <summary>y(..., out) = x(..., in) · weightᵀ + bias, weight (out, in). <paramref name="compute"/>: precision of
    /// the y and dx products (<see cref="Gemm.Sgemm(bool, bool, int, int, int, float*, float*, float, float*, NqComputeType, float*)"/>,
    /// as torch.autocast runs a linear layer); dW is always fp32.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null, NqComputeType compute = NqComputeType.F32) =>
        Affine(x, weight, bias, weightIsInOut: false, compute);

    /// <summary>y(..., out) = x(..., in) · weight + bias, weight (in, out) — GPT-2's Conv1D layout.</summary>
    public static Tensor MatMul(Tensor x, Tensor weight, Tensor? bias = null) => Affine(x, weight, bias, weightIsInOut: true, NqComputeType.F32);

    private static Tensor Affine(Tensor x, Tensor weight, Tensor? bias, bool weightIsInOut, NqComputeType compute)
    {
        string op = weightIsInOut ? "MatMul" : "Linear";
        RequireFloat(x, op, nameof(x));
        RequireFloat(weight, op, nameof(weight));
        if (weight.Rank != 2) throw new ArgumentException($"{op}: weight must be 2-D, got {weight.ShapeString}");
        int inF = weightIsInOut ? weight.Size(0) : weight.Size(1);
        int outF = weightIsInOut ? weight.Size(1) : weight.Size(0);
        if (LastDim(x, op) != inF) throw new ArgumentException($"{op}: input {x.ShapeString} has last dim {x.Size(-1)}, weight {weight.ShapeString} expects {inF}");
        if (bias != null)
        {
            RequireFloat(bias, op, nameof(bias));
            if (bias.Rank != 1 || bias.Size(0) != outF) throw new ArgumentException($"{op}: bias must be [{outF}], got {bias.ShapeString}");
        }
        int m = (int)(x.NumElements / inF);
        var shape = x.Shape.ToArray();
        shape[^1] = outF;
        var y = Tensor.Empty(shape);
        Gemm.Sgemm(false, !weightIsInOut, m, outF, inF, x.DataPointer, weight.DataPointer, 0f, y.DataPointer, compute, bias == null ? null : bias.DataPointer);
        return Recording(x, weight, bias) ? Record(y, new AffineNode(x, weight, bias, weightIsInOut, compute)) : y;
    }

    /// <summary>y + x(..., in) · weightᵀ, weight (out, in), y (..., out), fp32: LoRA's up-projection added to the base
    /// layer's output. <paramref name="y"/> is consumed: when no tape node reads its data the product accumulates into
    /// its buffer (a GEMM with beta 1, the same bits as the product plus an add), which the result then shares, so no
    /// (..., out) temporary, add pass or gradient copy is made; the caller must not use y afterwards.</summary>
    public static Tensor AddLinear(Tensor y, Tensor x, Tensor weight)
    {
        RequireFloat(y, "AddLinear", nameof(y));
        if (y.SavedForBackward || y.IsLeaf && y.RequiresGrad) return Add(y, Linear(x, weight));  // y must stay as it is
        RequireFloat(x, "AddLinear", nameof(x));
        RequireFloat(weight, "AddLinear", nameof(weight));
        if (weight.Rank != 2 || LastDim(x, "AddLinear") != weight.Size(1) || LastDim(y, "AddLinear") != weight.Size(0) ||
            y.NumElements / weight.Size(0) != x.NumElements / weight.Size(1))
            throw new ArgumentException($"AddLinear: x {x.ShapeString} · weight {weight.ShapeString}ᵀ does not match y {y.ShapeString}");
        int m = (int)(x.NumElements / weight.Size(1));
        Gemm.Sgemm(false, true, m, weight.Size(0), weight.Size(1), x.DataPointer, weight.DataPointer, 1f, y.DataPointer);
        var z = y.ViewRaw(y.Shape.ToArray());
        return Recording(y, x, weight) ? Record(z, new AddLinearNode(y, x, weight)) : z;
    }

    // dy = g (passed through), dx and dW as the Linear's.
    private sealed class AddLinearNode(Tensor y, Tensor x, Tensor w) : Node([y, x, w], [w.RequiresGrad ? x : null, x.RequiresGrad ? w : null])
    {
        private readonly AffineNode _linear = new(x, w, null, false, NqComputeType.F32);

        protected internal override void Backward(Tensor g, GradSink sink)
        {
            _linear.Backward(g, sink);
            sink.Accumulate(y, g);
        }
    }

    private static void AddBiasRows(Span<float> y, ReadOnlySpan<float> bias)
    {
        for (int off = 0; off < y.Length; off += bias.Length) TensorPrimitives.Add(y.Slice(off, bias.Length), bias, y.Slice(off, bias.Length));
    }

    private static void SumRowsInto(ReadOnlySpan<float> g, Span<float> acc)
    {
        for (int off = 0; off < g.Length; off += acc.Length) TensorPrimitives.Add(acc, g.Slice(off, acc.Length), acc);
    }

    private sealed class AffineNode(Tensor x, Tensor w, Tensor? b, bool inOut, NqComputeType compute) : Node([x, w, b], [w.RequiresGrad ? x : null, x.RequiresGrad ? w : null])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            int inF = x.Size(-1), outF = g.Size(-1);
            int m = (int)(x.NumElements / inF);
            var gx = sink.ForWrite(x, out bool fresh);
            var gw = sink.For(w);
            // dx(m,in) [+]= g(m,out) · W(out,in)   [Linear]   or   g · W(in,out)ᵀ   [MatMul]
            void Dx() => Gemm.Sgemm(false, inOut, m, inF, outF, g.DataPointer, w.DataPointer, fresh ? 0f : 1f, gx!.DataPointer, compute);
            void Dw()
            {
                if (inOut) Gemm.Sgemm(true, false, inF, outF, m, x.DataPointer, g.DataPointer, 1f, gw!.DataPointer); // dW(in,out) += xᵀ·g
                else Gemm.Sgemm(true, false, outF, inF, m, g.DataPointer, x.DataPointer, 1f, gw!.DataPointer);      // dW(out,in) += gᵀ·x
            }
            // Products the native library runs on one thread (LoRA's rank-r factors, 0.1-0.25 ms each) are independent:
            // dx and dW side by side on both cores.
            if (gx != null && gw != null && (long)m * inF * outF < Gemm.NativeSerialWork && SpinPool.Width > 1)
                SpinPool.For(2, p => { if (p == 0) Dx(); else Dw(); });
            else
            {
                if (gx != null) Dx();
                if (gw != null) Dw();
            }
            if (b != null && sink.For(b) is { } gb) SumRowsInto(g.Data, gb.Data);
        }
    }

    /// <summary>y(..., out) = x(..., in) · Wᵀ + bias for a frozen quantized W; backward gives dx (and dbias).</summary>
    public static Tensor QuantizedLinear(Tensor x, IQuantizedWeight weight, Tensor? bias = null)
    {
        RequireFloat(x, "QuantizedLinear", nameof(x));
        int inF = weight.InFeatures, outF = weight.OutFeatures;
        if (LastDim(x, "QuantizedLinear") != inF) throw new ArgumentException($"QuantizedLinear: input {x.ShapeString} has last dim {x.Size(-1)}, weight expects {inF}");
        if (bias != null && (bias.Rank != 1 || bias.Size(0) != outF)) throw new ArgumentException($"QuantizedLinear: bias must be [{outF}], got {bias.ShapeString}");
        int m = (int)(x.NumElements / inF);
        var shape = x.Shape.ToArray();
        shape[^1] = outF;
        var y = Tensor.Empty(shape);
        if (RowSplit.Applies(weight, m))
        {
            RowSplit.Run(x.DataPointer, m, [(IRowRangeWeight)weight], [(nint)y.DataPointer]);
            if (bias != null) AddBiasRows(y.Data, bias.Data);
        }
        else weight.MatMulTransposed(x.DataPointer, m, bias == null ? null : bias.DataPointer, y.DataPointer);
        return Recording(x, bias) ? Record(y, new QuantizedLinearNode(x, weight, bias)) : y;
    }

    private sealed class QuantizedLinearNode(Tensor x, IQuantizedWeight w, Tensor? b) : Node([x, b], [])
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            if (sink.ForWrite(x, out bool fresh) is { } gx)
                w.MatMulInputGrad(g.DataPointer, (int)(g.NumElements / w.OutFeatures), fresh ? 0f : 1f, gx.DataPointer);
            if (b != null && sink.For(b) is { } gb) SumRowsInto(g.Data, gb.Data);
        }
    }
}
