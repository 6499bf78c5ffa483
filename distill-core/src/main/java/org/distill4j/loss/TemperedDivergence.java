package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Shared machinery of the losses that compare the teacher's and the student's distributions at a
 * temperature {@code T}: {@code p = softmax(t / T)}, {@code q = softmax(s / T)} (log-probabilities
 * kept exactly in double, so neither underflow nor extreme logits cause trouble), a divergence
 * {@code D(p, q)} per row, the value {@code T^2 * D} reduced over counted rows, and the gradient
 * {@code dLoss/ds = T * dD/dz} with {@code z = s / T}.
 *
 * <p>Subclasses implement one row: the divergence and {@code dD/dz}. Where {@code D} is written in
 * terms of {@code q}, {@link #softmaxChain} turns {@code g = dD/dq} into {@code dD/dz}.
 *
 * <p>Teacher classes of zero mass (logit {@code -Infinity}, probability 0) have {@code log p = -inf} and
 * {@code p = 0}; the divergences that stay finite there use them as they are. Those that do not (reverse
 * KL) say so with {@link #floorsTeacher()}: their teacher log-probabilities (at T = 1) are first raised to
 * at least {@link ReverseKl#TEACHER_LOG_FLOOR}.
 */
abstract class TemperedDivergence implements LogitLoss, TemperatureScaled {
    /** The temperature {@code T}: finite and at least {@code 2^-1022} (checked by the constructor); see {@link #temperature()}. */
    protected final double temperature;
    /** How the per-row values are combined, never null; see {@link #reduction()}. */
    protected final Reduction reduction;

    TemperedDivergence(double temperature, Reduction reduction) {
        RowMath.requireTemperature(name(), temperature); // name() is each subclass's constant
        this.temperature = temperature;
        this.reduction = Objects.requireNonNull(reduction, "reduction");
    }

    /** One row's distributions; arrays are valid on {@code [0, v)} (they may be longer: scratch rows). */
    static final class Row {
        int index;
        int v;
        int label = -1;
        double[] logP;
        double[] p;
        double[] logQ;
        double[] q;
        private int[] indices;
        private double[] extra;

        /** An int array of at least {@code v} entries for the row's own use, allocated once per call, not cleared. */
        int[] indices() {
            if (indices == null || indices.length < v) {
                indices = new int[v];
            }
            return indices;
        }

        /** A double array of at least {@code v} entries for the row's own use, allocated once per call, not cleared. */
        double[] extra() {
            if (extra == null || extra.length < v) {
                extra = new double[v];
            }
            return extra;
        }
    }

    /**
     * The row's divergence {@code D} (before the {@code T^2} factor); writes {@code dD/dz} into
     * {@code dz[0, v)} and, when the loss has {@link #partNames()}, each part's value into {@code parts}.
     */
    abstract double row(Row r, double[] dz, double[] parts);

    /**
     * Whether the teacher's log-probabilities at T = 1 are floored at {@link ReverseKl#TEACHER_LOG_FLOOR} before tempering
     * (for divergences that are infinite where the teacher has no mass); false unless a loss says so.
     */
    boolean floorsTeacher() {
        return false;
    }

    /** Names of extra components reported in {@link LossResult#terms()} (each times T^2, reduced). */
    String[] partNames() {
        return new String[0];
    }

    @Override
    public double temperature() {
        return temperature;
    }

    /** True: each row's divergence (and its parts) depends on that row only. */
    @Override
    public boolean rowSeparable() {
        return true;
    }

    @Override
    public Reduction reduction() {
        return reduction;
    }

    @Override
    public boolean needsTeacher() {
        return true;
    }

    @Override
    public boolean needsLabels() {
        return false;
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("temperature", temperature);
        m.put("reduction", reduction.name().toLowerCase());
        return m;
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
        final float[] t = batch.teacher();
        final boolean probs = batch.teacherValues() == TeacherValues.PROBABILITIES;
        final int[] labels = batch.labels();
        final double w = batch.rowWeight(reduction);
        final double scale = w * upstream * temperature; // T^2 * (1 / T) from z = s / T
        final double invT = 1.0 / temperature;
        String[] partNames = partNames();
        double[] parts = new double[partNames.length];
        double[] partSums = new double[partNames.length];
        final boolean floor = floorsTeacher();
        double total = 0;
        try (Scratch sc = Scratch.acquire()) { // the thread's rows, reused by every row and call (valid on [0, v))
            Row row = new Row();
            row.v = v;
            row.logP = sc.doubles(0, v);
            row.p = sc.doubles(1, v);
            row.logQ = sc.doubles(2, v);
            row.q = sc.doubles(3, v);
            double[] dz = sc.doubles(4, v);
            for (int r = from; r < to; r++) {
                final int goff = gradOffset + (r - from) * v;
                if (!RowMath.beginRow(batch, gradOut, goff, r, true)) {
                    continue;
                }
                final int off = r * v;
                tempered(s, off, v, false, invT, row.logQ, row.q);
                tempered(t, off, v, probs, invT, row.logP, row.p, floor);
                row.index = r;
                row.label = labels == null ? -1 : labels[r];
                total += row(row, dz, parts);
                for (int j = 0; j < parts.length; j++) {
                    partSums[j] += parts[j];
                }
                for (int i = 0; i < v; i++) {
                    gradOut[goff + i] = (float) (scale * dz[i]);
                }
            }
        }
        final double t2w = temperature * temperature * w;
        final double value = total * t2w;
        Map<String, Double> terms = new LinkedHashMap<>();
        terms.put(name(), value);
        for (int j = 0; j < parts.length; j++) {
            terms.put(partNames[j], partSums[j] * t2w);
        }
        return new LossResult(value, batch.countedRows(from, to), terms);
    }

    /**
     * Log-probabilities and probabilities of {@code softmax(x / T)} for one row; with
     * {@code logOfProbabilities} the row holds probabilities and {@code log x} is used as logits
     * (zeros give {@code -inf} and probability 0).
     */
    static void tempered(float[] x, int off, int v, boolean logOfProbabilities, double invT, double[] logOut, double[] pOut) {
        tempered(x, off, v, logOfProbabilities, invT, logOut, pOut, false);
    }

    /**
     * {@link #tempered}, with {@code floor}: each log-probability at T = 1 raised to at least {@link ReverseKl#TEACHER_LOG_FLOOR}
     * first (zero probabilities and {@code -inf} logits included). Rows with nothing below the floor are unchanged.
     */
    static void tempered(float[] x, int off, int v, boolean logOfProbabilities, double invT, double[] logOut, double[] pOut,
                         boolean floor) {
        double m = Double.NEGATIVE_INFINITY;
        double min = Double.POSITIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            double a = logOfProbabilities ? Math.log(x[off + i]) : x[off + i];
            logOut[i] = a;
            if (a > m) {
                m = a;
            }
            if (a < min) {
                min = a;
            }
        }
        // log p_i = a_i - logsumexp(a) >= a_i - m - log v: no element can be below the floor unless min is
        if (floor && min - m < ReverseKl.TEACHER_LOG_FLOOR + Math.log(v)) {
            double z1 = 0;
            for (int i = 0; i < v; i++) {
                z1 += LossMath.exp(logOut[i] - m);
            }
            final double lowest = m + Math.log(z1) + ReverseKl.TEACHER_LOG_FLOOR; // below m: the maximum is never raised
            for (int i = 0; i < v; i++) {
                if (logOut[i] < lowest) {
                    logOut[i] = lowest;
                }
            }
        }
        double z = 0;
        for (int i = 0; i < v; i++) {
            double a = (logOut[i] - m) * invT;
            logOut[i] = a;
            double e = LossMath.exp(a);
            pOut[i] = e;
            z += e;
        }
        final double logZ = Math.log(z);
        final double invZ = 1.0 / z;
        for (int i = 0; i < v; i++) {
            logOut[i] -= logZ;
            pOut[i] *= invZ;
        }
    }

    /** {@code dz_j = q_j (g_j - sum_i q_i g_i)}: the chain rule through {@code q = softmax(z)}. */
    static void softmaxChain(double[] q, double[] g, double[] dz, int v) {
        double mean = 0;
        for (int i = 0; i < v; i++) {
            mean += q[i] * g[i];
        }
        for (int i = 0; i < v; i++) {
            dz[i] = q[i] * (g[i] - mean);
        }
    }

    /**
     * {@code log(exp(a) + exp(b))}, exact for infinite arguments. The larger argument's term, {@code exp(0)}, is exactly 1,
     * so one exp per call: the same bits as {@code m + log(exp(a - m) + exp(b - m))} with {@code m = max(a, b)}.
     */
    static double logAddExp(double a, double b) {
        if (a == Double.NEGATIVE_INFINITY) {
            return b;
        }
        if (b == Double.NEGATIVE_INFINITY) {
            return a;
        }
        return Math.max(a, b) + Math.log(1.0 + LossMath.exp(-Math.abs(a - b)));
    }

    /** Forward KL(p || q) of a row and {@code dz = q - p}. */
    static double forwardKl(Row r, double[] dz) {
        double kl = 0;
        for (int i = 0; i < r.v; i++) {
            if (r.p[i] > 0) {
                kl += r.p[i] * (r.logP[i] - r.logQ[i]);
            }
            dz[i] = r.q[i] - r.p[i];
        }
        return kl;
    }

    /**
     * Reverse KL(q || p) of a row and its {@code dz}. The teacher's log-probabilities must be finite: losses that call
     * it {@linkplain #floorsTeacher floor} them.
     */
    static double reverseKl(Row r, double[] dz) {
        return reverseKl(r, r.logP, dz);
    }

    /** {@link #reverseKl(Row, double[])} against the teacher log-probabilities {@code logP} instead of the row's. */
    static double reverseKl(Row r, double[] logP, double[] dz) {
        double kl = 0;
        for (int i = 0; i < r.v; i++) {
            if (r.q[i] > 0) {
                double g = r.logQ[i] - logP[i];
                kl += r.q[i] * g;
                dz[i] = g;
            } else {
                dz[i] = 0;
            }
        }
        softmaxChain(r.q, dz, dz, r.v);
        return kl;
    }
}
