using NativeQuant.Tensors;
using NUnit.Framework;

namespace NativeQuant.Tests.Tensors;

public class SpinPoolTests
{
    [Test]
    public void RunsEveryPartOnce_AcrossManySmallJobs()
    {
        for (int job = 0; job < 2000; job++)
        {
            int parts = 1 + job % 9;
            var hits = new int[parts];
            SpinPool.For(parts, p => Interlocked.Increment(ref hits[p]));
            Assert.That(hits, Is.All.EqualTo(1), $"job {job}");
        }
    }

    [Test]
    public void ConcurrentCallers_EachGetTheirOwnPartsDone()
    {
        var totals = new long[4];
        Parallel.For(0, totals.Length, c =>
        {
            for (int job = 0; job < 500; job++) SpinPool.For(8, p => Interlocked.Add(ref totals[c], p + 1));
        });
        Assert.That(totals, Is.All.EqualTo(500L * 36));
    }

    [Test]
    public void AFailingPart_IsRethrownAfterTheOthersFinish()
    {
        int done = 0;
        var e = Assert.Throws<AggregateException>(() => SpinPool.For(6, p =>
        {
            if (p == 3) throw new InvalidOperationException("part 3");
            Interlocked.Increment(ref done);
        }));
        Assert.That(e!.InnerException, Is.TypeOf<InvalidOperationException>());
        Assert.That(done, Is.EqualTo(5));
    }
}
