namespace NativeQuant.Training;

/// <summary>log softmax of one logit row at chosen entries, in double (the row sums 32k exponentials).</summary>
internal static class LogProbs
{
    public static double At(ReadOnlySpan<float> row, int index) => row[index] - Autograd.Functional.LogSumExp(row);
}
