namespace NativeQuant.Tokenizers;

/// <summary>
/// The merge rules of a BPE vocabulary as (left id, right id) -&gt; (priority, merged id), and the merge loop shared by
/// both tokenizer families: repeatedly merge the adjacent pair with the highest priority, ties to the leftmost pair
/// (sentencepiece's bpe_model.cc and HF tokenizers agree on this order). A priority queue with lazy invalidation keeps
/// it O(n log n) instead of rescanning all pairs after every merge.
/// </summary>
internal sealed class BpeMergeTable
{
    private readonly record struct Rule(float Priority, int Merged);

    private readonly record struct Candidate(int Left, int Right, int LeftId, int RightId, int Merged);

    private readonly record struct Order(float Priority, int Left) : IComparable<Order>
    {
        // PriorityQueue dequeues the smallest: higher priority first, then the leftmost position.
        public int CompareTo(Order other) =>
            Priority != other.Priority ? other.Priority.CompareTo(Priority) : Left.CompareTo(other.Left);
    }

    private sealed class Scratch
    {
        public int[] Prev = new int[64], Next = new int[64];
        public readonly PriorityQueue<Candidate, Order> Queue = new();
    }

    [ThreadStatic] private static Scratch? _scratch;

    private readonly Dictionary<long, Rule> _rules = new(PairComparer.Instance);

    public int Count => _rules.Count;

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>long.GetHashCode xors the halves, which collides for every (a, b) / (b, a) and most small id pairs.</summary>
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long a, long b) => a == b;
        public int GetHashCode(long key) => (int)((ulong)key * 0x9E3779B97F4A7C15UL >> 32);
    }

    /// <summary>Adds a rule; an existing rule for the same pair keeps the higher priority.</summary>
    public void Add(int left, int right, float priority, int merged)
    {
        long key = Key(left, right);
        if (!_rules.TryGetValue(key, out var old) || old.Priority < priority) _rules[key] = new Rule(priority, merged);
    }

    /// <summary>
    /// Merges <paramref name="symbols"/> in place and returns how many remain. Negative ids never merge (callers use
    /// them for characters outside the vocabulary).
    /// </summary>
    public int Merge(Span<int> symbols)
    {
        int n = symbols.Length;
        if (n < 2) return n;
        var s = _scratch ??= new Scratch();
        if (s.Prev.Length < n) { s.Prev = new int[n * 2]; s.Next = new int[n * 2]; }
        int[] prev = s.Prev, next = s.Next;
        var queue = s.Queue;
        queue.Clear();
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
        for (int i = 0; i + 1 < n; i++) Offer(queue, symbols, i, i + 1);

        while (queue.TryDequeue(out var c, out _))
        {
            // Lazy invalidation: skip candidates whose symbols changed since they were queued.
            if (symbols[c.Left] != c.LeftId || symbols[c.Right] != c.RightId || next[c.Left] != c.Right) continue;
            symbols[c.Left] = c.Merged;
            symbols[c.Right] = int.MinValue; // dead
            int after = next[c.Right];
            next[c.Left] = after;
            if (after >= 0) prev[after] = c.Left;
            if (prev[c.Left] >= 0) Offer(queue, symbols, prev[c.Left], c.Left);
            if (after >= 0) Offer(queue, symbols, c.Left, after);
        }

        int count = 0;
        for (int i = 0; i >= 0; i = next[i]) symbols[count++] = symbols[i];
        return count;
    }

    private void Offer(PriorityQueue<Candidate, Order> queue, Span<int> symbols, int left, int right)
    {
        int a = symbols[left], b = symbols[right];
        if (a < 0 || b < 0 || !_rules.TryGetValue(Key(a, b), out var rule)) return;
        queue.Enqueue(new Candidate(left, right, a, b, rule.Merged), new Order(rule.Priority, left));
    }
}
