namespace NativeQuant.Interop;

/// <summary>Process-wide state of the native library: version, CPU dispatch, threads, memory.</summary>
public static unsafe class NativeRuntime
{
    /// <summary>ABI version of the loaded library.</summary>
    public static Version Version
    {
        get
        {
            int major, minor, patch;
            Nq.Check(NativeMethods.nq_version_get(&major, &minor, &patch));
            return new Version(major, minor, patch);
        }
    }

    /// <summary>Highest instruction-set level this CPU supports.</summary>
    public static NqIsa SupportedIsa
    {
        get
        {
            NqIsa isa;
            Nq.Check(NativeMethods.nq_cpu_isa_supported(&isa));
            return isa;
        }
    }

    /// <summary>Effective dispatch level. Setting caps dispatch (process-wide); a cap above
    /// <see cref="SupportedIsa"/> yields SupportedIsa, <see cref="NqIsa.Scalar"/> forces the
    /// reference kernels.</summary>
    public static NqIsa Isa
    {
        get
        {
            NqIsa isa;
            Nq.Check(NativeMethods.nq_cpu_isa_get(&isa));
            return isa;
        }
        set => Nq.Check(NativeMethods.nq_cpu_isa_set_max(value));
    }

    /// <summary>Threads used by parallel kernels (&gt;= 1).</summary>
    public static int Threads
    {
        get
        {
            int threads;
            Nq.Check(NativeMethods.nq_threads_get(&threads));
            return threads;
        }
        set => Nq.Check(NativeMethods.nq_threads_set(value));
    }

    /// <summary>CPU features as detected (cpuid plus OS register-state support).</summary>
    public static NqCpuFeature CpuFeatures
    {
        get
        {
            uint features;
            Nq.Check(NativeMethods.nq_cpu_features_get(&features));
            return (NqCpuFeature)features;
        }
    }

    /// <summary>Live/peak accounting of buffers from nq_buffer_alloc (<see cref="NativeBuffer"/>).</summary>
    public static NqMemoryStats MemoryStats
    {
        get
        {
            NqMemoryStats stats;
            Nq.Check(NativeMethods.nq_memory_stats_get(&stats));
            return stats;
        }
    }

    /// <summary>Resets the peak to the current live bytes, e.g. before measuring one step.</summary>
    public static void ResetPeak() => Nq.Check(NativeMethods.nq_memory_peak_reset());
}
