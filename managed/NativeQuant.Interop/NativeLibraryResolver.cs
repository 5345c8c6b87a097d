using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NativeQuant.Interop;

/// <summary>Finds and loads the native library for every [LibraryImport("nativequant")] of this
/// assembly, and refuses a library whose ABI major version differs from the bindings'.</summary>
public static unsafe class NativeLibraryResolver
{
    /// <summary>Environment variable naming the library file to load, overriding the search.</summary>
    public const string OverrideVariable = "NQ_NATIVE_LIBRARY";

    /// <summary>ABI major version these bindings were generated for (see nq_version_get).</summary>
    public const int ExpectedAbiMajor = NativeMethods.NQ_VERSION_MAJOR;

    private const string LibraryName = "nativequant";

    /// <summary>Platform file name of the library: libnativequant.so, nativequant.dll, libnativequant.dylib.</summary>
    public static string FileName =>
        OperatingSystem.IsWindows() ? $"{LibraryName}.dll"
        : OperatingSystem.IsMacOS() ? $"lib{LibraryName}.dylib"
        : $"lib{LibraryName}.so";

    // Runs when the assembly loads, before any P/Invoke can bind: the one place a library can
    // install its own resolver without every application having to remember it.
    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "library resolver registration")]
    internal static void Register() =>
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != LibraryName)
            return 0;  // not ours: default probing
        var path = Locate(Environment.GetEnvironmentVariable(OverrideVariable),
                          Path.GetDirectoryName(assembly.Location), AppContext.BaseDirectory);
        OpenMpPolicy.ApplyDefault();
        var handle = NativeLibrary.Load(path);
        try
        {
            CheckAbi(handle, path);
        }
        catch
        {
            NativeLibrary.Free(handle);
            throw;
        }
        return handle;
    }

    /// <summary>Where the library is loaded from: <paramref name="overridePath"/> (NQ_NATIVE_LIBRARY)
    /// when set, else next to the assembly, else build/lib (or build/bin) in the nearest ancestor of
    /// <paramref name="baseDirectory"/>. Throws <see cref="DllNotFoundException"/> saying where it
    /// looked and what to run.</summary>
    public static string Locate(string? overridePath, string? assemblyDirectory, string baseDirectory)
    {
        if (!string.IsNullOrEmpty(overridePath))
        {
            if (File.Exists(overridePath))
                return Path.GetFullPath(overridePath);
            throw new DllNotFoundException(
                $"{OverrideVariable} is set to '{overridePath}', but no such file exists. Point it at a built " +
                $"{FileName} (./build.sh native builds build/lib/{FileName}) or unset it to search the default places.");
        }
        var looked = new List<string>();
        foreach (var dir in new[] { assemblyDirectory, baseDirectory }.Where(d => !string.IsNullOrEmpty(d)).Distinct())
        {
            var candidate = Path.Combine(dir!, FileName);
            looked.Add(candidate);
            if (File.Exists(candidate))
                return candidate;
        }
        for (var dir = new DirectoryInfo(baseDirectory); dir is not null; dir = dir.Parent)
        {
            foreach (var candidate in BuildTreeCandidates(dir.FullName))
            {
                if (File.Exists(candidate))
                    return candidate;
            }
            looked.Add(Path.Combine(dir.FullName, "build", "lib", FileName));
        }
        throw new DllNotFoundException(
            $"The NativeQuant native library ({FileName}) was not found. Build it with `./build.sh native` " +
            $"(or `./build.sh` for everything; build.ps1 on Windows), or set {OverrideVariable} to its path. " +
            $"Looked in: {OverrideVariable} (unset), {string.Join(", ", looked)}.");
    }

    // CMake puts shared libraries in build/lib and Windows DLLs in build/bin; multi-config
    // generators (Visual Studio) add a configuration directory.
    private static IEnumerable<string> BuildTreeCandidates(string root)
    {
        foreach (var sub in new[] { "lib", "bin" })
        foreach (var config in new[] { "", "Release", "RelWithDebInfo", "Debug" })
            yield return Path.Combine(root, "build", sub, config, FileName);
    }

    private static void CheckAbi(nint handle, string path)
    {
        if (!NativeLibrary.TryGetExport(handle, "nq_version_get", out var export))
            throw new DllNotFoundException($"{path} is not a NativeQuant library (no nq_version_get export).");
        int major, minor, patch;
        var get = (delegate* unmanaged<int*, int*, int*, NqStatus>)export;
        if (get(&major, &minor, &patch) != NqStatus.Ok)
            throw new DllNotFoundException($"{path}: nq_version_get failed; the library is broken or not NativeQuant's.");
        EnsureCompatible(major, minor, patch, path);
    }

    /// <summary>Throws unless a library of ABI version major.minor.patch can serve these bindings.</summary>
    internal static void EnsureCompatible(int major, int minor, int patch, string path)
    {
        if (major != ExpectedAbiMajor)
            throw new DllNotFoundException(
                $"{path} has ABI version {major}.{minor}.{patch}, but these bindings need major version " +
                $"{ExpectedAbiMajor}. Rebuild native and managed together with `./build.sh`.");
    }
}
