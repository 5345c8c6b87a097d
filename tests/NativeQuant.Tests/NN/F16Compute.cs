using NativeQuant.Interop;

namespace NativeQuant.Tests.NN;

/// <summary>What the fp16-compute tests share: whether the CPU runs NQ_COMPUTE_F16 natively (else it computes in
/// fp32 and results equal F32's), and the relative error they are bounded by.</summary>
internal static class F16Compute
{
    public static bool Native => (NativeRuntime.CpuFeatures & NqCpuFeature.Avx512fp16) != 0 && NativeRuntime.Isa >= NqIsa.Avx512Bf16;

    /// <summary>‖a − b‖₂ / ‖b‖₂ in double.</summary>
    public static double RelError(float[] a, float[] b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            num += (a[i] - (double)b[i]) * (a[i] - (double)b[i]);
            den += (double)b[i] * b[i];
        }
        return Math.Sqrt(num / den);
    }
}
