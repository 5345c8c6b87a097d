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

        public override Tensor? For(Tensor? input)
        {
            if (input == null || !input.RequiresGrad) return null;
            if (input.IsLeaf)
                return input.Grad ??= TensorScope.Unscoped(() => Tensor.Zeros(input.Shape));
            if (!Grads.TryGetValue(input, out var g))
            {
                g = TensorScope.Unscoped(() => Tensor.Zeros(input.Shape));
                Grads[input] = g;
            }
            return g;
        }
    }
}
