using System.Globalization;

namespace NativeQuant.Quantization;

/// <summary>Python's repr(float) (what json.dumps writes): shortest round-trip digits, fixed notation for
/// exponents in [-4, 16), otherwise "1.5e-05" style.</summary>
internal static class PythonFloat
{
    public static string Repr(double v)
    {
        if (double.IsNaN(v)) return "NaN";
        if (double.IsInfinity(v)) return v > 0 ? "Infinity" : "-Infinity";
        if (v == 0) return double.IsNegative(v) ? "-0.0" : "0.0";
        string sign = v < 0 ? "-" : "";
        string r = Math.Abs(v).ToString("R", CultureInfo.InvariantCulture);
        int exp = 0, e = r.IndexOf('E');
        if (e >= 0) { exp = int.Parse(r[(e + 1)..], CultureInfo.InvariantCulture); r = r[..e]; }
        int dot = r.IndexOf('.');
        string intPart = dot < 0 ? r : r[..dot], all = intPart + (dot < 0 ? "" : r[(dot + 1)..]);
        string digits = all.TrimStart('0');
        int sciExp = intPart.Length + exp - (all.Length - digits.Length) - 1; // value = d.ddd * 10^sciExp
        digits = digits.TrimEnd('0');

        if (sciExp < -4 || sciExp >= 16)
        {
            string mant = digits.Length > 1 ? digits[0] + "." + digits[1..] : digits;
            return $"{sign}{mant}e{(sciExp < 0 ? "-" : "+")}{Math.Abs(sciExp):00}";
        }
        if (sciExp < 0) return $"{sign}0.{new string('0', -sciExp - 1)}{digits}";
        string whole = digits.Length > sciExp + 1 ? digits[..(sciExp + 1)] : digits.PadRight(sciExp + 1, '0');
        string frac = digits.Length > sciExp + 1 ? digits[(sciExp + 1)..] : "0";
        return $"{sign}{whole}.{frac}";
    }
}
