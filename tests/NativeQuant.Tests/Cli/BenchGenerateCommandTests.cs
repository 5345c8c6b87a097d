using NativeQuant.Cli;
using NUnit.Framework;

namespace NativeQuant.Tests.Cli;

public class BenchGenerateCommandTests
{
    [Test]
    public async Task Breakdown_SplitsADecodeStepIntoHeadBodyAndRest()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = await NqCli.RunAsync(["bench", "generate", "--quant", "nf4", "--quantize-head", "--decode-tokens", "4", "--prompt-tokens", "8",
                                         "--reps", "1", "--breakdown"], output, error);
        Assert.That(code, Is.Zero, error.ToString());
        var line = output.ToString().Split('\n').Single(l => l.StartsWith("nf4 + head: decode step"));
        var m = System.Text.RegularExpressions.Regex.Match(line, @"decode step (\d+) us = head (\d+) \+ body linears (\d+) \+ rest (-?\d+)");
        Assert.That(m.Success, line);
        var us = m.Groups.Values.Skip(1).Select(g => double.Parse(g.Value)).ToArray();
        Assert.That(us[1], Is.Positive, line);  // the products take time
        Assert.That(us[2], Is.Positive, line);
        Assert.That(us[0], Is.EqualTo(us[1] + us[2] + us[3]).Within(2), line);  // printed rounded
    }
}
