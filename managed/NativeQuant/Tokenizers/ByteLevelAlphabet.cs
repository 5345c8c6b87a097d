namespace NativeQuant.Tokenizers;

/// <summary>
/// GPT-2's bytes_to_unicode: every byte maps to a printable character so BPE vocabularies can be stored as text.
/// Printable Latin-1 bytes map to themselves; the other 68 bytes map to U+0100 upward in byte order.
/// </summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = Build();

    private static readonly Dictionary<char, byte> CharToByteMap =
        Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    private static char[] Build()
    {
        var map = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + extra++);
        }
        return map;
    }

    public static bool TryCharToByte(char c, out byte b) => CharToByteMap.TryGetValue(c, out b);
}
