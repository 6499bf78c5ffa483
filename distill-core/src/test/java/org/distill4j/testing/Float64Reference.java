package org.distill4j.testing;

/**
 * Straightforward float64 formulas of the logit losses, written for clarity rather than speed, to
 * check the fused float32 implementations against. Inputs are widened from float; all arithmetic is
 * double. Each method returns the mean-over-rows value and fills {@code grad} (may be null) with
 * {@code upstream * dValue/dStudent}.
 */
public final class Float64Reference {
    private Float64Reference() {
    }

    /** log softmax of x / t over one row, via the max-shifted log-sum-exp. */
    public static double[] logSoftmax(double[] x, int off, int v, double t) {
        double m = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            m = Math.max(m, x[off + i] / t);
        }
        double z = 0;
        for (int i = 0; i < v; i++) {
            z += Math.exp(x[off + i] / t - m);
        }
        double lse = m + Math.log(z);
        double[] out = new double[v];
        for (int i = 0; i < v; i++) {
            out[i] = x[off + i] / t - lse;
        }
        return out;
    }

    /** The same on float inputs, widened exactly to double first. */
    public static double[] logSoftmax(float[] x, int off, int v, double t) {
        double[] row = new double[v];
        for (int i = 0; i < v; i++) {
            row[i] = x[off + i];
        }
        return logSoftmax(row, 0, v, t);
    }

    /** Teacher log-targets: logits at temperature t, or probabilities raised to 1/t and renormalized. */
    public static double[] teacherLogTargets(float[] teacher, boolean probabilities, int off, int v, double t) {
        if (!probabilities) {
            return logSoftmax(teacher, off, v, t);
        }
        double[] lp = new double[v];
        double m = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            lp[i] = Math.log(teacher[off + i]) / t;
            m = Math.max(m, lp[i]);
        }
        double z = 0;
        for (int i = 0; i < v; i++) {
            z += Math.exp(lp[i] - m);
        }
        double lse = m + Math.log(z);
        for (int i = 0; i < v; i++) {
            lp[i] -= lse;
        }
        return lp;
    }

    /**
     * alpha * CE + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T)), mean over rows; a row labeled UNLABELED (-1) has
     * no CE term (and still counts in the mean).
     */
    public static double kd(float[] s, float[] teacher, boolean probabilities, int[] labels, int rows, int v,
                            double temperature, double alpha, double upstream, double[] grad) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            int off = r * v;
            double[] logP = teacherLogTargets(teacher, probabilities, off, v, temperature);
            double[] logQ = logSoftmax(s, off, v, temperature);
            double[] logS1 = logSoftmax(s, off, v, 1.0);
            double kl = 0;
            for (int i = 0; i < v; i++) {
                double p = Math.exp(logP[i]);
                if (p > 0) {
                    kl += p * (logP[i] - logQ[i]);
                }
            }
            boolean labeled = alpha > 0 && labels[r] != org.distill4j.loss.LogitBatch.UNLABELED;
            if (alpha > 0 && labels[r] < 0 && labels[r] != org.distill4j.loss.LogitBatch.UNLABELED) {
                throw new IllegalArgumentException("the reference takes UNLABELED rows, not label " + labels[r] + " (row " + r + ")");
            }
            double ce = labeled ? -logS1[labels[r]] : 0;
            total += alpha * ce + (1 - alpha) * temperature * temperature * kl;
            if (grad != null) {
                for (int i = 0; i < v; i++) {
                    double g = (1 - alpha) * temperature * (Math.exp(logQ[i]) - Math.exp(logP[i]));
                    if (labeled) {
                        g += alpha * (Math.exp(logS1[i]) - (i == labels[r] ? 1 : 0));
                    }
                    grad[off + i] = upstream * g / rows;
                }
            }
        }
        return total / rows;
    }

    /**
     * {@code topk-kd} with the renormalize tail: per row the top-k log-probabilities {@code lps} (at T = 1) divided by
     * T and renormalized over the k entries, {@code p~}, against the student's full softmax at T:
     * {@code T^2 sum_{j in K} p~_j (log p~_j - log q_j)}, gradient {@code T (q_i - p~_i [i in K])}; mean over rows.
     */
    public static double topKKd(float[] s, int[] ids, float[] lps, int k, int rows, int v, double temperature, double upstream,
                                double[] grad) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            int off = r * v;
            double[] logQ = logSoftmax(s, off, v, temperature);
            double[] logP = logSoftmax(lps, r * k, k, temperature);
            double value = 0;
            double[] p = new double[v];
            for (int j = 0; j < k; j++) {
                int id = ids[r * k + j];
                p[id] = Math.exp(logP[j]);
                if (p[id] > 0) {
                    value += p[id] * (logP[j] - logQ[id]);
                }
            }
            total += temperature * temperature * value;
            if (grad != null) {
                for (int i = 0; i < v; i++) {
                    grad[off + i] = upstream * temperature * (Math.exp(logQ[i]) - p[i]) / rows;
                }
            }
        }
        return total / rows;
    }

    /** Cross-entropy -log softmax(s)_y, mean over rows; a row labeled UNLABELED (-1) adds 0 (and still counts). */
    public static double ce(float[] s, int[] labels, int rows, int v, double upstream, double[] grad) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            int off = r * v;
            if (labels[r] < 0 && labels[r] != org.distill4j.loss.LogitBatch.UNLABELED) {
                throw new IllegalArgumentException("the reference takes UNLABELED rows, not label " + labels[r] + " (row " + r + ")");
            }
            if (labels[r] == org.distill4j.loss.LogitBatch.UNLABELED) {
                if (grad != null) {
                    java.util.Arrays.fill(grad, off, off + v, 0.0);
                }
                continue;
            }
            double[] logS = logSoftmax(s, off, v, 1.0);
            total += -logS[labels[r]];
            if (grad != null) {
                for (int i = 0; i < v; i++) {
                    grad[off + i] = upstream * (Math.exp(logS[i]) - (i == labels[r] ? 1 : 0)) / rows;
                }
            }
        }
        return total / rows;
    }
}
