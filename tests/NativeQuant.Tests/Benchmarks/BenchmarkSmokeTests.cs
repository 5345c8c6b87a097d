using System.Reflection;
using BenchmarkDotNet.Attributes;
using NUnit.Framework;

namespace NativeQuant.Tests.Benchmarks;

/// <summary>Runs every BenchmarkDotNet benchmark once per parameter value (setup, body, cleanup), so the benchmark
/// project keeps working as the API it measures changes; timings are BenchmarkDotNet's business, not a test's.</summary>
public class BenchmarkSmokeTests
{
    private static IEnumerable<Type> BenchmarkTypes() =>
        typeof(NativeQuant.Benchmarks.Program).Assembly.GetTypes()
            .Where(t => t.GetMethods().Any(m => m.GetCustomAttribute<BenchmarkAttribute>() != null))
            .OrderBy(t => t.Name);

    [Test]
    public void TheProjectHasBenchmarks() => Assert.That(BenchmarkTypes().Count(), Is.GreaterThanOrEqualTo(4));

    [TestCaseSource(nameof(BenchmarkTypes))]
    public void EachBenchmarkRunsForEachParameterValue(Type type)
    {
        var param = type.GetProperties().SingleOrDefault(p => p.GetCustomAttribute<ParamsAttribute>() != null);
        object?[] values = param?.GetCustomAttribute<ParamsAttribute>()!.Values ?? [null];
        foreach (var value in values)
        {
            var bench = Activator.CreateInstance(type)!;
            param?.SetValue(bench, value);
            Invoke<GlobalSetupAttribute>(bench);
            try
            {
                foreach (var m in type.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() != null))
                    Assert.DoesNotThrow(() => m.Invoke(bench, null), $"{type.Name}.{m.Name} ({param?.Name}={value})");
            }
            finally { Invoke<GlobalCleanupAttribute>(bench); }
        }
    }

    private static void Invoke<TAttribute>(object bench) where TAttribute : Attribute
    {
        foreach (var m in bench.GetType().GetMethods().Where(m => m.GetCustomAttribute<TAttribute>() != null))
            m.Invoke(bench, null);
    }
}
