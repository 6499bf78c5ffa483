package org.distill4j.loss;

/**
 * Row helpers shared by the CPU losses: stable maxima and log-sum-exp over one row of a row-major
 * buffer, accumulated in double. Package-private: the public surface is the losses.
 */
final class RowMath {
    private RowMath() {
    }

    /** Largest element of {@code x[off, off + n)}. */
    static float max(float[] x, int off, int n) {
        float m = Float.NEGATIVE_INFINITY;
        for (int i = off, end = off + n; i < end; i++) {
            if (x[i] > m) {
                m = x[i];
            }
        }
        return m;
    }

    /** Checks a row of logits: every element finite. Names the row and column on failure. */
    static void requireFiniteLogits(String what, float[] x, int off, int n, int row) {
        for (int i = 0; i < n; i++) {
            float v = x[off + i];
            if (!Float.isFinite(v)) {
                throw new BadRowException(what + " at row ", row, ", class " + i + " is " + v + ", expected a finite value");
            }
        }
    }

    /**
     * Checks a row of teacher logits: each finite, or {@code -Infinity} for a class the teacher gives no mass (a
     * masked or padded vocabulary entry, see {@link TeacherValues}), and at least one finite. NaN and
     * {@code +Infinity} are refused; the message names the row and class.
     */
    static void requireTeacherLogits(float[] x, int off, int n, int row) {
        boolean mass = false;
        for (int i = 0; i < n; i++) {
            float v = x[off + i];
            if (Float.isNaN(v) || v == Float.POSITIVE_INFINITY) {
                throw new BadRowException("teacher logit at row ", row, ", class " + i + " is " + v
                        + ", expected a finite value, or -Infinity for a class of zero probability");
            }
            mass |= v != Float.NEGATIVE_INFINITY;
        }
        if (!mass) {
            throw new BadRowException("teacher logits of row ", row, " are all -Infinity (no class has probability); "
                    + "expected at least one finite value");
        }
    }

    /**
     * Checks a temperature: finite and > 0, and at least {@link Double#MIN_NORMAL}, since the losses divide by it (a
     * subnormal temperature's reciprocal is infinite, and the scaled row maximum becomes 0 * Infinity = NaN); the message
     * names the loss.
     */
    static double requireTemperature(String loss, double t) {
        if (!(t >= Double.MIN_NORMAL) || Double.isInfinite(t)) {
            throw new IllegalArgumentException(loss + " temperature must be a finite number > 0, got " + t
                    + (t > 0 && t < Double.MIN_NORMAL ? " (below 2^-1022, its reciprocal overflows)" : ""));
        }
        return t;
    }

    /**
     * Starts row {@code r} of a loss, whose gradient goes to {@code grad[gradOff, gradOff + classes)}: an uncounted
     * row gets a zero gradient and false; a counted row has its student logits (finite) and, with {@code teacher}, its
     * dense teacher values checked ({@link #requireTeacherLogits}, {@link #requireProbabilities}), and true.
     */
    static boolean beginRow(LogitBatch batch, float[] grad, int gradOff, int r, boolean teacher) {
        final int v = batch.classes();
        if (!batch.counts(r)) {
            java.util.Arrays.fill(grad, gradOff, gradOff + v, 0f);
            return false;
        }
        final int off = r * v;
        requireFiniteLogits("student logit", batch.student(), off, v, r);
        if (teacher) {
            if (batch.teacherValues() == TeacherValues.PROBABILITIES) {
                requireProbabilities(batch.teacher(), off, v, r);
            } else {
                requireTeacherLogits(batch.teacher(), off, v, r);
            }
        }
        return true;
    }

    /** Checks a row of probabilities: every element finite and non-negative, and the row not all zero. */
    static void requireProbabilities(float[] p, int off, int n, int row) {
        boolean positive = false;
        for (int i = 0; i < n; i++) {
            float v = p[off + i];
            if (!(v >= 0f) || v == Float.POSITIVE_INFINITY) {
                throw new BadRowException("teacher probability at row ", row, ", class " + i + " is " + v
                        + ", expected a finite value >= 0");
            }
            positive |= v > 0f;
        }
        if (!positive) {
            throw new BadRowException("teacher probabilities of row ", row, " are all zero");
        }
    }
}
