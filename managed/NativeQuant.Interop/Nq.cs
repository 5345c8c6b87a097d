using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace NativeQuant.Interop;

/// <summary>Status checking for calls through <see cref="NativeMethods"/>.</summary>
public static unsafe partial class Nq
{
    /// <summary>Throws <see cref="NativeQuantException"/> unless <paramref name="status"/> is Ok.
    /// Write it around the call, <c>Nq.Check(NativeMethods.nq_threads_set(n))</c>, so the exception
    /// can name the C function from the call expression.</summary>
    public static void Check(NqStatus status, [CallerArgumentExpression(nameof(status))] string? call = null)
    {
        if (status != NqStatus.Ok)
            throw Failure(status, call is null ? null : FunctionName(call));
    }

    /// <summary>The exception for a failed call, carrying this thread's native error message.</summary>
    public static NativeQuantException Failure(NqStatus status, string? function) =>
        new(status, function, Utf8(NativeMethods.nq_last_error_message()));

    /// <summary>Static C name of a status code, e.g. "NQ_ERR_SHAPE".</summary>
    public static string StatusName(NqStatus status) => Utf8(NativeMethods.nq_status_name(status));

    /// <summary>A NUL-terminated UTF-8 string owned by the native library, copied to a managed string.</summary>
    public static string Utf8(byte* text) => text is null ? "" : Marshal.PtrToStringUTF8((nint)text) ?? "";

    /// <summary>NUL-terminated UTF-8 bytes of <paramref name="text"/>, for `const char*` parameters
    /// (pin with <c>fixed</c>). Rejects embedded NULs, which C would silently truncate at.</summary>
    public static byte[] Utf8Z(string text)
    {
        if (text.Contains('\0'))
            throw new ArgumentException("string passed to native code must not contain NUL characters", nameof(text));
        var bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(text) + 1];
        System.Text.Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }

    private static string? FunctionName(string call)
    {
        var match = CFunctionName().Match(call);
        return match.Success ? match.Value : null;
    }

    [GeneratedRegex(@"\bnq_[A-Za-z0-9_]+")]
    private static partial Regex CFunctionName();
}
