using NativeQuant.Data;

namespace NativeQuant.Training;

/// <summary>Builds <see cref="ClassificationExample"/>s with the same encoder that builds the training examples, so
/// prompts and answers are tokenized (and truncated) exactly as in training.</summary>
public static class ClassificationExamples
{
    /// <param name="labels">the classes in a fixed order (candidate i is labels[i]).</param>
    public static List<ClassificationExample> Encode(SupervisedExampleEncoder encoder, string answerField, IReadOnlyList<string> labels,
                                                     IReadOnlyList<IReadOnlyDictionary<string, string>> rows)
    {
        var result = new List<ClassificationExample>(rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            if (!row.TryGetValue(answerField, out var truth))
                throw new KeyNotFoundException($"example {i}: no '{answerField}' field");
            int label = labels.ToList().IndexOf(truth);
            if (label < 0) throw new ArgumentException($"example {i}: label '{truth}' is not one of {string.Join(", ", labels)}");
            int[]? prompt = null;
            var candidates = new int[labels.Count][];
            // The true label's encoding fixes the prompt; the others contribute only their answer tokens.
            foreach (int c in labels.Select((_, c) => c).OrderBy(c => c == label ? 0 : 1))
            {
                var withLabel = new Dictionary<string, string>(row) { [answerField] = labels[c] };
                var ex = encoder.Encode(withLabel, i);
                int start = Array.FindIndex(ex.Labels, l => l != TokenizedExample.IgnoreIndex);
                int end = ex.Length - (encoder.AppendEos ? 1 : 0);
                prompt ??= ex.InputIds[..start];
                candidates[c] = ex.InputIds[start..end];
            }
            result.Add(new ClassificationExample(prompt!, candidates, label));
        }
        return result;
    }
}
