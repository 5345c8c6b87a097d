using NativeQuant.Interop;
using NUnit.Framework;

namespace NativeQuant.Tests.Interop;

public unsafe class NqTests
{
    [Test]
    public void InvalidArgumentBecomesExceptionNamingFunctionAndArgument()
    {
        var e = Assert.Throws<NativeQuantException>(() => Nq.Check(NativeMethods.nq_threads_set(0)))!;
        Assert.That(e.Status, Is.EqualTo(NqStatus.ErrInvalidArgument));
        Assert.That(e.Function, Is.EqualTo("nq_threads_set"));
        Assert.That(e.Message, Does.Contain("num_threads"));
        Assert.That(e.Message, Does.Contain("NQ_ERR_INVALID_ARGUMENT"));
    }

    [Test]
    public void NullPointerBecomesExceptionNamingArgument()
    {
        var e = Assert.Throws<NativeQuantException>(() => Nq.Check(NativeMethods.nq_threads_get(null)))!;
        Assert.That(e.Status, Is.EqualTo(NqStatus.ErrNullPointer));
        Assert.That(e.NativeMessage, Does.Contain("out_num_threads"));
    }

    [Test]
    public void RuntimePropertySetterReportsNativeMessage()
    {
        var e = Assert.Throws<NativeQuantException>(() => NativeRuntime.Threads = -3)!;
        Assert.That(e.Message, Does.StartWith("nq_threads_set"));
        Assert.That(e.Message, Does.Contain("-3"));
    }

    [Test]
    public void OkDoesNotThrow() => Assert.DoesNotThrow(() => Nq.Check(NqStatus.Ok));

    [Test]
    public void Utf8ZIsNulTerminatedAndRejectsEmbeddedNul()
    {
        Assert.That(Nq.Utf8Z("é/x"), Is.EqualTo(new byte[] { 0xC3, 0xA9, (byte)'/', (byte)'x', 0 }));
        Assert.Throws<ArgumentException>(() => Nq.Utf8Z("a\0b"));
    }
}
