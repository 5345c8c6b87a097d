using NativeQuant.Interop;
using NativeQuant.IO;

namespace NativeQuant.Quantization;

/// <summary>
/// NF4/FP4 in bitsandbytes' Params4bit layout: `W` uint8 packed (n/2, 1), `W.absmax` float32 per block (uint8
/// codes when double-quantized), `W.quant_map` float32 (16), with double quantization also
/// `W.nested_absmax` float32 and `W.nested_quant_map` float32 (256), and `W.quant_state.bitsandbytes__nf4|fp4`
/// (<see cref="BnbQuantState"/>).
/// </summary>
public sealed class Quant4Tensor : QuantizedTensor
{
    private readonly byte[] _packed;
    private readonly float[]? _absmax;       // plain absmax
    private readonly byte[]? _absmaxQ;       // double quantization
    private readonly float[]? _nestedAbsmax, _nestedCode;
    private readonly float[] _code;

    private Quant4Tensor(long[] shape, NqQuant4Type type, BnbQuantState state, byte[] packed, float[] code,
        float[]? absmax, byte[]? absmaxQ, float[]? nestedAbsmax, float[]? nestedCode)
        : base(type == NqQuant4Type.Nf4 ? QuantMethod.Nf4 : QuantMethod.Fp4, shape)
    {
        Type = type;
        State = state;
        (_packed, _code, _absmax, _absmaxQ, _nestedAbsmax, _nestedCode) = (packed, code, absmax, absmaxQ, nestedAbsmax, nestedCode);
    }

    public NqQuant4Type Type { get; }
    public BnbQuantState State { get; }
    public int Blocksize => State.Blocksize;
    public long Blocks => QuantKernels.Blocks(ElementCount, Blocksize);

    public static Quant4Tensor Quantize(ReadOnlySpan<float> x, long[] shape, QuantOptions options, string originalDType)
    {
        var type = options.Method == QuantMethod.Nf4 ? NqQuant4Type.Nf4 : NqQuant4Type.Fp4;
        int bs = options.EffectiveBlocksize;
        var packed = new byte[x.Length / 2];
        var absmax = new float[QuantKernels.Blocks(x.Length, bs)];
        QuantKernels.Quant4Quantize(type, x, bs, packed, absmax);
        var code = QuantKernels.Quant4Code(type);
        if (!options.DoubleQuant)
            return new(shape, type, new BnbQuantState(BnbQuantState.TypeName(type), bs, originalDType, shape), packed, code, absmax, null, null, null);

        int nbs = QuantOptions.NestedBlocksize;
        var nestedCode = QuantKernels.DynamicMap();
        var q = new byte[absmax.Length];
        var nestedAbsmax = new float[QuantKernels.Blocks(absmax.Length, nbs)];
        float offset = QuantKernels.AbsmaxCompress(absmax, nbs, nestedCode, q, nestedAbsmax);
        var state = new BnbQuantState(BnbQuantState.TypeName(type), bs, originalDType, shape, nbs, "float32", offset);
        return new(shape, type, state, packed, code, null, q, nestedAbsmax, nestedCode);
    }

    /// <summary>A 4-bit weight from its stored parts (e.g. a Linear4bit's), with bitsandbytes' code tables and
    /// nested block size; <paramref name="originalDType"/> is recorded in the quant state.</summary>
    public static Quant4Tensor FromStorage(NqQuant4Type type, int blocksize, long[] shape, NN.Quant4Storage s, string originalDType)
    {
        var state = s.AbsmaxQ == null
            ? new BnbQuantState(BnbQuantState.TypeName(type), blocksize, originalDType, shape)
            : new BnbQuantState(BnbQuantState.TypeName(type), blocksize, originalDType, shape, NN.Linear4bit.NestedBlockSize, "float32", s.NestedOffset);
        return new(shape, type, state, s.Packed, QuantKernels.Quant4Code(type), s.Absmax, s.AbsmaxQ, s.NestedAbsmax, s.NestedCode);
    }

