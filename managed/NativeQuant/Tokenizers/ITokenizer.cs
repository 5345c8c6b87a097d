namespace NativeQuant.Tokenizers;

/// <summary>Text &lt;-&gt; token ids. Implementations are immutable after loading and safe to share across threads.</summary>
public interface ITokenizer
{
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence id, or -1 when the vocabulary has none.</summary>
    int BosId { get; }

    /// <summary>End-of-sequence id, or -1 when the vocabulary has none.</summary>
    int EosId { get; }

    /// <summary>Encodes text literally (special-token spellings such as "&lt;s&gt;" are plain text).</summary>
    int[] Encode(string text, bool addBos = false, bool addEos = false);

    /// <summary>
    /// The bytes token <paramref name="id"/> contributes to decoded text. <paramref name="atStart"/> is true for the
    /// first token that carries text: SentencePiece drops the dummy-prefix space of that piece.
    /// </summary>
    ReadOnlySpan<byte> TokenBytes(int id, bool atStart);

    /// <summary>Decodes ids to text; invalid UTF-8 (e.g. a cut byte-fallback sequence) becomes U+FFFD.</summary>
    string Decode(ReadOnlySpan<int> ids)
    {
        var decoder = CreateStreamingDecoder();
        var text = new System.Text.StringBuilder();
        foreach (int id in ids) text.Append(decoder.Push(id));
        return text.Append(decoder.Flush()).ToString();
    }

    /// <summary>A decoder that emits text token by token, holding back incomplete UTF-8 sequences.</summary>
    StreamingDecoder CreateStreamingDecoder() => new(this);
}
