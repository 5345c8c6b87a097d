namespace NativeQuant.Training;

/// <summary>log softmax of one logit row at chosen entries, in double (the row sums 32k exponentials).</summary>
internal static class LogProbs
{
    public static double LogSumExp(ReadOnlySpan<float> row)
    {
        float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
        double sum = 0;
        foreach (float v in row) sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    public static double At(ReadOnlySpan<float> row, int index) => row[index] - LogSumExp(row);
}
