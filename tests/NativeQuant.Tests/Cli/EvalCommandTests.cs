using NativeQuant.Cli;
using NUnit.Framework;

namespace NativeQuant.Tests.Cli;

public class EvalCommandTests
{
    [Test]
    public async Task UnknownDataIsAUserErrorListingTheDatasets()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = await NqCli.RunAsync(["eval", "--model", "stories15M", "--data", "no-such-corpus"], output, error);
        Assert.That(code, Is.EqualTo(1), error.ToString());
        Assert.That(error.ToString(), Does.Contain("no-such-corpus").And.Contain("moby-dick, sotu"));
    }
}
