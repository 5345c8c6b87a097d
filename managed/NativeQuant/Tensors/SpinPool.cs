using System.Diagnostics;

namespace NativeQuant.Tensors;

/// <summary>
/// Fork-join for microsecond-sized work (decode GEMVs, side-by-side quantized projections, prefill attention): one helper thread per extra core
/// keeps spinning for a short while after each job, so back-to-back small jobs do not pay a thread-pool wake
/// (0.1-0.7 ms per Parallel.For measured on the shared 2-vCPU box; a decode GEMV takes 10-50 us). Parts are claimed
/// from a shared counter by the caller and the helpers alike, so the caller finishes the job alone when a helper is
/// descheduled, and concurrent callers never wait for each other's jobs.
/// </summary>
internal static class SpinPool
{
    // How long an idle helper spins before blocking: longer than the gaps between a decode step's products
    // (norms, RoPE, attention, sampling: a few to tens of us), short enough to leave the core to OpenMP regions
    // and other processes soon after.
    private static readonly long s_spinTicks = Stopwatch.Frequency / 33333;  // 30 us
    // A helper that arrives after the caller has taken every part of this many jobs in a row, or that finds it was
    // descheduled while spinning (a gap of s_preemptedTicks between two checks), rests (blocks between jobs) for
    // s_restTicks: on a busy box its spinning only takes CPU share from this process's own threads.
    private const int LateJobs = 8;
    private static readonly long s_restTicks = Stopwatch.Frequency / 200;  // 5 ms
    private static readonly long s_preemptedTicks = Stopwatch.Frequency / 1000;  // 1 ms: a scheduler slice, not a VM hiccup
    private static readonly Helper[] s_helpers = CreateHelpers();
    private static Job? s_job;

    /// <summary>Threads that run a job's parts: the caller plus the helpers.</summary>
    public static int Width => s_helpers.Length + 1;

    /// <summary>Whether helpers take jobs now: false while every helper rests, and for s_restTicks after each
    /// LateJobs jobs in a row that the caller ran alone (helpers runnable but not scheduled, on a busy box).
    /// Callers then save the cost of cutting work into parts.</summary>
    public static bool HelpersAwake
    {
        get
        {
            if (Stopwatch.GetTimestamp() < Volatile.Read(ref s_splitAfter)) return false;
            foreach (var h in s_helpers)
                if (!h.Resting) return true;
            return false;
        }
    }

    private static int s_alone;       // consecutive jobs whose every part the caller ran (racy counts are fine)
    private static long s_splitAfter; // see HelpersAwake

    /// <summary>Runs body(0..parts-1) on the caller and the helpers; returns when every part is done. Use a few
    /// parts per thread, so the caller can take over the parts of a descheduled helper.</summary>
    public static void For(int parts, Action<int> body)
    {
        if (parts <= 1 || s_helpers.Length == 0)
        {
            for (int p = 0; p < parts; p++) body(p);
            return;
        }
        var job = new Job(parts, body);
        Volatile.Write(ref s_job, job);
        foreach (var h in s_helpers) h.Wake();
        if (job.Run() < parts) s_alone = 0;
        else if (++s_alone % LateJobs == 0) Volatile.Write(ref s_splitAfter, Stopwatch.GetTimestamp() + s_restTicks);
        // Busy-wait without yielding: a helper finishes its part within microseconds, while a yield on a busy
        // box hands the core to another process for a whole time slice.
        while (Volatile.Read(ref job.Done) < parts) Thread.SpinWait(8);
        if (job.Error != null) throw new AggregateException(job.Error);
    }

    /// <summary>Runs body(start, end) over [0, length) in a few parts per thread (starts multiples of 16) when length
    /// reaches minParallel, else as one call on the caller: for passes over a training step's activations (0.1-1 ms
    /// each, so a helper's wake-up pays) that would otherwise leave the second core idle.</summary>
    public static void ForRanges(int length, int minParallel, Action<int, int> body)
    {
        if (length < minParallel || s_helpers.Length == 0)
        {
            body(0, length);
            return;
        }
        int step = ((length + 4 * Width - 1) / (4 * Width) + 15) & ~15;
        For((length + step - 1) / step, p => body(p * step, Math.Min(length, (p + 1) * step)));
    }

    private static Helper[] CreateHelpers()
    {
        var helpers = new Helper[Math.Max(0, Environment.ProcessorCount - 1)];
        for (int i = 0; i < helpers.Length; i++) helpers[i] = new Helper(i);
        return helpers;
    }

    private sealed class Job(int parts, Action<int> body)
    {
        private int _next = -1;
        public int Done;
        public Exception? Error;

        // Claims and runs parts until none is left; returns how many this thread ran.
        public int Run()
        {
            int p, ran = 0;
            while ((p = Interlocked.Increment(ref _next)) < parts)
            {
                try { body(p); }
                catch (Exception e) { Interlocked.CompareExchange(ref Error, e, null); }
                Interlocked.Increment(ref Done);
                ran++;
            }
            return ran;
        }
    }

    private sealed class Helper
    {
        private readonly SemaphoreSlim _wake = new(0);
        private int _sleeping;
        private int _late;       // consecutive jobs whose parts were all taken before this helper got to them
        private long _restUntil; // until then, block between jobs without spinning

        public Helper(int index) =>
            new Thread(Loop) { IsBackground = true, Name = $"nq-spin-{index}" }.Start();

        public bool Resting => Stopwatch.GetTimestamp() < Volatile.Read(ref _restUntil);

        // Called after a job is published: a helper that blocked gets one release (the flag is taken by
        // exactly one of Wake and the helper's own re-check, so releases never pile up).
        public void Wake()
        {
            if (Interlocked.Exchange(ref _sleeping, 0) == 1) _wake.Release();
        }

        private void Loop()
        {
            Job? last = null;
            while (true)
            {
                var job = WaitForJob(last);
                if (job.Run() > 0) _late = 0;
                else if (++_late == LateJobs)
                {
                    // Not scheduled in time (a busy box): spinning only burns the process's CPU share.
                    _late = 0;
                    Volatile.Write(ref _restUntil, Stopwatch.GetTimestamp() + s_restTicks);
                }
                last = job;
            }
        }

        private Job WaitForJob(Job? last)
        {
            long start = Stopwatch.GetTimestamp(), prev = start;
            while (true)
            {
                var job = Volatile.Read(ref s_job);
                if (job != last && job != null) return job;
                long now = Stopwatch.GetTimestamp();
                if (now - prev > s_preemptedTicks) Volatile.Write(ref _restUntil, now + s_restTicks);
                prev = now;
                if (now - start < s_spinTicks && now >= _restUntil) { Thread.SpinWait(8); continue; }
                Interlocked.Exchange(ref _sleeping, 1);
                if (Volatile.Read(ref s_job) == last) _wake.Wait();        // Wake() will take the flag and release
                else if (Interlocked.Exchange(ref _sleeping, 0) == 0) _wake.Wait();  // Wake() took it: consume its release
                start = prev = Stopwatch.GetTimestamp();
            }
        }
    }
}
