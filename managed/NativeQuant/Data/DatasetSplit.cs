using NativeQuant.Autograd;

namespace NativeQuant.Data;

/// <summary>Train / validation / test parts of a dataset.</summary>
public sealed record DatasetSplits<T>(IReadOnlyList<T> Train, IReadOnlyList<T> Validation, IReadOnlyList<T> Test);

/// <summary>
/// Deterministic seeded splits. With a label selector the split is stratified: each label's items are shuffled
/// and cut separately (validation = round(n·fraction) per label, same for test, the rest train), so every part
/// keeps the label ratio. Shuffling is Fisher-Yates driven by <see cref="SplitMix"/>, so a seed gives the same
/// split on every platform and .NET version. Each part is shuffled once more so labels interleave.
/// </summary>
public static class DatasetSplit
{
    public static DatasetSplits<T> Split<T>(IReadOnlyList<T> items, double validationFraction, double testFraction, ulong seed,
                                            Func<T, string>? label = null)
    {
        if (validationFraction < 0 || testFraction < 0 || validationFraction + testFraction >= 1)
            throw new ArgumentException($"validation ({validationFraction}) and test ({testFraction}) fractions must be >= 0 and sum to less than 1");
        var train = new List<T>();
        var validation = new List<T>();
        var test = new List<T>();
        var strata = label == null
            ? [Enumerable.Range(0, items.Count).ToList()]
            : items.Select((item, i) => (Label: label(item), i)).GroupBy(p => p.Label, StringComparer.Ordinal)
                   .OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => g.Select(p => p.i).ToList()).ToList();
        ulong stream = 0;
        foreach (var stratum in strata)
        {
            Shuffle(stratum, seed, stream++);
            int nVal = (int)Math.Round(stratum.Count * validationFraction, MidpointRounding.AwayFromZero);
            int nTest = (int)Math.Round(stratum.Count * testFraction, MidpointRounding.AwayFromZero);
            validation.AddRange(stratum.Take(nVal).Select(i => items[i]));
            test.AddRange(stratum.Skip(nVal).Take(nTest).Select(i => items[i]));
            train.AddRange(stratum.Skip(nVal + nTest).Select(i => items[i]));
        }
        // Mix the strata, so a part is not all of one label followed by all of the next.
        Shuffle(train, seed, stream++);
        Shuffle(validation, seed, stream++);
        Shuffle(test, seed, stream);
        return new DatasetSplits<T>(train, validation, test);
    }

    /// <summary>Fisher-Yates with draws SplitMix(seed ^ stream-salt, k).</summary>
    public static void Shuffle<T>(IList<T> list, ulong seed, ulong stream = 0)
    {
        ulong s = seed ^ SplitMix.Hash(stream, 0x5EED);
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = (int)(SplitMix.Hash(s, (ulong)i) % (ulong)(i + 1));
            (list[i], list[j]) = (list[j], list[i]);
        }
    }
}