    /// <summary>The stored parts, shared with this tensor (not copied).</summary>
    public NN.Quant4Storage Storage => new(_packed, _absmax, _absmaxQ, _nestedAbsmax, _nestedCode, State.NestedOffset ?? 0f);

    /// <summary>The 16 code values stored as quant_map.</summary>
    public ReadOnlySpan<float> QuantMap => _code;

    /// <summary>Name of the quant_state tensor if <paramref name="weightName"/> is stored in this layout.</summary>
    public static string? FindStateTensor(ITensorSource source, string weightName)
    {
        foreach (var t in new[] { "nf4", "fp4" })
            if (source.TryGet(weightName + BnbQuantState.KeyPrefix + t, out _)) return weightName + BnbQuantState.KeyPrefix + t;
        return null;
    }

    public static Quant4Tensor Read(ITensorSource source, string weightName)
    {
        string stateName = FindStateTensor(source, weightName)
            ?? throw new InvalidDataException($"{source.SourcePath}: '{weightName}' has no {weightName}{BnbQuantState.KeyPrefix}nf4|fp4 tensor");
        var state = BnbQuantState.Parse(source.Get(stateName).Data, $"{source.SourcePath}: {stateName}");
        var type = state.QuantType == "nf4" ? NqQuant4Type.Nf4 : NqQuant4Type.Fp4;
        long n = state.Shape.Aggregate(1L, (a, b) => a * b);
        long blocks = QuantKernels.Blocks(n, state.Blocksize);
        var packed = ReadArray<byte>(source, weightName, TensorDType.U8, n / 2);
        var code = ReadArray<float>(source, weightName + ".quant_map", TensorDType.F32, 16);
        if (!state.Nested)
            return new(state.Shape, type, state, packed, code, ReadArray<float>(source, weightName + ".absmax", TensorDType.F32, blocks), null, null, null);
        return new(state.Shape, type, state, packed, code, null,
            ReadArray<byte>(source, weightName + ".absmax", TensorDType.U8, blocks),
            ReadArray<float>(source, weightName + ".nested_absmax", TensorDType.F32, QuantKernels.Blocks(blocks, state.NestedBlocksize!.Value)),
            ReadArray<float>(source, weightName + ".nested_quant_map", TensorDType.F32, 256));
    }

    /// <summary>Per-block absmax (decompressed when double-quantized).</summary>
    public float[] Absmax()
    {
        if (_absmax is not null) return _absmax;
        var absmax = new float[Blocks];
        QuantKernels.AbsmaxDecompress(_absmaxQ, _nestedAbsmax, State.NestedOffset!.Value, State.NestedBlocksize!.Value, _nestedCode, absmax);
        return absmax;
    }

    public override void DequantizeInto(Span<float> x) => QuantKernels.Quant4Dequantize(Type, _packed, Absmax(), Blocksize, x);

    public override IReadOnlyList<QuantComponent> Components(string w)
    {
        var list = new List<QuantComponent> { QuantComponent.Of(w, TensorDType.U8, [_packed.Length, 1], _packed) };
        if (_absmax is not null) list.Add(QuantComponent.Of(w + ".absmax", TensorDType.F32, [_absmax.Length], _absmax));
        else list.Add(QuantComponent.Of(w + ".absmax", TensorDType.U8, [_absmaxQ!.Length], _absmaxQ));
        list.Add(QuantComponent.Of(w + ".quant_map", TensorDType.F32, [16], _code));
        if (_absmaxQ is not null)
        {
            list.Add(QuantComponent.Of(w + ".nested_absmax", TensorDType.F32, [_nestedAbsmax!.Length], _nestedAbsmax));
            list.Add(QuantComponent.Of(w + ".nested_quant_map", TensorDType.F32, [256], _nestedCode!));
        }
        var json = State.ToBytes();
        list.Add(new QuantComponent(w + BnbQuantState.KeyPrefix + State.QuantType, TensorDType.U8, [json.Length], json));
        return list;
    }
}
