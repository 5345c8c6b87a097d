using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using NativeQuant.Quantization;
using Spectre.Console;

namespace NativeQuant.Cli;

/// <summary>Renders a <see cref="QuantReport"/> as a Spectre table, a one-line summary, or JSON.</summary>
public static class ReportView
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // SNR is +inf for exact tensors
    };

    public static void Table(IAnsiConsole console, QuantReport r)
    {
        var table = new Table().Border(TableBorder.Rounded).Title($"{Markup.Escape(Path.GetFileName(r.Input))} -> {Markup.Escape(r.Method)}");
        foreach (var c in new[] { "tensor", "shape", "method", "MAE", "RMSE", "max err", "SNR dB", "bits/param" })
            table.AddColumn(c == "tensor" || c == "shape" || c == "method" ? new TableColumn(c) : new TableColumn(c).RightAligned());
        foreach (var t in r.Tensors)
            table.AddRow(Markup.Escape(t.Name), Markup.Escape("[" + string.Join("x", t.Shape) + "]"), Markup.Escape(t.Note is null ? t.Method : $"{t.Method} ({t.Note})"),
                Num(t.MeanAbsError, "0.00000"), Num(t.Rmse, "0.00000"), Num(t.MaxAbsError, "0.0000"), Num(t.SnrDb, "0.00"), t.BitsPerParameter.ToString("0.000", CultureInfo.InvariantCulture));
        table.AddEmptyRow();
        table.AddRow("[bold]total (quantized)[/]", $"{r.QuantizedTensors} tensors, {r.QuantizedParameters:N0} params", Markup.Escape(r.Method),
            Num(r.MeanAbsError, "0.00000"), Num(r.Rmse, "0.00000"), Num(r.MaxAbsError, "0.0000"), Num(r.SnrDb, "0.00"), r.QuantizedBitsPerParameter.ToString("0.000", CultureInfo.InvariantCulture));
        table.AddRow("[bold]total (file)[/]", $"{r.Tensors.Count} tensors, {r.Parameters:N0} params", "", "", "", "", "", r.OverallBitsPerParameter.ToString("0.000", CultureInfo.InvariantCulture));
        console.Write(table);
        console.WriteLine($"wrote {r.Output} ({r.OutputFileBytes:N0} bytes)");
    }

    public static string Summary(QuantReport r) => string.Create(CultureInfo.InvariantCulture,
        $"quantized {r.QuantizedTensors} of {r.Tensors.Count} tensors ({r.QuantizedParameters:N0} of {r.Parameters:N0} params) with {r.Method}: " +
        $"{r.QuantizedBitsPerParameter:0.000} bits/param, MAE {r.MeanAbsError:0.00000}; wrote {r.Output} ({r.OutputFileBytes:N0} bytes)");

    public static string ToJson(QuantReport r, QuantOptions o) => JsonSerializer.Serialize(new
    {
        r.Input,
        r.Output,
        r.Method,
        Blocksize = o.Method.IsBlockwise() ? o.EffectiveBlocksize : (int?)null,
        o.DoubleQuant,
        r.OutputFileBytes,
        Totals = new
        {
            r.Parameters, r.QuantizedParameters, r.QuantizedTensors, r.MeanAbsError, r.Rmse, r.MaxAbsError, r.SnrDb,
            BitsPerParameter = r.QuantizedBitsPerParameter, OverallBitsPerParameter = r.OverallBitsPerParameter,
        },
        r.Tensors,
    }, Json);

    private static string Num(double? v, string format) => v switch
    {
        null => "-",
        double d when double.IsPositiveInfinity(d) => "inf",
        double d => d.ToString(format, CultureInfo.InvariantCulture),
    };
}
