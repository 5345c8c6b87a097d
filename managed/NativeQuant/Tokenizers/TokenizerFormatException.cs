namespace NativeQuant.Tokenizers;

/// <summary>A tokenizer file is corrupt or not in a supported format; the message names the file.</summary>
public sealed class TokenizerFormatException(string path, string problem)
    : FormatException($"tokenizer file '{path}': {problem}")
{
    public string FilePath { get; } = path;
}
