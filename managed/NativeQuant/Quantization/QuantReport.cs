namespace NativeQuant.Quantization;

/// <summary>One tensor of a quantization run. Error fields are null for tensors copied unchanged.</summary>
public sealed record TensorQuantRow(string Name, IReadOnlyList<long> Shape, string Method, long Parameters,
    double? MeanAbsError, double? Rmse, double? MaxAbsError, double? SnrDb, double BitsPerParameter, string? Note = null);

/// <summary>Per-tensor rows and totals of a quantization run.</summary>
public sealed record QuantReport(string Input, string Output, string Method, IReadOnlyList<TensorQuantRow> Tensors, long OutputFileBytes)
{
    public long Parameters => Tensors.Sum(t => t.Parameters);
    public long QuantizedParameters => Quantized.Sum(t => t.Parameters);
    public int QuantizedTensors => Quantized.Count();

    private IEnumerable<TensorQuantRow> Quantized => Tensors.Where(t => t.MeanAbsError is not null);

    /// <summary>Stored bits per parameter of the quantized tensors (codes, scales and constants included).</summary>
    public double QuantizedBitsPerParameter =>
        QuantizedParameters == 0 ? 0 : Quantized.Sum(t => t.BitsPerParameter * t.Parameters) / QuantizedParameters;

    /// <summary>Stored bits per parameter over all tensors (copied ones in their original dtype).</summary>
    public double OverallBitsPerParameter => Parameters == 0 ? 0 : Tensors.Sum(t => t.BitsPerParameter * t.Parameters) / Parameters;

    /// <summary>Parameter-weighted mean absolute error over the quantized tensors.</summary>
    public double? MeanAbsError => QuantizedParameters == 0 ? null : Quantized.Sum(t => t.MeanAbsError!.Value * t.Parameters) / QuantizedParameters;

    /// <summary>RMSE over all quantized elements together.</summary>
    public double? Rmse => QuantizedParameters == 0 ? null : Math.Sqrt(Quantized.Sum(t => t.Rmse!.Value * t.Rmse!.Value * t.Parameters) / QuantizedParameters);

    public double? MaxAbsError => QuantizedParameters == 0 ? null : Quantized.Max(t => t.MaxAbsError!.Value);

    /// <summary>SNR of all quantized elements together: total signal energy over total error energy.</summary>
    public double? SnrDb
    {
        get
        {
            if (QuantizedParameters == 0) return null;
            double noise = 0, signal = 0;
            foreach (var t in Quantized)
            {
                double e = t.Rmse!.Value * t.Rmse!.Value * t.Parameters;
                noise += e;
                signal += double.IsPositiveInfinity(t.SnrDb!.Value) ? 0 : e * Math.Pow(10, t.SnrDb.Value / 10);
            }
            return noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(signal / noise);
        }
    }
}
