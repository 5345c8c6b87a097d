using NativeQuant.Interop;
using NUnit.Framework;

namespace NativeQuant.Tests.Interop;

public class NativeLayoutTests
{
    private static IEnumerable<TestCaseData> Structs() =>
        NativeLayout.Structs().Select(s => new TestCaseData(s).SetArgDisplayNames(s.CName));

    [TestCaseSource(nameof(Structs))]
    public void ManagedLayoutMatchesC(NativeStructLayout layout)
    {
        Assert.That(layout.ManagedSize, Is.EqualTo(layout.CSize), $"sizeof({layout.CName})");
        foreach (var f in layout.Fields)
            Assert.That(f.ManagedOffset, Is.EqualTo(f.COffset), $"offsetof({layout.CName}, {f.Field})");
    }

    [Test]
    public void EveryGeneratedStructHasALayoutEntry()
    {
        var listed = NativeLayout.Structs().Select(s => s.Type).Concat(NativeLayout.OpaqueTypes).ToHashSet();
        var generated = typeof(NativeMethods).Assembly.GetTypes()
            .Where(t => t.IsValueType && !t.IsEnum && !t.IsGenericTypeDefinition && t.Namespace == "NativeQuant.Interop"
                        && t.IsPublic && t.IsLayoutSequential && t.Name.StartsWith("Nq", StringComparison.Ordinal));
        Assert.That(generated.Where(t => !listed.Contains(t)), Is.Empty);
    }
}
