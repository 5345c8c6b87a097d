using System.Globalization;
using System.Text;

namespace NativeQuant.Tokenizers;

/// <summary>
/// GPT-2's pre-tokenization regex
/// <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>
/// as a hand-written scanner over code points. A .NET Regex matches UTF-16 code units, so a letter or digit outside
/// the BMP (e.g. U+1D407 MATHEMATICAL BOLD H) would be split differently than by the reference implementations, which
/// match code points. \s is ECMAScript's set (the gpt-3-encoder reference runs in JavaScript): it includes U+FEFF and
/// excludes U+0085, the only two code points where it differs from Python's regex module.
/// </summary>
internal static class Gpt2PreTokenizer
{
    private static readonly string[] Contractions = ["s", "t", "re", "ve", "m", "ll", "d"];

    private enum Kind { Letter, Number, Space, Other }

    /// <summary>Calls <paramref name="piece"/> with (start, length) of each pre-token, in order.</summary>
    public static void Split(string text, Action<int, int> piece)
    {
        int i = 0, n = text.Length;
        while (i < n)
        {
            int end = Contraction(text, i);
            if (end < 0)
            {
                Kind k = KindAt(text, i, out int width);
                if (k == Kind.Space)
                {
                    int start = i + width;
                    // ' ' followed by a letter/number/other run joins that run.
                    if (text[i] == ' ' && start < n && KindAt(text, start, out _) is var next && next != Kind.Space)
                        end = Run(text, start, next);
                    else
                        end = SpaceRun(text, i);
                }
                else end = Run(text, i, k);
            }
            piece(i, end - i);
            i = end;
        }
    }

    private static int Contraction(string text, int i)
    {
        if (text[i] != '\'') return -1;
        foreach (var c in Contractions)
            if (string.CompareOrdinal(text, i + 1, c, 0, c.Length) == 0 && i + 1 + c.Length <= text.Length)
                return i + 1 + c.Length;
        return -1;
    }

    private static int Run(string text, int i, Kind kind)
    {
        while (i < text.Length && KindAt(text, i, out int w) == kind) i += w;
        return i;
    }

    /// <summary><c>\s+(?!\S)|\s+</c>: a whitespace run, leaving its last character to the following word.</summary>
    private static int SpaceRun(string text, int i)
    {
        int end = Run(text, i, Kind.Space);
        if (end == text.Length) return end;
        int last = end - 1; // all ECMAScript whitespace is in the BMP: one char each
        return last > i ? last : end;
    }

    private static Kind KindAt(string text, int i, out int width)
    {
        Rune.DecodeFromUtf16(text.AsSpan(i), out Rune r, out width);
        if (IsSpace(r.Value)) return Kind.Space;
        return Rune.GetUnicodeCategory(r) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => Kind.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => Kind.Number,
            _ => Kind.Other,
        };
    }

    private static bool IsSpace(int c) => c is '\t' or '\n' or '\v' or '\f' or '\r' or ' ' or 0xA0 or 0x1680
        or (>= 0x2000 and <= 0x200A) or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 or 0xFEFF;
}
