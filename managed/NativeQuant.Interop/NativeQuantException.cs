namespace NativeQuant.Interop;

/// <summary>A native NativeQuant call returned a failure status; the message is the native one
/// (it names the offending argument and what was expected).</summary>
public sealed class NativeQuantException : Exception
{
    public NativeQuantException(NqStatus status, string? function, string nativeMessage)
        : base(Compose(status, function, nativeMessage))
    {
        Status = status;
        Function = function;
        NativeMessage = nativeMessage;
    }

    /// <summary>The status code the native function returned.</summary>
    public NqStatus Status { get; }

    /// <summary>The C function that failed (e.g. "nq_threads_set"), when known.</summary>
    public string? Function { get; }

    /// <summary>Text of nq_last_error_message() at the time of the failure.</summary>
    public string NativeMessage { get; }

    private static string Compose(NqStatus status, string? function, string nativeMessage)
    {
        var text = nativeMessage.Length > 0 ? nativeMessage : "failed without a message";
        // Native messages already start with the function name; add it only when missing.
        if (function is not null && !text.StartsWith(function, StringComparison.Ordinal))
            text = $"{function}: {text}";
        return $"{text} [{Nq.StatusName(status)}]";
    }
}
