using NativeQuant.Autograd;
using NativeQuant.NN;
using NativeQuant.Tensors;

namespace NativeQuant.Training;

/// <summary>
/// Restores the dropout generators of a freshly built model to where a run left them. A <see cref="Dropout"/>
/// draws one seed per training forward (none in eval mode, none when p = 0, and checkpoint recomputation
/// replays rather than draws), and a model rebuilt from the same config starts with the same generators; so
/// running each active dropout forward <c>draws</c> times on a one-element tensor advances it exactly.
/// </summary>
public static class DropoutReplay
{
    public static void Advance(Module model, long draws)
    {
        var active = model.NamedModules().Select(m => m.Module).OfType<Dropout>().Where(d => d.P > 0f).ToList();
        if (active.Count == 0 || draws == 0) return;
        bool wasTraining = model.Training;
        model.Train();
        using (GradMode.NoGrad())
        using (var scope = new TensorScope())
        {
            using var one = Tensor.Zeros([1]);
            foreach (var d in active)
                for (long i = 0; i < draws; i++) d.Forward(one);
        }
        model.Train(wasTraining);
    }
}
