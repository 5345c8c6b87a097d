using NativeQuant.Autograd;
using NativeQuant.Interop;
using NativeQuant.NN;
using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Autograd;

public class KeepSavedTests
{
    // A block's intermediates that no backward node reads are freed when the block ends (TensorScope.KeepSaved), and
    // backward through their shapes alone gives the same gradients bit for bit.
    [Test]
    public void FreesWhatBackwardDoesNotRead_GradientsUnchanged()
    {
        var rng = new Random(3);
        using var w = TensorScope.Unscoped(() => Tensor.RandN([24, 32], rng, 0.2f));
        using var layer = new Linear4bit(w, null, NqQuant4Type.Nf4, 64, doubleQuant: true);
        using var x = TensorScope.Unscoped(() => Tensor.RandN([5, 32], rng));
        x.RequiresGrad = true;
        Tensor sum = null!, act = null!, proj = null!;
        // x -> sum = x + x (GELU saves it) -> act = gelu(sum) (the frozen 4-bit layer does not) -> proj -> proj * proj
        Tensor Block(Tensor input)
        {
            sum = Functional.Add(input, input);
            act = Functional.Gelu(sum);
            proj = layer.Forward(act);
            return Functional.Mul(proj, proj);
        }
        float[] Gradient(bool keepSaved)
        {
            using var step = new TensorScope();
            Tensor y;
            if (keepSaved)
            {
                using var block = new TensorScope();
                y = block.KeepSaved(Block(x));
            }
            else y = Block(x);
            Assert.That(act.IsDisposed, Is.EqualTo(keepSaved), "GELU's output is read by no backward node");
            Assert.That(sum.IsDisposed, Is.False, "GELU saved its input");
            Assert.That(proj.IsDisposed, Is.False, "Mul saved its inputs");
            Functional.Sum(y).Backward();
            var g = x.Grad!.ToArray();
            x.Grad.Dispose();
            x.Grad = null;
            return g;
        }
        Assert.That(Gradient(keepSaved: true), Is.EqualTo(Gradient(keepSaved: false)));
    }
}
