using NativeQuant.Tokenizers;

namespace NativeQuant.Data;

/// <summary>
/// Causal-LM packing (Hugging Face's group_texts): every document is tokenized (BOS ... EOS), the streams are
/// concatenated and cut into blocks of exactly <c>blockSize</c> tokens; the incomplete tail is dropped. Labels equal
/// the ids (loss on every position) — documents meet inside a block, separated by EOS/BOS.
/// </summary>
public static class TextPacker
{
    public static IReadOnlyList<TokenizedExample> Pack(IEnumerable<string> documents, ITokenizer tokenizer, int blockSize, bool addBos = true, bool addEos = true)
    {
        if (blockSize < 2) throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "must be at least 2");
        var blocks = new List<TokenizedExample>();
        var current = new List<int>(blockSize);
        foreach (var doc in documents)
        {
            foreach (int id in tokenizer.Encode(doc, addBos, addEos))
            {
                current.Add(id);
                if (current.Count < blockSize) continue;
                var ids = current.ToArray();
                blocks.Add(new TokenizedExample(ids, (int[])ids.Clone()));
                current.Clear();
            }
        }
        return blocks;
    }
}
