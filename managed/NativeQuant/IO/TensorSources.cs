namespace NativeQuant.IO;

/// <summary>Opens whichever tensor container a path names.</summary>
public static class TensorSources
{
    /// <summary>
    /// A directory -> <see cref="HfDirectory"/>; a file starting with a plausible safetensors header ->
    /// <see cref="SafeTensorsFile"/>; a `.bin` file -> <see cref="Llama2Checkpoint"/>.
    /// </summary>
    public static ITensorSource Open(string path)
    {
        if (Directory.Exists(path)) return HfDirectory.Open(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return SafeTensorsFile.Open(path);
        if (path.EndsWith(".bin", StringComparison.OrdinalIgnoreCase)) return Llama2Checkpoint.Open(path);
        throw new InvalidDataException($"{path}: unknown model format (expected a .safetensors file, a llama2.c .bin checkpoint or a Hugging Face model directory)");
    }
}
