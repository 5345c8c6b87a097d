namespace NativeQuant.Optim;

/// <summary>Bytes of optimizer state: resident in memory, and held by the pager (of which <see cref="PagedOutBytes"/>
/// are on disk right now).</summary>
public readonly record struct OptimizerMemory(long ResidentBytes, long PagedBytes, long PagedOutBytes, int EightBitTensors, int FullPrecisionTensors)
{
    public long TotalBytes => ResidentBytes + PagedBytes;
}
