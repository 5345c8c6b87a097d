using NativeQuant.Data;

namespace NativeQuant.Training;

/// <summary>
/// Endless stream of batches over a dataset, reshuffled every epoch (torch's DataLoader with shuffle=True).
/// Epoch e's order is a permutation seeded by (seed, e) alone, so the whole stream is a function of the seed
/// and <see cref="Position"/> (examples consumed): a checkpoint stores Position and resume restores it exactly.
/// The last partial batch of an epoch is kept (drop_last=False).
/// </summary>
public sealed class DataLoader
{
    private readonly IReadOnlyList<TokenizedExample> _examples;
    private int[] _order = [];
    private long _orderEpoch = -1;

    public DataLoader(IReadOnlyList<TokenizedExample> examples, int batchSize, int seed, bool shuffle = true)
    {
        if (examples.Count == 0) throw new ArgumentException("the training set is empty", nameof(examples));
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be positive");
        _examples = examples;
        BatchSize = batchSize;
        Seed = seed;
        Shuffle = shuffle;
    }

    public int BatchSize { get; }
    public int Seed { get; }
    public bool Shuffle { get; }
    public int Count => _examples.Count;
    /// <summary>Examples handed out so far, over all epochs.</summary>
    public long Position { get; set; }
    public double Epoch => (double)Position / _examples.Count;
    /// <summary>Batches per epoch (last one partial).</summary>
    public int BatchesPerEpoch => (_examples.Count + BatchSize - 1) / BatchSize;

    public IReadOnlyList<TokenizedExample> NextExamples()
    {
        long epoch = Position / _examples.Count;
        int start = (int)(Position % _examples.Count);
        int n = Math.Min(BatchSize, _examples.Count - start);
        var order = OrderOf(epoch);
        var batch = new TokenizedExample[n];
        for (int i = 0; i < n; i++) batch[i] = _examples[order[start + i]];
        Position += n;
        return batch;
    }

    private int[] OrderOf(long epoch)
    {
        if (epoch == _orderEpoch) return _order;
        _order = Enumerable.Range(0, _examples.Count).ToArray();
        if (Shuffle) DatasetSplit.Shuffle(_order, (ulong)Seed, (ulong)epoch);
        _orderEpoch = epoch;
        return _order;
    }
}
