package org.distill4j.teacher;

import org.distill4j.loss.LossMath;
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
        logProbabilities(values, kind, r, classes, 1.0, out);
    }

    /**
     * Log-probabilities (double) of row {@code r} softened at temperature {@code temperature}, as the tempered losses
     * soften a teacher row: {@code log softmax(x / T)} of logits x, {@code log softmax(log p / T)} of probabilities p
     * (p raised to {@code 1/T} and renormalized). A class of zero mass ({@code -Infinity} logit, probability 0) stays
     * {@code -Infinity}. At T = 1, {@link #logProbabilities(float[], TeacherValues, int, int, double[])}.
     *
     * @param temperature finite and {@code > 0}
     * @throws IllegalArgumentException for another temperature, naming it
     */
    public static void logProbabilities(float[] values, TeacherValues kind, int r, int classes, double temperature, double[] out) {
        if (!(temperature > 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature is " + temperature + ", expected a finite value > 0");
        }
        int off = r * classes;
        boolean probs = kind == TeacherValues.PROBABILITIES;
        if (probs && temperature == 1.0) {
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
        // the scores (logits, or log p, which needs no renormalization: a constant shift leaves their softmax as it is)
        // shifted by their max, divided by T
        double m = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < classes; i++) {
            out[i] = probs ? Math.log(values[off + i]) : values[off + i];
            m = Math.max(m, out[i]);
        }
        double z = 0;
        for (int i = 0; i < classes; i++) {
            // (x - m) / T in double: no overflow at logits near the float limit, and exp(0) = 1 for the largest class
            out[i] = (out[i] - m) / temperature;
            z += LossMath.exp(out[i]);
        }
        // shift by m before log z is taken off: m + log z rounds to m near the float limit (tied logits of 3e38 were
        // each given probability 1)
        double logZ = Math.log(z);
        for (int i = 0; i < classes; i++) {
            out[i] -= logZ;
        }
    }
}
