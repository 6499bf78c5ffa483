package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Logit standardization (S. Sun, W. Ren, J. Li, R. Wang, X. Cao, "Logit Standardization in Knowledge
 * Distillation", CVPR 2024): before any logit loss, each row of teacher and student logits is
 * z-scored, {@code (x - mean(x)) / (std(x) + 1e-7)} with the unbiased standard deviation (as the
 * authors' code), so the student matches the teacher's relative logit structure rather than its
 * scale. Registered as {@code logit-std}; wraps any dense-teacher loss (default {@code kd}).
 *
 * <p>The inner loss runs on the standardized rows; its gradient is carried back exactly:
 * <pre>
 *   y_i = c_i / d,  c = x - mean(x),  d = std(x) + eps
 *   dL/dx_j = (g_j - mean(g)) / d - c_j * sum_i(g_i c_i) / (d^2 (V - 1) std(x))
 * </pre>
 * where {@code g = dL/dy}. Teacher probabilities are standardized through their logarithm (which
 * differs from the logits by a per-row constant); zero probabilities are rejected. A one-class row
 * standardizes to 0.
 */
public final class LogitStandardization implements LogitLoss, TemperatureScaled, EpochAware {
    /** The registered name. */
    public static final String NAME = "logit-std";
    static final double EPS = 1e-7;

    private final LogitLoss inner;

    public LogitStandardization(LogitLoss inner) {
        this.inner = Objects.requireNonNull(inner, "inner loss");
        if (inner.needsTopK()) {
            throw new IllegalArgumentException("logit-std needs dense teacher logits; it cannot wrap '" + inner.name() + "'");
        }
        if (inner instanceof LogitStandardization) {
            throw new IllegalArgumentException("logit-std cannot wrap itself");
        }
    }

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

    /** As the wrapped loss: standardization is per row. */
    @Override
    public boolean rowSeparable() {
        return inner.rowSeparable();
    }

    @Override
    public Reduction reduction() {
        return inner.reduction();
    }

    @Override
    public double temperature() {
        return inner instanceof TemperatureScaled ts ? ts.temperature() : Double.NaN;
    }

    @Override
    public LogitLoss withTemperature(double t) {
        if (!(inner instanceof TemperatureScaled ts)) {
            throw new IllegalArgumentException("logit-std wraps '" + inner.name() + "', which has no temperature");
        }
        return new LogitStandardization(ts.withTemperature(t));
    }

    @Override
    public LogitLoss atEpoch(int epoch, int epochs) {
        return inner instanceof EpochAware ea ? new LogitStandardization(ea.atEpoch(epoch, epochs)) : this;
    }

    @Override
    public LossResult compute(LogitBatch batch, float[] gradOut, float upstream) {
        checkInputs(batch, gradOut, upstream);
        final int rows = batch.rows();
        final int v = batch.classes();
        final float[] s = batch.student();
        final float[] t = batch.teacher();
        final boolean probs = batch.teacherValues() == TeacherValues.PROBABILITIES;
        float[] zs = new float[s.length];
        float[] zt = new float[t.length];
        double[] rowBuf = new double[v];
        double[] sigma = new double[rows];
        for (int r = 0; r < rows; r++) {
            if (!batch.counts(r)) {
                continue; // stays 0; the inner loss ignores the row
            }
            final int off = r * v;
            for (int i = 0; i < v; i++) {
                rowBuf[i] = s[off + i];
            }
            RowMath.requireFiniteLogits("student logit", s, off, v, r);
            sigma[r] = standardize(rowBuf, v, zs, off);
            for (int i = 0; i < v; i++) {
                float x = t[off + i];
                if (probs && !(x > 0)) {
                    throw new IllegalArgumentException("logit-std: teacher probability at row " + r + ", class " + i + " is " + x
                            + "; standardizing log-probabilities needs every probability > 0 (give the teacher's logits)");
                }
                rowBuf[i] = probs ? Math.log(x) : x;
            }
            if (!probs) {
                RowMath.requireFiniteLogits("teacher logit", t, off, v, r);
            }
            standardize(rowBuf, v, zt, off);
        }
        float[] g = new float[gradOut.length];
        LossResult inner = this.inner.compute(batch.derive(zs, zt), g, upstream);
        for (int r = 0; r < rows; r++) {
            final int off = r * v;
            if (!batch.counts(r) || v == 1) {
                LogitBatch.zeroRow(gradOut, r, v);
                continue;
            }
            final double sd = sigma[r];
            final double d = sd + EPS;
            double mean = 0;
            double mx = 0;
            for (int i = 0; i < v; i++) {
                mean += g[off + i];
                mx += s[off + i];
            }
            mean /= v;
            mx /= v;
            double gc = 0;
            for (int i = 0; i < v; i++) {
                gc += g[off + i] * (s[off + i] - mx);
            }
            final double k2 = sd > 0 ? gc / (d * d * (v - 1) * sd) : 0.0;
            for (int i = 0; i < v; i++) {
                gradOut[off + i] = (float) ((g[off + i] - mean) / d - (s[off + i] - mx) * k2);
            }
        }
        Map<String, Double> terms = new LinkedHashMap<>();
        terms.put(NAME, inner.value());
        terms.putAll(inner.terms());
        return new LossResult(inner.value(), inner.rows(), terms);
    }

    /** Writes the standardized row into {@code out[off, off + v)}; returns its unbiased standard deviation. */
    private static double standardize(double[] x, int v, float[] out, int off) {
        if (v == 1) {
            out[off] = 0f;
            return 0;
        }
        double mean = 0;
        for (int i = 0; i < v; i++) {
            mean += x[i];
        }
        mean /= v;
        double ss = 0;
        for (int i = 0; i < v; i++) {
            double c = x[i] - mean;
            ss += c * c;
        }
        double sd = Math.sqrt(ss / (v - 1));
        double inv = 1.0 / (sd + EPS);
        for (int i = 0; i < v; i++) {
            out[off + i] = (float) ((x[i] - mean) * inv);
        }
        return sd;
    }
}
