namespace NativeQuant.Fetch;

/// <summary>An asset could not be fetched, verified or found; the message says what to do.</summary>
public sealed class AssetException(string message, Exception? inner = null) : Exception(message, inner);
