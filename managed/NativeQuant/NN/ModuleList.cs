namespace NativeQuant.NN;

/// <summary>An indexable list of submodules named "0", "1", ... (torch.nn.ModuleList).</summary>
public sealed class ModuleList<T> : Module where T : Module
{
    private int _count;

    public ModuleList(IEnumerable<T> modules)
    {
        foreach (var m in modules) RegisterModule((_count++).ToString(System.Globalization.CultureInfo.InvariantCulture), m);
    }

    public int Count => _count;
    public T this[int i] => Child<T>(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
