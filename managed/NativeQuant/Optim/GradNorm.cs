using NativeQuant.NN;

namespace NativeQuant.Optim;

/// <summary>Global L2 norm of the gradients of a set of parameters (torch.nn.utils.clip_grad_norm_'s norm).</summary>
public static class GradNorm
{
    /// <summary>sqrt(sum of g² over every parameter that has a gradient), accumulated in double so the result does
    /// not depend on how the parameters are split into tensors. NaN/Inf propagate into the result.</summary>
    public static double Compute(IEnumerable<Parameter> parameters)
    {
        double sum = 0;
        foreach (var p in parameters)
        {
            if (p.Grad is not { } g) continue;
            foreach (float v in g.Data) sum += (double)v * v;
        }
        return Math.Sqrt(sum);
    }

    /// <summary>Scale that brings <paramref name="norm"/> down to <paramref name="maxNorm"/> (1 when already below),
    /// with PyTorch's 1e-6 guard against division by a zero norm.</summary>
    public static float ClipScale(double norm, double maxNorm) =>
        norm > maxNorm ? (float)(maxNorm / (norm + 1e-6)) : 1f;
}
