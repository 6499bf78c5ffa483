package org.distill4j.loss;

import java.util.Map;

/**
 * Hard-label cross-entropy on student logits: {@code CE = -log softmax(s)_y = logsumexp(s) - s_y},
 * with gradient {@code softmax(s) - onehot(y)}. Registered as {@code ce}.
 *
 * <p>Computed per row with a stable log-sum-exp (the row maximum is subtracted), accumulated in
 * double, without per-row allocation; the softmax exponentials are written straight into the
 * gradient buffer and normalized in place.
 */
public final class CrossEntropy implements LogitLoss {
    /** The registered name. */
    public static final String NAME = "ce";

    private final Reduction reduction;

    /** Cross-entropy averaged over the counted rows ({@link Reduction#MEAN}). */
    public CrossEntropy() {
        this(Reduction.MEAN);
    }

    /**
     * Cross-entropy with the given reduction over the counted rows.
     *
     * @throws NullPointerException if {@code reduction} is null
     */
    public CrossEntropy(Reduction reduction) {
        this.reduction = java.util.Objects.requireNonNull(reduction, "reduction");
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, Object> settings() {
        return Map.of("reduction", reduction.name().toLowerCase());
    }

    @Override
    public boolean needsTeacher() {
        return false;
    }

    @Override
    public boolean needsLabels() {
        return true;
    }

    /** True: each row's cross-entropy depends on that row only. */
    @Override
    public boolean rowSeparable() {
        return true;
    }

    @Override
    public Reduction reduction() {
        return reduction;
    }

    @Override
    public LossResult compute(LogitBatch batch, float[] gradOut, float upstream) {
        checkInputs(batch, gradOut, upstream);
        return rows(batch, 0, batch.rows(), gradOut, 0, upstream);
    }

    /** Reads the rows in place. */
    @Override
    public LossResult computeRows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        checkRows(batch, from, to, gradOut, gradOffset, upstream);
        return rows(batch, from, to, gradOut, gradOffset, upstream);
    }

    /** Rows {@code [from, to)}, their gradient from {@code gradOut[gradOffset]} on; the arguments are checked. */
    private LossResult rows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        final int v = batch.classes();
        final float[] s = batch.student();
        final int[] y = batch.labels();
        final double w = batch.rowWeight(reduction);
        double total = 0;
        for (int r = from; r < to; r++) {
            final int goff = gradOffset + (r - from) * v;
            if (!RowMath.beginRow(batch, gradOut, goff, r, false)) {
                continue;
            }
            if (y[r] == LogitBatch.UNLABELED) { // counts, with no term: its value and gradient are 0
                java.util.Arrays.fill(gradOut, goff, goff + v, 0f);
                continue;
            }
            total += rowCrossEntropy(s, r * v, v, y[r], gradOut, goff, w * upstream);
        }
        double value = total * w;
        return new LossResult(value, batch.countedRows(from, to), Map.of(NAME, value));
    }

    /**
     * One row of cross-entropy, the logits at {@code s[off, off + v)}: returns the row's CE and writes
     * {@code scale * (softmax - onehot)} into {@code grad[gOff, gOff + v)}.
     */
    static double rowCrossEntropy(float[] s, int off, int v, int label, float[] grad, int gOff, double scale) {
        final float m = RowMath.max(s, off, v);
        double z = 0;
        for (int i = 0; i < v; i++) {
            double e = LossMath.exp((double) s[off + i] - m);
            grad[gOff + i] = (float) e;
            z += e;
        }
        final double inv = 1.0 / z;
        for (int i = 0; i < v; i++) {
            grad[gOff + i] = (float) (scale * (grad[gOff + i] * inv));
        }
        grad[gOff + label] = (float) (scale * (LossMath.exp((double) s[off + label] - m) * inv - 1.0));
        return Math.log(z) - ((double) s[off + label] - m);
    }
}
