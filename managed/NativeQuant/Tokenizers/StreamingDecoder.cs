using System.Text;

namespace NativeQuant.Tokenizers;

/// <summary>
/// Turns a stream of token ids into text as it is generated. Tokens may carry partial UTF-8 (byte-fallback pieces,
/// byte-level BPE), so bytes of an unfinished character are held until the character completes.
/// </summary>
public sealed class StreamingDecoder
{
    // Replacement-char decoding (never throws), like Python's errors="replace" and JS TextDecoder.
    private static readonly Encoding Utf8 = new UTF8Encoding(false, false);

    private readonly ITokenizer _tokenizer;
    private readonly List<byte> _pending = new();
    private bool _atStart = true;

    public StreamingDecoder(ITokenizer tokenizer) => _tokenizer = tokenizer;

    /// <summary>Adds one token; returns the text that became complete (possibly empty).</summary>
    public string Push(int id)
    {
        if ((uint)id >= (uint)_tokenizer.VocabSize)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id must be in [0, {_tokenizer.VocabSize})");
        var bytes = _tokenizer.TokenBytes(id, _atStart);
        // The start ends at the first token that carries text, even if stripping left it empty (a lone "▁").
        _atStart = _atStart && _tokenizer.TokenBytes(id, false).IsEmpty;
        if (bytes.IsEmpty) return "";
        foreach (byte b in bytes) _pending.Add(b);
        int complete = CompletePrefixLength();
        if (complete == 0) return "";
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending)[..complete];
        string text = Utf8.GetString(span);
        _pending.RemoveRange(0, complete);
        return text;
    }

    /// <summary>Emits whatever is still held back (an unfinished character becomes U+FFFD).</summary>
    public string Flush()
    {
        string text = Utf8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending));
        _pending.Clear();
        return text;
    }

    /// <summary>Length of the pending prefix that does not end inside a character that may still complete.</summary>
    private int CompletePrefixLength()
    {
        int n = _pending.Count;
        // Find the last lead byte among the final 4 bytes; only it can start an unfinished character.
        for (int i = n - 1; i >= Math.Max(0, n - 4); i--)
        {
            byte b = _pending[i];
            if ((b & 0xC0) == 0x80) continue; // continuation byte
            int need = b < 0xC2 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF5 ? 4 : 1; // invalid leads: 1
            return i + need > n ? i : n;
        }
        return n; // only continuation bytes: invalid anyway, emit as U+FFFD
    }
}
