using NativeQuant.Interop;
using NUnit.Framework;

namespace NativeQuant.Tests.Interop;

public class NativeBufferTests
{
    private const long OneMiB = 1 << 20;

    [Test]
    public void AllocationIsCountedAndReturnsToBaselineAfterDispose()
    {
        // Buffers leaked by earlier tests are freed by finalizers; settle them before the baseline.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var before = NativeRuntime.MemoryStats;
        NativeRuntime.ResetPeak();
        using (var buffer = new NativeBuffer(OneMiB))
        {
            var during = NativeRuntime.MemoryStats;
            Assert.That(during.LiveBytes - before.LiveBytes, Is.EqualTo((ulong)OneMiB));
            Assert.That(during.LiveBuffers - before.LiveBuffers, Is.EqualTo(1UL));
            Assert.That(during.TotalAllocs - before.TotalAllocs, Is.EqualTo(1UL));
            Assert.That(during.PeakBytes, Is.GreaterThanOrEqualTo(during.LiveBytes));
        }
        var after = NativeRuntime.MemoryStats;
        Assert.That(after.LiveBytes, Is.EqualTo(before.LiveBytes));
        Assert.That(after.LiveBuffers, Is.EqualTo(before.LiveBuffers));
        Assert.That(after.PeakBytes, Is.GreaterThanOrEqualTo(before.LiveBytes + (ulong)OneMiB));
        NativeRuntime.ResetPeak();
        Assert.That(NativeRuntime.MemoryStats.PeakBytes, Is.EqualTo(after.LiveBytes));
    }

    [Test]
    public unsafe void SpanCoversTheBufferAndIsAligned()
    {
        using var buffer = new NativeBuffer(1001);
        Assert.That((nuint)buffer.Pointer % 64, Is.EqualTo((nuint)0), "nq_buffer_alloc promises 64-byte alignment");
        var floats = buffer.AsSpan<float>();
        Assert.That(floats.Length, Is.EqualTo(250));
        for (var i = 0; i < floats.Length; i++)
            floats[i] = i;
        Assert.That(buffer.AsSpan<byte>().Length, Is.EqualTo(1001));
        Assert.That(((float*)buffer.Pointer)[249], Is.EqualTo(249f));
    }

    [Test]
    public void UseAfterDisposeThrows()
    {
        var buffer = new NativeBuffer(64);
        buffer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => buffer.AsSpan<byte>());
    }

    [Test]
    public void NonPositiveLengthIsRejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new NativeBuffer(0));
}
