using System.Text;
using NativeQuant.IO;
using NativeQuant.Quantization;
using NUnit.Framework;

namespace NativeQuant.Tests.Quantization;

public class QuantizedTensorTests
{
    private static readonly long[] Shape = [256, 512];

    /// <summary>
    /// Expected mean absolute error on N(0,1) data. NF4 at blocksize 64 gives about 0.073 (QLoRA's data type,
    /// measured in bitsandbytes' own tests); 0.004 allows for sampling noise of 131k samples. The 8-bit methods
    /// only get upper bounds: half a quantization step over the observed ranges.
    /// </summary>
    private const double Nf4Bs64Mae = 0.073, Nf4MaeTolerance = 0.004;
    private const double Blockwise8Bs256MaxMae = 0.011;
    private const double Int8AbsmaxMaxMae = 0.010;     // step = max|x| (about 4.5) / 127, MAE about step / 4
    private const double Int8RowMaxMae = 0.008;        // per-row absmax of 512 samples is about 3.2
    private const double Fp4Bs64MaxMae = 0.11;          // FP4 has coarser codes near zero than NF4

    private static (QuantizedTensor Q, double Mae) Run(QuantOptions o)
    {
        var x = Randn.Sample(256 * 512, seed: 1234);
        var q = QuantizedTensor.Quantize(x, Shape, o);
        var stats = QuantKernels.ErrorStats(x, q.Dequantize());
        return (q, stats.MeanAbsError);
    }

    [Test]
    public void Nf4Blocksize64MatchesQLoRAError()
    {
        var (_, mae) = Run(new QuantOptions(QuantMethod.Nf4, 64));
        Assert.That(mae, Is.EqualTo(Nf4Bs64Mae).Within(Nf4MaeTolerance));
    }

    [Test]
    public void DoubleQuantBarelyChangesNf4Error()
    {
        var (plain, mae) = Run(new QuantOptions(QuantMethod.Nf4, 64));
        var (dq, maeDq) = Run(new QuantOptions(QuantMethod.Nf4, 64, DoubleQuant: true));
        Assert.That(maeDq, Is.EqualTo(mae).Within(0.002), "8-bit absmax codes add a little error (QLoRA: no accuracy loss)");
        Assert.That(dq.BitsPerParameter(), Is.LessThan(plain.BitsPerParameter() - 0.3), "32-bit -> 8-bit absmax per 64 saves ~0.375 bits/param");
    }

    [TestCase(QuantMethod.Blockwise8, 256, Blockwise8Bs256MaxMae)]
    [TestCase(QuantMethod.Int8Absmax, null, Int8AbsmaxMaxMae)]
    [TestCase(QuantMethod.Int8Rowwise, null, Int8RowMaxMae)]
    [TestCase(QuantMethod.Int8Zeropoint, null, Int8RowMaxMae)]
    [TestCase(QuantMethod.Fp4, 64, Fp4Bs64MaxMae)]
    public void ErrorIsWithinBound(QuantMethod method, int? blocksize, double maxMae)
    {
        var (_, mae) = Run(new QuantOptions(method, blocksize));
        Assert.That(mae, Is.LessThan(maxMae).And.GreaterThan(0));
    }

