using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

/// <summary>Reverse-mode traversal of the tape: topological order from the root, gradients of intermediates
/// freed as soon as their producer has consumed them, leaf gradients accumulated into <c>Tensor.Grad</c>.</summary>
internal static class Engine
{
    public static void Backward(Tensor root, Tensor? gradOutput)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException("Backward: the tensor does not require grad (no parameter it depends on requires grad, or it was computed under NoGrad)");
        if (gradOutput == null && root.NumElements != 1)
            throw new InvalidOperationException($"Backward: an output gradient is required for non-scalar tensor {root.ShapeString}");
        if (gradOutput != null && !gradOutput.Shape.SequenceEqual(root.Shape))
            throw new ArgumentException($"Backward: gradient shape {gradOutput.ShapeString} does not match tensor {root.ShapeString}");

        var sink = new Sink();
        var rootGrad = sink.For(root)!; // zeros, or a leaf's accumulated gradient
        if (gradOutput == null) System.Numerics.Tensors.TensorPrimitives.Add(rootGrad.Data, 1f, rootGrad.Data);
        else
        {
            using var g = gradOutput.Contiguous();
            System.Numerics.Tensors.TensorPrimitives.Add(rootGrad.Data, g.Data, rootGrad.Data);
        }
        if (root.IsLeaf) return;

        var order = TopologicalOrder(root);
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var t = order[i];
            if (!sink.Grads.Remove(t, out var g)) continue;
            sink.HandedOut = g;
            try { t.GradFn!.Backward(g, sink); }
            finally { g.Dispose(); }
        }
        foreach (var g in sink.Grads.Values) g.Dispose();
    }

    // Post-order DFS over non-leaf tensors that require grad (iterative: transformer tapes are deep).
    private static List<Tensor> TopologicalOrder(Tensor root)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor T, int Next)>();
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (t, next) = stack.Pop();
            var inputs = t.GradFn!.Inputs;
            if (next < inputs.Length)
            {
                stack.Push((t, next + 1));
                var x = inputs[next];
                if (x != null && x.RequiresGrad && !x.IsLeaf && visited.Add(x)) stack.Push((x, 0));
            }
            else order.Add(t);
        }
        return order;
    }

    private sealed class Sink : GradSink
    {
        public readonly Dictionary<Tensor, Tensor> Grads = new(ReferenceEqualityComparer.Instance);

        /// <summary>The output gradient handed to the running node, until an input takes its buffer over.</summary>
        public Tensor? HandedOut;

        public override Tensor? For(Tensor? input)
        {
            if (input == null || !input.RequiresGrad) return null;
            return Existing(input) ?? Store(input, Zeros(input.Shape.ToArray()));
        }

        public override Tensor? ForWrite(Tensor? input, out bool fresh)
        {
            fresh = false;
            if (input == null || !input.RequiresGrad) return null;
            if (Existing(input) is { } g) return g;
            fresh = true;
            return Store(input, TensorScope.Unscoped(() => Tensor.Empty(input.Shape.ToArray())));
        }

        // Large buffers are cleared on both cores: the zero-fills were ~2% of a GPT-2 step's main thread, serial.
        private static Tensor Zeros(int[] shape)
        {
            var g = TensorScope.Unscoped(() => Tensor.Empty(shape));
            SpinPool.ForRanges((int)g.NumElements, 1 << 18, (i0, i1) => g.Data[i0..i1].Clear());
            return g;
        }

        // A pass-through gradient (a residual sum's operands, a reshape) becomes the input's first gradient without a
        // zero-fill and an add: the handed-out buffer itself once, a copy otherwise.
        public override void Accumulate(Tensor? input, Tensor grad)
        {
            if (input == null || !input.RequiresGrad) return;
            if (Existing(input) is { } g)
            {
                Functional.AddParallel(g, grad, g);
                return;
            }
            var shape = input.Shape.ToArray();
            if (ReferenceEquals(grad, HandedOut))
            {
                HandedOut = null;
                Store(input, TensorScope.Unscoped(() => grad.ViewRaw(shape)));
            }
            else
            {
                var copy = Store(input, TensorScope.Unscoped(() => Tensor.Empty(shape)));
                SpinPool.ForRanges((int)grad.NumElements, Functional.ElementwiseParallelElements, (i0, i1) => grad.Data[i0..i1].CopyTo(copy.Data[i0..i1]));
            }
        }

        private Tensor? Existing(Tensor input) => input.IsLeaf ? input.Grad : Grads.GetValueOrDefault(input);

        private Tensor Store(Tensor input, Tensor g)
        {
            if (input.IsLeaf) input.Grad = g;
            else Grads[input] = g;
            return g;
        }
    }
}
