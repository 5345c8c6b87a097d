using NativeQuant.Data;
using NativeQuant.Tests.IO;
using NUnit.Framework;

namespace NativeQuant.Tests.Data;

public class ReadersTests
{
    [Test]
    public void Csv_HandlesQuotesCommasNewlinesAndDoubledQuotes()
    {
        var rows = CsvReader.Parse(new StringReader("text,label\r\n\"Hello, \"\"world\"\"\nsecond line\",ham\nplain,spam\n"), "t.csv").ToList();
        Assert.That(rows, Has.Count.EqualTo(2));
        Assert.That(rows[0]["text"], Is.EqualTo("Hello, \"world\"\nsecond line"));
        Assert.That(rows[0]["label"], Is.EqualTo("ham"));
        Assert.That(rows[1]["text"], Is.EqualTo("plain"));
    }

    [Test]
    public void Csv_Errors_NameTheLine()
    {
        var wrongCount = Assert.Throws<InvalidDataException>(() => CsvReader.Parse(new StringReader("a,b\n1,2\n3\n"), "t.csv").ToList());
        Assert.That(wrongCount!.Message, Does.StartWith("t.csv:3:").And.Contain("1 fields"));
        var open = Assert.Throws<InvalidDataException>(() => CsvReader.Parse(new StringReader("a\n\"never closed\n"), "t.csv").ToList());
        Assert.That(open!.Message, Does.StartWith("t.csv:2:").And.Contain("not closed"));
    }

    [Test]
    public void Jsonl_ReadsObjects_AndReportsBadLines()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("d.jsonl"), "{\"text\":\"hi\",\"n\":3,\"ok\":true,\"x\":null}\n\n{\"text\":\"there\"}\n");
        var rows = JsonlReader.Read(dir.File("d.jsonl")).ToList();
        Assert.That(rows.Select(r => r["text"]), Is.EqualTo(new[] { "hi", "there" }));
        Assert.That((rows[0]["n"], rows[0]["ok"], rows[0]["x"]), Is.EqualTo(("3", "true", "")));
        File.WriteAllText(dir.File("bad.jsonl"), "{\"a\":1}\n[1,2]\n");
        var e = Assert.Throws<InvalidDataException>(() => JsonlReader.Read(dir.File("bad.jsonl")).ToList());
        Assert.That(e!.Message, Does.Contain("bad.jsonl:2:").And.Contain("expected a JSON object"));
    }

    [Test]
    public void PlainText_SplitsDocumentsOnBlankLines()
    {
        Assert.That(PlainText.SplitDocuments("one\ntwo\n\n  \nthree\r\n\r\nfour\n"), Is.EqualTo(new[] { "one\ntwo", "three", "four" }));
    }

    [Test]
    public void Email_SplitsSubjectAndBody_UnfoldingHeaders()
    {
        var (subject, body) = EmailText.Split("From: a@b\nSubject: Cheap\n\tpills now\nX-Other: 1\n\nHello\n\nBye\n");
        Assert.That(subject, Is.EqualTo("Cheap pills now"));
        Assert.That(body, Is.EqualTo("Hello\n\nBye"));
        Assert.That(EmailText.Split("From: a@b\n\nno subject").Subject, Is.EqualTo(""));
    }
}
