using NativeQuant.Fetch;

namespace NativeQuant;

/// <summary>Paths of fetched assets in the default store (see <see cref="AssetCache"/>).</summary>
public static class Assets
{
    /// <summary>Absolute path of e.g. "stories15M/model.bin"; throws telling the user to run `nq fetch` when missing.</summary>
    public static string Path(string relative) => AssetCache.CreateDefault().PathOf(relative);
}
