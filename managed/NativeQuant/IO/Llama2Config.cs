namespace NativeQuant.IO;

/// <summary>The 7-int32 header of a legacy llama2.c checkpoint (run.c's Config).</summary>
public sealed record Llama2Config(int Dim, int HiddenDim, int NLayers, int NHeads, int NKvHeads, int VocabSize,
    int SeqLen, bool SharedClassifier)
{
    public int HeadSize => Dim / NHeads;
    public int KvDim => Dim * NKvHeads / NHeads;
}
