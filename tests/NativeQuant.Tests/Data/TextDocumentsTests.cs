using NativeQuant.Data;
using NUnit.Framework;

namespace NativeQuant.Tests.Data;

public class TextDocumentsTests
{
    [Test]
    public void EmbeddedDatasetsAreDocuments()
    {
        var sotu = TextDocuments.Read("sotu");
        var moby = TextDocuments.Read("moby-dick");
        Assert.That(sotu, Has.Count.GreaterThan(200), "one document per State of the Union address");
        Assert.That(moby, Has.Count.GreaterThan(100), "one document per chapter or section");
        Assert.That(sotu.Concat(moby), Has.All.Not.Empty);
    }

    [Test]
    public void PlainFileSplitsOnBlankLines()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "first doc\nstill first\n\n\nsecond doc\n");
            Assert.That(TextDocuments.Read(path), Is.EqualTo(new[] { "first doc\nstill first", "second doc" }), "documents are trimmed");
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void UnknownNameSaysWhatIsAccepted()
    {
        var e = Assert.Throws<FileNotFoundException>(() => TextDocuments.Read("no-such-corpus"))!;
        Assert.That(e.Message, Does.Contain("--data no-such-corpus").And.Contain("moby-dick, sotu"));
    }
}
