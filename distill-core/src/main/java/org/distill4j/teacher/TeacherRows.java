package org.distill4j.teacher;

import org.distill4j.loss.TeacherValues;

/** Row conversions of teacher (or any model's) outputs, shared by the teacher adapters and the evaluations. */
public final class TeacherRows {
    private TeacherRows() {
    }

    /**
     * Log-probabilities (double) of row {@code r} of a row-major {@code [rows, classes]} buffer: the
     * log-softmax of logits, or the log of renormalized probabilities.
     */
    public static void logProbabilities(float[] values, TeacherValues kind, int r, int classes, double[] out) {
        int off = r * classes;
        if (kind == TeacherValues.PROBABILITIES) {
            double sum = 0;
            for (int i = 0; i < classes; i++) {
                sum += values[off + i];
            }
            double logSum = Math.log(sum); // renormalize, as the losses do
            for (int i = 0; i < classes; i++) {
                out[i] = Math.log(values[off + i]) - logSum;
            }
            return;
        }
        double m = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < classes; i++) {
            m = Math.max(m, values[off + i]);
        }
        double z = 0;
        for (int i = 0; i < classes; i++) {
            z += Math.exp(values[off + i] - m);
        }
        // shift by m before log z is taken off: m + log z rounds to m near the float limit (tied logits of 3e38 were
        // each given probability 1)
        double logZ = Math.log(z);
        for (int i = 0; i < classes; i++) {
            out[i] = (values[off + i] - m) - logZ;
        }
    }
}
