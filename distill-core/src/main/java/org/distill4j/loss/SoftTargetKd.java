package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Hinton soft-target knowledge distillation, mixed with hard-label cross-entropy. Registered as
 * {@code kd}.
 *
 * <p>For one row with student logits {@code s}, teacher logits {@code t} and label {@code y}:
 * <pre>
 *   p = softmax(t / T)          (teacher soft targets)
 *   q = softmax(s / T)          (student at the same temperature)
 *   KD = T^2 * KL(p || q) = T^2 * sum_i p_i (log p_i - log q_i)
 *   CE = -log softmax(s)_y      (temperature 1)
 *   loss = alpha * CE + (1 - alpha) * KD
 *   dloss/ds_i = (1 - alpha) * T * (q_i - p_i) + alpha * (softmax(s)_i - [i == y])
 * </pre>
 * The {@code T^2} factor keeps the soft-target gradient's magnitude independent of {@code T}, as
 * recommended in G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network",
 * NIPS 2014 Deep Learning Workshop (arXiv:1503.02531). With {@code alpha = 0} no labels are needed.
 * Teacher rows may be logits or probabilities ({@link TeacherValues}).
 *
 * <p>Implementation: fused per row, no per-row allocation (four scratch rows of {@code V} doubles, the
 * thread's own, reused across calls). One read of both rows finds the maxima, a second accumulates the three log-sum-exps in
 * double and keeps the exponentials, and a third computes the value and writes the gradient together. Any finite logits give finite results (logits of magnitude 1e4 at T = 0.5
 * included): every exponent is taken relative to its row maximum.
 */
public final class SoftTargetKd implements LogitLoss, TemperatureScaled {
    /** The registered name. */
    public static final String NAME = "kd";

    private final double temperature;
    private final double alpha;
    private final Reduction reduction;

    /**
     * @param temperature softmax temperature {@code T > 0} applied to both teacher and student
     * @param alpha       weight of hard-label cross-entropy in {@code [0, 1]}; {@code 1 - alpha} weights KD
     */
    public SoftTargetKd(double temperature, double alpha) {
        this(temperature, alpha, Reduction.MEAN);
    }

    /**
     * Soft-target KD at the temperature {@code T} (finite, {@code > 0}) with the hard-label weight {@code alpha} in
     * [0, 1] and the given reduction over rows ({@link Reduction#MEAN} in the two-argument constructor).
     *
     * @throws IllegalArgumentException if the temperature is not a finite number {@code > 0}, or {@code alpha} is outside
     *                                  [0, 1] or NaN
     * @throws NullPointerException     if {@code reduction} is null
     */
    public SoftTargetKd(double temperature, double alpha, Reduction reduction) {
        RowMath.requireTemperature(NAME, temperature);
        if (!(alpha >= 0 && alpha <= 1)) {
            throw new IllegalArgumentException("kd alpha (hard-label weight) must be in [0, 1], got " + alpha);
        }
        this.temperature = temperature;
        this.alpha = alpha;
        this.reduction = Objects.requireNonNull(reduction, "reduction");
    }

    @Override
    public double temperature() {
        return temperature;
    }

    /** The weight of the hard-label cross-entropy, in [0, 1]; the KD term is weighted {@code 1 - alpha}. 0: no labels needed. */
    public double alpha() {
        return alpha;
    }

    /** The same loss at another temperature (for temperature schedules). */
    @Override
    public SoftTargetKd withTemperature(double t) {
        return new SoftTargetKd(t, alpha, reduction);
    }

    /** The same loss with another hard-label weight (for alpha schedules). */
    public SoftTargetKd withAlpha(double a) {
        return new SoftTargetKd(temperature, a, reduction);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("temperature", temperature);
        m.put("alpha", alpha);
        m.put("reduction", reduction.name().toLowerCase());
        return m;
    }

    @Override
    public boolean needsTeacher() {
        return true;
    }

    @Override
    public boolean needsLabels() {
        return alpha > 0;
    }

    /** True: each row's KL and cross-entropy depend on that row only. */
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
        final float[] t = batch.teacher();
        final boolean probs = batch.teacherValues() == TeacherValues.PROBABILITIES;
        final int[] y = batch.labels();
        final double w = batch.rowWeight(reduction);
        final double scale = w * upstream;
        final double[] rowCe = new double[1];
        double kdSum = 0;
        double ceSum = 0;
        try (Scratch sc = Scratch.acquire()) { // the thread's rows, reused by every row and call
            final double[] es = sc.doubles(0, v);
            final double[] et = sc.doubles(1, v);
            final double[] e1 = sc.doubles(2, v);
            final double[] at = sc.doubles(3, v);
            for (int r = from; r < to; r++) {
                final int goff = gradOffset + (r - from) * v;
                if (!RowMath.beginRow(batch, gradOut, goff, r, true)) {
                    continue;
                }
                final int off = r * v;
                final int label = alpha > 0 ? y[r] : LogitBatch.UNLABELED; // UNLABELED: no CE term in this row
                kdSum += row(s, t, probs, off, v, label, gradOut, goff, scale, rowCe, es, et, e1, at);
                ceSum += rowCe[0];
            }
        }
        final double kd = kdSum * w;
        final double ce = ceSum * w;
        Map<String, Double> terms = new LinkedHashMap<>();
        terms.put(NAME, kd);
        if (alpha > 0) {
            terms.put(CrossEntropy.NAME, ce);
        }
        return new LossResult(alpha * ce + (1 - alpha) * kd, batch.countedRows(from, to), terms);
    }

    /** Largest temperature at which the CE term's {@code exp(ds)} is taken as {@code exp(ds / T)^T}. */
    static final int MAX_POWER = 16;

    /**
     * The temperature as an exponent for {@link #pow}: T itself when it is an integer in [2, {@link #MAX_POWER}], else 0
     * (the CE term then takes its own exp). {@code exp(ds / T)^T} differs from {@code exp(ds)} by a few ulps of a double
     * (T times the exp's 0.54 ulp, plus one rounding per product), far below the float gradient's resolution; where the
     * power underflows to a subnormal or zero, so does {@code exp(ds)}, against the row's largest term {@code exp(0) = 1}.
     */
    static int integerPower(double temperature) {
        return temperature >= 2 && temperature <= MAX_POWER && temperature == Math.rint(temperature) ? (int) temperature : 0;
    }

    /** {@code x^n} for n >= 1 by repeated squaring (at most 2 log2(n) products). */
    static double pow(double x, int n) {
        double r = (n & 1) != 0 ? x : 1.0;
        double b = x;
        for (int k = n >>> 1; k != 0; k >>>= 1) {
            b *= b;
            if ((k & 1) != 0) {
                r *= b;
            }
        }
        return r;
    }

    /** Teacher log-value of one element: the logit, or log of the probability. */
    private static double teacherLog(float[] t, int i, boolean probs) {
        return probs ? Math.log(t[i]) : t[i];
    }

    /**
     * One fused row: returns {@code T^2 KL(p||q)} of the row, stores the row's CE in {@code ceOut[0]}
     * (0 when alpha is 0) and writes the weighted, scaled gradient to {@code grad[gOff, gOff + v)}. Pass 2 keeps the three exponentials
     * ({@code eS}: student at T, {@code eT}: teacher at T, {@code e1}: student at 1) and the teacher's scaled
     * log-values ({@code aT}) in scratch rows of at least {@code v} doubles, so pass 3 needs no exp or log
     * (3 exps per element instead of 6).
     */
    private double row(float[] s, float[] t, boolean probs, int off, int v, int label, float[] grad, int gOff, double scale,
                       double[] ceOut, double[] eS, double[] eT, double[] e1, double[] aT) {
        final double invT = 1.0 / temperature;
        final boolean ce = alpha > 0 && label >= 0; // the row's CE term: alpha > 0 and the row has a label
        // pass 1: maxima (log is monotonic, so max of log p = log of max p)
        final double ms = RowMath.max(s, off, v);
        final double mt = probs ? Math.log(RowMath.max(t, off, v)) : RowMath.max(t, off, v);
        // pass 2: log-sum-exps, keeping each exponential
        final boolean needSoftmax1 = ce && temperature != 1.0;
        final int power = integerPower(temperature);
        double zs = 0;
        double zt = 0;
        double z1 = 0;
        for (int i = 0; i < v; i++) {
            final double ds = s[off + i] - ms;
            final double a = (teacherLog(t, off + i, probs) - mt) * invT;
            final double es = LossMath.exp(ds * invT);
            final double et = LossMath.exp(a);
            aT[i] = a;
            eS[i] = es;
            eT[i] = et;
            zs += es;
            zt += et;
            if (needSoftmax1) {
                // exp(ds) = exp(ds / T)^T: at an integer T, a few products instead of a third exp
                final double x = power > 0 ? pow(es, power) : LossMath.exp(ds);
                e1[i] = x;
                z1 += x;
            }
        }
        final double logZs = Math.log(zs);
        final double logZt = Math.log(zt);
        final double logZ1 = needSoftmax1 ? Math.log(z1) : logZs;
        final double invZs = 1.0 / zs;
        final double invZt = 1.0 / zt;
        final double invZ1 = needSoftmax1 ? 1.0 / z1 : invZs;
        // pass 3: value and gradient together
        final double kdWeight = (1 - alpha) * temperature;
        double kl = 0;
        for (int i = 0; i < v; i++) {
            final double ds = s[off + i] - ms;
            final double logP = aT[i] - logZt;
            final double logQ = ds * invT - logZs;
            final double p = eT[i] * invZt;
            final double q = eS[i] * invZs;
            if (p > 0) {
                kl += p * (logP - logQ);
            }
            double g = kdWeight * (q - p);
            if (ce) {
                g += alpha * ((needSoftmax1 ? e1[i] * invZ1 : q) - (i == label ? 1.0 : 0.0));
            }
            grad[gOff + i] = (float) (scale * g);
        }
        ceOut[0] = ce ? logZ1 - (s[off + label] - ms) : 0.0;
        return temperature * temperature * kl;
    }
}
