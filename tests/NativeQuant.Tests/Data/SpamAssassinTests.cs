using System.Text.Json;
using NativeQuant.Data;
using NUnit.Framework;

namespace NativeQuant.Tests.Data;

/// <summary>The real corpus against facts computed by Python's e-mail parser (tests/reference/peft/make_data_reference.py).</summary>
public class SpamAssassinTests
{
    private static IReadOnlyList<SpamEmail>? s_emails;
    private static IReadOnlyList<SpamEmail> Emails => s_emails ??= StdlibDatasets.SpamAssassin();

    private static JsonElement Reference()
    {
        string path = Path.Combine(NativeQuant.Tests.Peft.PeftReference.Dir(), "spam_assassin_reference.json");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement;
    }

    [Test]
    public void CountsPerGroup_AndLabels()
    {
        var reference = Reference();
        Assert.That(Emails, Has.Count.EqualTo(reference.GetProperty("records").GetInt32()));
        foreach (var g in reference.GetProperty("groups").EnumerateObject())
            Assert.That(Emails.Count(e => e.Group == g.Name), Is.EqualTo(g.Value.GetInt32()), g.Name);
        Assert.That(Emails.Count(e => e.Label == "ham"), Is.EqualTo(2500 + 1400 + 250));
        Assert.That(Emails.Count(e => e.Label == "spam"), Is.EqualTo(500 + 1396));
    }

    [Test]
    public void SubjectsAndBodies_MatchPythonsEmailParser()
    {
        foreach (var s in Reference().GetProperty("subjects").EnumerateArray())
        {
            var e = Emails[s.GetProperty("index").GetInt32()];
            Assert.That(e.Id, Is.EqualTo(s.GetProperty("id").GetString()));
            Assert.That(System.Text.RegularExpressions.Regex.Replace(e.Subject, @"\s+", " ").Trim(), Is.EqualTo(s.GetProperty("subject").GetString()), $"record {e.Id} ({e.Group})");
            if (s.TryGetProperty("body_start", out var start))
                Assert.That(e.Body, Does.StartWith(start.GetString()!), $"body of record {e.Id} ({e.Group})");
        }
    }

    [Test]
    public void StratifiedSplit_IsDeterministic_PreservesTheRatio_AndPartitions()
    {
        var a = DatasetSplit.Split(Emails, 0.1, 0.1, seed: 42, label: e => e.Label);
        var b = DatasetSplit.Split(Emails, 0.1, 0.1, seed: 42, label: e => e.Label);
        var c = DatasetSplit.Split(Emails, 0.1, 0.1, seed: 43, label: e => e.Label);
        // ham 4150 -> 415 / 415 / 3320; spam 1896 -> 190 (189.6 rounded) / 190 / 1516.
        Assert.That((a.Train.Count, a.Validation.Count, a.Test.Count), Is.EqualTo((3320 + 1516, 415 + 190, 415 + 190)));
        Assert.That((a.Validation.Count(e => e.Label == "spam"), a.Test.Count(e => e.Label == "spam")), Is.EqualTo((190, 190)));
        Assert.That(a.Train.Select(e => (e.Group, e.Id)), Is.EqualTo(b.Train.Select(e => (e.Group, e.Id))));
        Assert.That(a.Test.Select(e => (e.Group, e.Id)), Is.Not.EqualTo(c.Test.Select(e => (e.Group, e.Id))));
        var all = a.Train.Concat(a.Validation).Concat(a.Test).Select(e => (e.Group, e.Id)).ToHashSet();
        Assert.That(all, Has.Count.EqualTo(Emails.Count));
        // Labels interleave inside a part (not all ham, then all spam).
        Assert.That(a.Test.Take(50).Select(e => e.Label).Distinct().Count(), Is.EqualTo(2));
    }
}
