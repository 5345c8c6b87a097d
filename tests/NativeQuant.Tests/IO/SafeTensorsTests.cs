using System.Buffers.Binary;
using System.Text;
using NativeQuant.IO;
using NUnit.Framework;

namespace NativeQuant.Tests.IO;

public class SafeTensorsTests
{
    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    [Test]
    public void RoundTripsEveryDtypeAndMetadata()
    {
        var rng = new Random(7);
        var writer = new SafeTensorsWriter();
        var expected = new Dictionary<string, (TensorDType, long[], byte[])>();
        foreach (var dtype in Enum.GetValues<TensorDType>())
        {
            long[] shape = [3, 5];
            var bytes = new byte[15 * dtype.ItemSize()];
            rng.NextBytes(bytes);
            string name = "t." + dtype.SafeTensorsName();
            writer.Add(name, dtype, shape, bytes);
            expected[name] = (dtype, shape, bytes);
        }
        writer.Add("scalar", TensorDType.F32, [], BitConverter.GetBytes(2.5f));
        writer.Add("empty", TensorDType.F32, [0, 4], Array.Empty<byte>());
        writer.Metadata["format"] = "pt";
        writer.Metadata["note"] = "ünïcode \"quoted\"";
        string path = _dir.File("all.safetensors");
        writer.Save(path);

        using var file = SafeTensorsFile.Open(path);
        Assert.That(file.Names, Has.Count.EqualTo(expected.Count + 2));
        foreach (var (name, (dtype, shape, bytes)) in expected)
        {
            var t = file.Get(name);
            Assert.That(t.DType, Is.EqualTo(dtype), name);
            Assert.That(t.Shape, Is.EqualTo(shape), name);
            Assert.That(t.Data.ToArray(), Is.EqualTo(bytes), name);
        }
        Assert.That(BitConverter.ToSingle(file.Get("scalar").Data), Is.EqualTo(2.5f));
        Assert.That(file.Get("empty").ByteLength, Is.Zero);
        Assert.That(file.Metadata["note"], Is.EqualTo("ünïcode \"quoted\""));
        // The data buffer must start 8-byte aligned (header padded with spaces, as the spec recommends).
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(path).AsSpan(0, 8));
        Assert.That(n % 8, Is.Zero);
        Assert.That(file.HeaderJson, Does.EndWith("}").Or.EndWith(" "));
    }

    /// <summary>A file assembled by hand from the spec; the writer must produce exactly these bytes.</summary>
    [Test]
    public void WriterIsByteCompatibleWithHandAssembledFile()
    {
        string json = "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    + "\"b\":{\"dtype\":\"I8\",\"shape\":[1,3],\"data_offsets\":[8,11]}}";
        var header = Encoding.UTF8.GetBytes(json.PadRight((json.Length + 7) / 8 * 8));
        var data = new byte[11];
        BitConverter.GetBytes(1.5f).CopyTo(data, 0);
        BitConverter.GetBytes(-2f).CopyTo(data, 4);
        data[8] = 1; data[9] = 0xFF; data[10] = 0x7F;
        var hand = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(hand, (ulong)header.Length);
        header.CopyTo(hand, 8);
        data.CopyTo(hand, 8 + header.Length);

        var writer = new SafeTensorsWriter();
        writer.Add("b", TensorDType.I8, [1, 3], new byte[] { 1, 0xFF, 0x7F }); // added out of order: output is sorted
        writer.AddValues("a", TensorDType.F32, [2], new[] { 1.5f, -2f });
        writer.Metadata["format"] = "pt";
        Assert.That(writer.ToArray(), Is.EqualTo(hand));

        File.WriteAllBytes(_dir.File("hand.safetensors"), hand);
        using var file = SafeTensorsFile.Open(_dir.File("hand.safetensors"));
        Assert.That(file.Names, Is.EqualTo(new[] { "a", "b" }));
        Assert.That(TensorConvert.ToFloat32(file.Get("a")), Is.EqualTo(new[] { 1.5f, -2f }));
        Assert.That(file.Get("b").Data.ToArray(), Is.EqualTo(new byte[] { 1, 0xFF, 0x7F }));
    }

    private static byte[] Build(string json, int dataBytes, ulong? lyingLength = null)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, lyingLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    private static IEnumerable<TestCaseData> Corruptions()
    {
        yield return new TestCaseData(new byte[] { 1, 2, 3, 4, 5 }, "shorter than the 8-byte header length prefix").SetName("TruncatedHeaderPrefix");
        yield return new TestCaseData(Build("{}", 0, lyingLength: 1000), "header length 1000 exceeds").SetName("LyingHeaderLength");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), "tensor 'a': data_offsets [0, 16] out of bounds").SetName("OffsetsOutOfBounds");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "overlap tensor 'a'").SetName("OverlappingTensors");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "tensor 'a': unknown or unsupported dtype 'F17'").SetName("UnknownDtype");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]", 8), "header is not valid JSON").SetName("BadJson");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "needs 12 bytes but data_offsets span 8").SetName("ShapeDisagreesWithOffsets");
        yield return new TestCaseData(Build("{\"__metadata__\":{\"k\":1}}", 0), "entry 'k' must be a string").SetName("NonStringMetadata");
        yield return new TestCaseData(Build("[1,2]", 0), "must be a JSON object").SetName("HeaderNotObject");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "non-negative integers").SetName("NegativeDimension");
    }

    [TestCaseSource(nameof(Corruptions))]
    public void CorruptFileGivesClearError(byte[] bytes, string expected)
    {
        string path = _dir.File("bad.safetensors");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path).Dispose())!;
        Assert.That(e.Message, Does.Contain(path).And.Contain(expected));
    }

    [Test]
    public void AtomicWriteLeavesOldFileIntactWhenWriteFailsMidway()
    {
        string path = _dir.File("model.safetensors");
        var old = new SafeTensorsWriter();
        old.AddValues("old", TensorDType.F32, [4], new float[] { 1, 2, 3, 4 });
        old.Save(path);
        byte[] before = File.ReadAllBytes(path);

        var failing = new SafeTensorsWriter();
        failing.Add("big", TensorDType.U8, [1 << 20], 1 << 20, s =>
        {
            s.Write(new byte[1 << 19]); // half written, then the producer fails
            throw new IOException("simulated disk failure");
        });
        Assert.Throws<IOException>(() => failing.Save(path));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.That(Directory.GetFiles(_dir.Path), Is.EqualTo(new[] { path }), "the temporary file must be removed");
    }

    [Test]
    public void WriterRejectsSizeThatDisagreesWithShape()
    {
        var w = new SafeTensorsWriter();
        var e = Assert.Throws<ArgumentException>(() => w.Add("x", TensorDType.F32, [3], new byte[8]))!;
        Assert.That(e.Message, Does.Contain("'x'").And.Contain("needs 12 bytes"));
    }

    [Test]
    public void ConvertsHalfPrecisionToFloat32()
    {
        var w = new SafeTensorsWriter();
        w.AddValues("h", TensorDType.F16, [2], new[] { (Half)1.5f, (Half)(-0.25f) });
        w.AddValues("b", TensorDType.BF16, [2], new ushort[] { 0x3FC0, 0xC080 }); // 1.5, -4
        string path = _dir.File("half.safetensors");
        w.Save(path);
        using var f = SafeTensorsFile.Open(path);
        Assert.That(TensorConvert.ToFloat32(f.Get("h")), Is.EqualTo(new[] { 1.5f, -0.25f }));
        Assert.That(TensorConvert.ToFloat32(f.Get("b")), Is.EqualTo(new[] { 1.5f, -4f }));
    }
}