    [Test]
    public void Nf4DoubleQuantLayoutMatchesBitsandbytes()
    {
        var (q, _) = Run(new QuantOptions(QuantMethod.Nf4, 64, DoubleQuant: true));
        var comps = q.Components("model.layers.0.mlp.up_proj.weight").ToDictionary(c => c.Name);
        const string w = "model.layers.0.mlp.up_proj.weight";
        Assert.That(comps.Keys, Is.EquivalentTo(new[]
        {
            w, w + ".absmax", w + ".quant_map", w + ".nested_absmax", w + ".nested_quant_map", w + ".quant_state.bitsandbytes__nf4",
        }));
        Assert.That(comps[w].DType, Is.EqualTo(TensorDType.U8));
        Assert.That(comps[w].Shape, Is.EqualTo(new long[] { 256 * 512 / 2, 1 }), "Params4bit stores packed bytes as (n/2, 1)");
        Assert.That(comps[w + ".absmax"].DType, Is.EqualTo(TensorDType.U8));
        Assert.That(comps[w + ".absmax"].Shape, Is.EqualTo(new long[] { 256 * 512 / 64 }));
        Assert.That(comps[w + ".quant_map"].Shape, Is.EqualTo(new long[] { 16 }));
        Assert.That(comps[w + ".nested_absmax"].Shape, Is.EqualTo(new long[] { 2048 / 256 }));
        Assert.That(comps[w + ".nested_quant_map"].Shape, Is.EqualTo(new long[] { 256 }));

        var state = ((Quant4Tensor)q).State;
        string json = Encoding.UTF8.GetString(comps[w + ".quant_state.bitsandbytes__nf4"].Data);
        Assert.That(json, Does.StartWith("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [256, 512], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": "));
        Assert.That(json, Does.EndWith("}"));
        Assert.That(BnbQuantState.Parse(Encoding.UTF8.GetBytes(json), "test"), Is.EqualTo(state).Using<BnbQuantState>((a, b) =>
            a.ToJson() == b.ToJson()));
        Assert.That(state.NestedOffset, Is.GreaterThan(0), "offset is the mean absmax");
    }

    [Test]
    public void PlainNf4StateHasNoNestedFields()
    {
        var (q, _) = Run(new QuantOptions(QuantMethod.Fp4, 128));
        var comps = q.Components("w").ToDictionary(c => c.Name);
        Assert.That(comps.Keys, Is.EquivalentTo(new[] { "w", "w.absmax", "w.quant_map", "w.quant_state.bitsandbytes__fp4" }));
        Assert.That(comps["w.absmax"].DType, Is.EqualTo(TensorDType.F32));
        Assert.That(Encoding.UTF8.GetString(comps["w.quant_state.bitsandbytes__fp4"].Data),
            Is.EqualTo("{\"quant_type\": \"fp4\", \"blocksize\": 128, \"dtype\": \"float32\", \"shape\": [256, 512]}"));
    }

    [Test]
    public void RowwiseUsesLinear8bitLtNames()
    {
        var (q, _) = Run(new QuantOptions(QuantMethod.Int8Rowwise));
        var names = q.Components("lm.q_proj.weight").Select(c => c.Name);
        Assert.That(names, Is.EqualTo(new[] { "lm.q_proj.weight", "lm.q_proj.SCB", "lm.q_proj.weight_format" }));
    }

    [TestCase(0.5, "0.5")]
    [TestCase(1.0, "1.0")]
    [TestCase(100.0, "100.0")]
    [TestCase(123.45, "123.45")]
    [TestCase(0.0001, "0.0001")]
    [TestCase(0.00001, "1e-05")]
    [TestCase(1.5e-7, "1.5e-07")]
    [TestCase(1e16, "1e+16")]
    [TestCase(-2.25, "-2.25")]
    [TestCase(0.0, "0.0")]
    public void FormatsFloatsLikePythonRepr(double v, string expected) =>
        Assert.That(PythonFloat.Repr(v), Is.EqualTo(expected));

    [Test]
    public void FloatOffsetKeepsShortestDoubleDigitsLikePython()
    {
        // float32 0.1 widened to double: Python's repr prints 0.10000000149011612.
        Assert.That(PythonFloat.Repr(0.1f), Is.EqualTo("0.10000000149011612"));
    }

    [TestCase(QuantMethod.Nf4, 48, null)]
    [TestCase(QuantMethod.Int8Rowwise, 64, null)]
    [TestCase(QuantMethod.Blockwise8, 32, null)]
    [TestCase(QuantMethod.Blockwise8, null, true)]
    public void InvalidOptionsAreRejected(QuantMethod m, int? blocksize, bool? dq) =>
        Assert.Throws<ArgumentException>(() => new QuantOptions(m, blocksize, dq ?? false).Validate());
}
