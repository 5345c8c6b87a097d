using NativeQuant.Interop;
using NUnit.Framework;

namespace NativeQuant.Tests.Interop;

public class NativeRuntimeTests
{
    [Test]
    public void VersionMajorMatchesTheBindings() =>
        Assert.That(NativeRuntime.Version.Major, Is.EqualTo(NativeLibraryResolver.ExpectedAbiMajor));

    [Test]
    public void CpuHasTheMinimumFeatureSet()
    {
        // The library is compiled with AVX2+FMA+F16C as its baseline, so any CPU running it has them.
        var required = NqCpuFeature.Avx2 | NqCpuFeature.Fma | NqCpuFeature.F16c;
        Assert.That(NativeRuntime.CpuFeatures & required, Is.EqualTo(required));
        Assert.That(NativeRuntime.SupportedIsa, Is.GreaterThanOrEqualTo(NqIsa.Avx2));
    }

    [Test]
    public void IsaCapIsAppliedAndClampedToTheCpu()
    {
        var original = NativeRuntime.Isa;
        try
        {
            NativeRuntime.Isa = NqIsa.Scalar;
            Assert.That(NativeRuntime.Isa, Is.EqualTo(NqIsa.Scalar));
            NativeRuntime.Isa = NqIsa.Avx512Bf16;
            Assert.That(NativeRuntime.Isa, Is.EqualTo(NativeRuntime.SupportedIsa));
        }
        finally
        {
            NativeRuntime.Isa = original;
        }
    }

    [Test]
    public void ThreadsRoundTrip()
    {
        var original = NativeRuntime.Threads;
        try
        {
            NativeRuntime.Threads = 3;
            Assert.That(NativeRuntime.Threads, Is.EqualTo(3));
        }
        finally
        {
            NativeRuntime.Threads = original;
        }
    }
}
