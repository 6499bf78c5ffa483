package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Logit standardization (S. Sun, W. Ren, J. Li, R. Wang, X. Cao, "Logit Standardization in Knowledge
 * Distillation", CVPR 2024): before the distillation loss, each row of teacher and student logits is
 * z-scored, {@code (x - mean(x)) / (max(std(x), 1e-3) + 1e-7)} with the unbiased standard deviation
 * (as the authors' code, plus the floor below), so the student matches the teacher's relative logit
 * structure rather than its scale. Registered as {@code logit-std}; wraps any dense-teacher loss
 * (default {@code kd}).
 *
 * <p>Hard labels stay on the raw logits, as in the paper and the authors' code (their KD and DKD
 * distillers compute {@code cross_entropy(logits_student, target)} on the unstandardized logits): for an
 * inner {@code kd} with {@code alpha > 0} the loss is
 * <pre>
 *   alpha * CE(s) + (1 - alpha) * T^2 * KL(softmax(z(t)/T) || softmax(z(s)/T))
 * </pre>
 * and the reported terms are {@code logit-std} (the value), {@code kd} (the standardized KD term) and
 * {@code ce} (the cross-entropy of the raw student logits, the model's real CE). So CE still sets the
 * scale of the raw logits, which the standardized term alone cannot. An inner {@code ce}, or a
 * {@link WeightedSum} with a {@code ce} or {@code kd alpha > 0} term, is rejected (its cross-entropy
 * would be standardized): combine {@code ce} with {@code logit-std} in a {@code WeightedSum} instead. So is
 * logit-std itself, directly or as a term of a weighted sum at any depth (the rows would be standardized twice). DKD has no
 * hard-label part (it uses the label only to split the distributions) and is standardized whole.
 *
 * <p>The standardized loss runs on the standardized rows; its gradient is carried back exactly:
 * <pre>
 *   y_i = c_i / d,  c = x - mean(x),  d = max(std(x), SD_FLOOR) + eps
 *   dL/dx_j = (g_j - mean(g)) / d - c_j * sum_i(g_i c_i) / (d^2 (V - 1) std(x))   when std(x) >= SD_FLOOR
 *   dL/dx_j = (g_j - mean(g)) / d                                                when std(x) &lt;  SD_FLOOR
 * </pre>
 * where {@code g = dL/dy}. The floor {@link #SD_FLOOR} = 1e-3 keeps constant and near-constant rows (a
 * zero-initialised head, a collapsed student) from dividing by eps = 1e-7: without it a constant row's
 * gradient is {@code (g - mean(g)) / 1e-7}, millions of times the plain kd gradient (PyTorch gives NaN).
 * Such a row is centred and scaled by {@code 1/1e-3} instead of up to unit variance; value and gradient
 * use the same {@code d}, so the gradient is the exact derivative of the value on either side of the
 * floor. Rows of informative logits (standard deviation well above 1e-3) are standardized exactly as in
 * the paper. Teacher probabilities are standardized through their logarithm (which differs from the
 * logits by a per-row constant). A one-class row standardizes to 0.
 *
 * <p>Teacher classes of zero mass ({@code -Infinity} logits of a masked or padded vocabulary, zero
 * probabilities) have no logit to standardize: the mean and standard deviation of a teacher row are taken
 * over its finite entries only (V' of them, {@code V' - 1} in the unbiased deviation), and those classes stay
 * at {@code -Infinity}, zero mass for the wrapped loss. A row with one finite entry standardizes it to 0. A
 * standardized student row cannot match such a class (its z-scores are bounded by {@code (V-1)/sqrt(V)}): the
 * default inner {@code kd} only keeps a constant part of its value there, but an inner {@code reverse-kl} (or
 * {@code gjsd} at beta 1) pays its floored penalty on mass the student cannot remove, which dominates its
 * gradient; use kd inside logit-std with such teachers.
 *
 * <p>Created with {@link #of}: the result is {@link TemperatureScaled} exactly when the inner loss is (a
 * temperature schedule over {@code logit-std(mse)} is refused when the run is configured, not when it starts).
 */
public sealed class LogitStandardization implements LogitLoss, EpochAware {
    /** The registered name. */
    public static final String NAME = "logit-std";
    static final double EPS = 1e-7;
    /** Rows whose unbiased standard deviation is below this are divided by it (plus eps) instead. */
    public static final double SD_FLOOR = 1e-3;

    private final LogitLoss inner;
    /** The inner loss without its hard-label part: what runs on the standardized rows. */
    private final LogitLoss soft;
    /** Cross-entropy on the raw student logits (an inner kd's alpha part), or null. */
    private final CrossEntropy hard;
    /** Weight of {@link #hard} (the inner kd's alpha); the standardized part is weighted {@code 1 - hardWeight}. */
    private final double hardWeight;

    /**
     * Logit standardization around {@code inner}; {@link TemperatureScaled} when {@code inner} is.
     *
     * @throws IllegalArgumentException when {@code inner} needs a top-k teacher, is logit standardization, or has a
     *                                  hard-label part that would be standardized (see the class comment)
     */
    public static LogitStandardization of(LogitLoss inner) {
        Objects.requireNonNull(inner, "inner loss");
        return inner instanceof TemperatureScaled ? new Tempered(inner) : new LogitStandardization(inner);
    }

    private LogitStandardization(LogitLoss inner) {
        this.inner = Objects.requireNonNull(inner, "inner loss");
        if (inner.needsTopK()) {
            throw new IllegalArgumentException("logit-std needs dense teacher logits; it cannot wrap '" + inner.name() + "'");
        }
        if (inner instanceof LogitStandardization) {
            throw new IllegalArgumentException("logit-std cannot wrap itself");
        }
        rejectHardLabelTerms(inner, inner.name());
        if (inner instanceof SoftTargetKd kd && kd.alpha() > 0) {
            this.soft = kd.withAlpha(0);
            this.hard = new CrossEntropy(kd.reduction());
            this.hardWeight = kd.alpha();
        } else {
            this.soft = inner;
            this.hard = null;
            this.hardWeight = 0;
        }
    }

    /** Rejects losses whose hard-label part could not be kept on the raw logits (see the class comment). */
    private static void rejectHardLabelTerms(LogitLoss loss, String where) {
        if (loss instanceof CrossEntropy) {
            throw new IllegalArgumentException("logit-std cannot wrap '" + where + "': hard-label cross-entropy runs on the raw "
                    + "student logits, not standardized ones; add 'ce' next to logit-std in a weighted sum");
        }
        if (loss instanceof WeightedSum ws) {
            for (WeightedSum.Term t : ws.terms()) {
                LogitLoss l = t.loss();
                if (l instanceof LogitStandardization) {
                    throw new IllegalArgumentException("logit-std cannot wrap itself, inside a weighted sum either: it would standardize "
                            + "the rows twice, and the inner one's hard-label part would see standardized logits; put that logit-std "
                            + "next to this one in a weighted sum instead");
                }
                if (l instanceof CrossEntropy || (l instanceof SoftTargetKd kd && kd.alpha() > 0)) {
                    throw new IllegalArgumentException("logit-std cannot wrap a weighted sum with the hard-label term '" + l.name()
                            + "'" + (l instanceof SoftTargetKd kd ? " (alpha " + kd.alpha() + " > 0)" : "")
                            + ": hard-label cross-entropy runs on the raw student logits; put 'ce' outside, next to logit-std, "
                            + "and give kd alpha 0 inside");
                }
                rejectHardLabelTerms(l, where);
            }
        }
    }

    /**
     * The wrapped loss, as given to {@link #of} (with its hard-label part, e.g. a {@code kd}'s alpha, which runs on the
     * raw logits); never null.
     */
    public LogitLoss inner() {
        return inner;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("loss", inner.name());
        m.putAll(inner.settings());
        return m;
    }

    @Override
    public boolean needsTeacher() {
        return true;
    }

    @Override
    public boolean needsLabels() {
        return inner.needsLabels();
    }

    @Override
    public boolean acceptsUnlabeledRows() {
        return inner.acceptsUnlabeledRows();
    }

    /** As the wrapped loss: standardization is per row. */
    @Override
    public boolean rowSeparable() {
        return inner.rowSeparable();
    }

    @Override
    public Reduction reduction() {
        return inner.reduction();
    }

    /** The inner loss's temperature, or NaN when it has none (then this is not {@link TemperatureScaled}). */
    public double temperature() {
        return inner instanceof TemperatureScaled ts ? ts.temperature() : Double.NaN;
    }

    /**
     * The same standardization around the inner loss at temperature {@code t}.
     *
     * @throws IllegalArgumentException when the inner loss has no temperature
     */
    public LogitStandardization withTemperature(double t) {
        if (!(inner instanceof TemperatureScaled ts)) {
            throw new IllegalArgumentException("logit-std wraps '" + inner.name() + "', which has no temperature");
        }
        return of(ts.withTemperature(t));
    }

    @Override
    public LogitLoss atEpoch(int epoch, int epochs) {
        return inner instanceof EpochAware ea ? of(ea.atEpoch(epoch, epochs)) : this;
    }

    /** Logit standardization around a temperature-scaled loss: a temperature schedule reaches the inner loss. */
    private static final class Tempered extends LogitStandardization implements TemperatureScaled {
        private Tempered(LogitLoss inner) {
            super(inner);
        }
    }

    @Override
    public LossResult compute(LogitBatch batch, float[] gradOut, float upstream) {
        checkInputs(batch, gradOut, upstream);
        return sliced(batch, 0, batch.rows(), gradOut, 0, upstream);
    }

    /** Reads the raw rows in place; the inner loss gets the standardized rows {@code [from, to)} as a batch. */
    @Override
    public LossResult computeRows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        checkRows(batch, from, to, gradOut, gradOffset, upstream);
        return sliced(batch, from, to, gradOut, gradOffset, upstream);
    }

    /**
     * Rows {@code [from, to)} in slices of {@link Scratch#SLICE_ELEMENTS} logits ({@link Scratch#inSlices}) when the
     * inner loss is row-separable, so the standardized rows held in scratch stay bounded on a batch of any size; the
     * sum is the CPU backend's, bit for bit. An inner loss that looks across rows gets the whole range at once.
     */
    private LossResult sliced(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        return Scratch.inSlices(from, to, batch.classes(), gradOffset, inner.rowSeparable(),
                (a, b, off) -> rows(batch, a, b, gradOut, off, upstream));
    }

    /**
     * Rows {@code [from, to)}, their gradient from {@code gradOut[gradOffset]} on; the arguments are checked. The
     * standardized rows, the inner loss's gradient of them and the rows' deviations are the thread's scratch, held
     * while the inner loss runs (which takes its own from the next level).
     */
    private LossResult rows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        final int n = to - from;
        final int v = batch.classes();
        final float[] s = batch.student();
        final float[] t = batch.teacher();
        final boolean probs = batch.teacherValues() == TeacherValues.PROBABILITIES;
        try (Scratch sc = Scratch.acquire()) {
            final float[] zs = sc.floats(0, n * v);
            final float[] zt = sc.floats(1, n * v);
            final float[] g = sc.floats(2, n * v);
            final double[] sigma = sc.doubles(0, n);
            final double[] rowBuf = sc.doubles(1, v);
            for (int j = 0; j < n; j++) {
                final int r = from + j;
                final int zoff = j * v;
                if (!batch.counts(r)) {
                    java.util.Arrays.fill(zs, zoff, zoff + v, 0f); // zeros, as in a fresh array; the inner loss ignores the row
                    java.util.Arrays.fill(zt, zoff, zoff + v, 0f);
                    continue;
                }
                final int off = r * v;
                for (int i = 0; i < v; i++) {
                    rowBuf[i] = s[off + i];
                }
                RowMath.requireFiniteLogits("student logit", s, off, v, r);
                sigma[j] = standardize(rowBuf, v, zs, zoff);
                if (probs) {
                    RowMath.requireProbabilities(t, off, v, r);
                } else {
                    RowMath.requireTeacherLogits(t, off, v, r);
                }
                for (int i = 0; i < v; i++) {
                    float x = t[off + i];
                    rowBuf[i] = probs ? Math.log(x) : x; // zero mass: -inf, kept out of the row's mean and deviation
                }
                standardize(rowBuf, v, zt, zoff);
            }
            // the standardized rows in one call, as a batch of their own (the whole batch: derive); its row j is row
            // from + j of this batch, which is the row an error about it names
            LossResult std;
            try {
                std = soft.compute(batch.deriveRows(from, to, zs, zt), g, upstream);
            } catch (BadRowException e) {
                throw from == 0 ? e : e.atRow(from + e.row());
            }
            // cross-entropy of the raw rows, straight into gradOut: each element is read back below before it is overwritten
            LossResult ce = hard == null ? null : hard.computeRows(batch, from, to, gradOut, gradOffset, upstream);
            final double softWeight = 1 - hardWeight;
            for (int j = 0; j < n; j++) {
                final int r = from + j;
                final int off = r * v;
                final int zoff = j * v;
                final int goff = gradOffset + zoff;
                if (!batch.counts(r)) {
                    java.util.Arrays.fill(gradOut, goff, goff + v, 0f);
                    continue;
                }
                if (v == 1) { // the standardized row is constant 0
                    for (int i = 0; i < v; i++) {
                        gradOut[goff + i] = ce == null ? 0f : (float) (hardWeight * gradOut[goff + i]);
                    }
                    continue;
                }
                final double sd = sigma[j];
                final double d = Math.max(sd, SD_FLOOR) + EPS;
                double mean = 0;
                double mx = 0;
                for (int i = 0; i < v; i++) {
                    mean += g[zoff + i];
                    mx += s[off + i];
                }
                mean /= v;
                mx /= v;
                double k2 = 0.0; // below the floor d does not depend on x
                if (sd >= SD_FLOOR) {
                    double gc = 0;
                    for (int i = 0; i < v; i++) {
                        gc += g[zoff + i] * (s[off + i] - mx);
                    }
                    k2 = gc / (d * d * (v - 1) * sd);
                }
                for (int i = 0; i < v; i++) {
                    double x = softWeight * ((g[zoff + i] - mean) / d - (s[off + i] - mx) * k2);
                    if (ce != null) {
                        x += hardWeight * gradOut[goff + i]; // the raw cross-entropy's gradient of this element
                    }
                    gradOut[goff + i] = (float) x;
                }
            }
            Map<String, Double> terms = new LinkedHashMap<>();
            double value = ce == null ? std.value() : softWeight * std.value() + hardWeight * ce.value();
            terms.put(NAME, value);
            terms.putAll(std.terms());
            if (ce != null) {
                terms.put(CrossEntropy.NAME, ce.value());
            }
            return new LossResult(value, std.rows(), terms);
        }
    }

    /**
     * Writes the standardized row {@code x[0, v)}    /**
     * Writes the standardized row {@code x[0, v)}, {@code (x - mean) / (max(sd, SD_FLOOR) + EPS)}, into
     * {@code out[off, off + v)}; returns its unbiased standard deviation {@code sd}. Mean and deviation are over
     * the finite entries ({@code -inf} ones, zero mass, stay {@code -inf}); with one finite entry it becomes 0.
     */
    private static double standardize(double[] x, int v, float[] out, int off) {
        int n = 0;
        double mean = 0;
        for (int i = 0; i < v; i++) {
            if (x[i] != Double.NEGATIVE_INFINITY) {
                mean += x[i];
                n++;
            }
        }
        if (n == 1) {
            for (int i = 0; i < v; i++) {
                out[off + i] = x[i] == Double.NEGATIVE_INFINITY ? Float.NEGATIVE_INFINITY : 0f;
            }
            return 0;
        }
        mean /= n;
        double ss = 0;
        for (int i = 0; i < v; i++) {
            if (x[i] != Double.NEGATIVE_INFINITY) {
                double c = x[i] - mean;
                ss += c * c;
            }
        }
        double sd = Math.sqrt(ss / (n - 1));
        double inv = 1.0 / (Math.max(sd, SD_FLOOR) + EPS);
        for (int i = 0; i < v; i++) {
            out[off + i] = (float) ((x[i] - mean) * inv); // -inf stays -inf
        }
        return sd;
    }
}
