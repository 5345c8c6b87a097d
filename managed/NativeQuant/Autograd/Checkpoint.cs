using NativeQuant.Tensors;

namespace NativeQuant.Autograd;

/// <summary>
/// Gradient checkpointing: runs a segment (one transformer block) without keeping its activations, and
/// recomputes it with the tape on during backward. Random draws made inside the segment (dropout seeds) are
/// recorded on the first run and replayed on the recomputation, so both runs see identical masks.
/// </summary>
public static class Checkpoint
{
    [ThreadStatic] private static List<ulong>? s_recording;
    [ThreadStatic] private static Queue<ulong>? s_replaying;

    /// <summary>A seed for one random op: drawn from <paramref name="rng"/>, except during a checkpoint
    /// recomputation, where the seed drawn by the original run is replayed.</summary>
    public static ulong NextSeed(Random rng)
    {
        if (s_replaying != null) return s_replaying.Dequeue();
        ulong seed = (ulong)rng.NextInt64();
        s_recording?.Add(seed);
        return seed;
    }

    /// <summary>y = segment(x) with activations dropped; <paramref name="parameters"/> are the tensors the
    /// segment reads that may require grad (its module's parameters).</summary>
    public static Tensor Apply(Func<Tensor, Tensor> segment, Tensor x, IReadOnlyList<Tensor> parameters)
    {
        bool needsGrad = GradMode.IsEnabled && (x.RequiresGrad || AnyRequiresGrad(parameters));
        if (!needsGrad) return segment(x);

        var seeds = new List<ulong>();
        Tensor y;
        var savedRecording = s_recording;
        s_recording = seeds;
        try
        {
            using var scope = new TensorScope();
            using (GradMode.NoGrad()) y = segment(x);
            scope.Keep(y);
        }
        finally { s_recording = savedRecording; }
        return Functional.Record(y, new CheckpointNode(segment, x, seeds));
    }

    private static bool AnyRequiresGrad(IReadOnlyList<Tensor> ps)
    {
        for (int i = 0; i < ps.Count; i++) if (ps[i].RequiresGrad) return true;
        return false;
    }

    private sealed class CheckpointNode(Func<Tensor, Tensor> segment, Tensor x, List<ulong> seeds) : Node(x)
    {
        protected internal override void Backward(Tensor g, GradSink sink)
        {
            var gx = sink.For(x);
            using var scope = new TensorScope();
            // A detached alias of x is the recomputation's leaf, so its gradient lands in alias.Grad.
            var alias = x.Detach();
            alias.RequiresGrad = gx != null;
            var savedReplay = s_replaying;
            s_replaying = new Queue<ulong>(seeds);
            Tensor y;
            try
            {
                // Backward reads only what the recomputed nodes saved: the segment's other intermediates go now.
                using (GradMode.EnableGrad())
                using (var recomputed = new TensorScope())
                    y = recomputed.KeepSaved(segment(alias));
            }
            finally { s_replaying = savedReplay; }
            if (!y.RequiresGrad) return;
            Engine.Backward(y, g);
            if (gx != null && alias.Grad != null)
                System.Numerics.Tensors.TensorPrimitives.Add(gx.Data, alias.Grad.Data, gx.Data);
        }
    }
}
