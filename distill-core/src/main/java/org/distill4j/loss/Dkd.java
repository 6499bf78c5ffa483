package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Decoupled knowledge distillation (B. Zhao, Q. Cui, R. Song, Y. Qiu, J. Liang, "Decoupled Knowledge
 * Distillation", CVPR 2022). Registered as {@code dkd}.
 *
 * <p>With the ground-truth class {@code y} of a row, {@code p = softmax(t/T)}, {@code q = softmax(s/T)}:
 * <pre>
 *   b = [p_y, 1 - p_y],  c = [q_y, 1 - q_y]                      (target vs the rest)
 *   TCKD = KL(b || c)
 *   p^_j = p_j / (1 - p_y),  q^_j = q_j / (1 - q_y)   for j != y  (the non-target distributions)
 *   NCKD = KL(p^ || q^)
 *   loss = warm * T^2 * (alpha * TCKD + beta * NCKD),   warm = min(epoch / warmup, 1)
 * </pre>
 * Classical KD recombines as {@code KL(p || q) = TCKD + (1 - p_y) * NCKD}; DKD frees the NCKD weight
 * from the teacher's confidence. Defaults follow the paper's CIFAR-100 setting: alpha 1, beta 8, T 4,
 * 20 warm-up epochs (epoch counted from 1, as in the authors' code). The paper adds hard-label
 * cross-entropy separately: combine with {@code ce} in a {@link WeightedSum}. Needs labels; rows whose
 * teacher puts no mass outside {@code y} have NCKD = 0.
 *
 * <p>Gradient with respect to {@code z = s/T}: TCKD gives {@code q_y - p_y} at {@code y} and
 * {@code q^_j (p_y - q_y)} elsewhere; NCKD gives {@code q^_j - p^_j} for {@code j != y}. The
 * non-target sums are taken as log-sum-exps of the log-probabilities, so a confident row never
 * divides by an underflowed {@code 1 - q_y}.
 */
public final class Dkd extends TemperedDivergence implements EpochAware {
    /** The registered name. */
    public static final String NAME = "dkd";

    private final double alpha;
    private final double beta;
    private final int warmupEpochs;
    private final double warm;

    /**
     * @param alpha        TCKD weight (paper: 1)
     * @param beta         NCKD weight (paper: 8 on CIFAR-100, 0.5 on ImageNet)
     * @param temperature  T (paper: 4)
     * @param warmupEpochs epochs over which the loss weight rises linearly to 1 (paper: 20); 0 for none
     */
    public Dkd(double alpha, double beta, double temperature, int warmupEpochs) {
        this(alpha, beta, temperature, warmupEpochs, 1.0, Reduction.MEAN);
    }

    private Dkd(double alpha, double beta, double temperature, int warmupEpochs, double warm, Reduction reduction) {
        super(temperature, reduction);
        if (!(alpha >= 0) || !(beta >= 0) || Double.isInfinite(alpha) || Double.isInfinite(beta)) {
            throw new IllegalArgumentException("dkd alpha and beta must be finite and >= 0, got " + alpha + " and " + beta);
        }
        if (warmupEpochs < 0) {
            throw new IllegalArgumentException("dkd warmup must be >= 0 epochs, got " + warmupEpochs);
        }
        this.alpha = alpha;
        this.beta = beta;
        this.warmupEpochs = warmupEpochs;
        this.warm = warm;
    }

    /**
     * The same loss (weights, temperature, warm-up and the warm-up factor in use) with the reduction {@code r} over
     * rows; the public constructor gives {@link Reduction#MEAN}. This loss is unchanged.
     *
     * @throws NullPointerException if {@code r} is null
     */
    public Dkd withReduction(Reduction r) {
        return new Dkd(alpha, beta, temperature, warmupEpochs, warm, r);
    }

    /** The warm-up factor in use (1 outside training or after the warm-up). */
    public double warmFactor() {
        return warm;
    }

    @Override
    public Dkd atEpoch(int epoch, int epochs) {
        double f = warmupEpochs == 0 ? 1.0 : Math.min((epoch + 1) / (double) warmupEpochs, 1.0);
        return new Dkd(alpha, beta, temperature, warmupEpochs, f, reduction);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public boolean needsLabels() {
        return true;
    }

    /** False: TCKD and NCKD split each row at its label's class. */
    @Override
    public boolean acceptsUnlabeledRows() {
        return false;
    }

    @Override
    public Dkd withTemperature(double t) {
        return new Dkd(alpha, beta, t, warmupEpochs, warm, reduction);
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("alpha", alpha);
        m.put("beta", beta);
        m.put("warmup", warmupEpochs);
        m.putAll(super.settings());
        return m;
    }

    @Override
    String[] partNames() {
        return new String[]{"tckd", "nckd"};
    }

    @Override
    double row(Row r, double[] dz, double[] parts) {
        final int v = r.v;
        final int y = r.label;
        if (y < 0) {
            throw new BadRowException("row ", r.index, " has no hard label (UNLABELED): dkd splits each row at its label's class,"
                    + " so every row it trains on needs one (for unlabeled rows use kd, reverse-kl, gjsd or another loss without labels)");
        }
        if (v == 1) {
            dz[0] = 0;
            parts[0] = 0;
            parts[1] = 0;
            return 0;
        }
        // non-target log masses: log(1 - p_y), log(1 - q_y)
        double mp = Double.NEGATIVE_INFINITY;
        double mq = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < v; j++) {
            if (j != y) {
                mp = Math.max(mp, r.logP[j]);
                mq = Math.max(mq, r.logQ[j]);
            }
        }
        double sp = 0;
        double sq = 0;
        for (int j = 0; j < v; j++) {
            if (j != y) {
                sp += mp == Double.NEGATIVE_INFINITY ? 0 : LossMath.exp(r.logP[j] - mp);
                sq += LossMath.exp(r.logQ[j] - mq);
            }
        }
        final double logRestP = mp == Double.NEGATIVE_INFINITY ? Double.NEGATIVE_INFINITY : mp + Math.log(sp);
        final double logRestQ = mq + Math.log(sq);
        final double b1 = r.p[y];
        final double b2 = LossMath.exp(logRestP);
        final double qy = r.q[y];
        double tckd = 0;
        if (b1 > 0) {
            tckd += b1 * (r.logP[y] - r.logQ[y]);
        }
        if (b2 > 0) {
            tckd += b2 * (logRestP - logRestQ);
        }
        double nckd = 0;
        dz[y] = alpha * (qy - b1);
        for (int j = 0; j < v; j++) {
            if (j == y) {
                continue;
            }
            final double logQhat = r.logQ[j] - logRestQ;
            final double qhat = LossMath.exp(logQhat);
            double phat = 0;
            if (logRestP != Double.NEGATIVE_INFINITY) {
                final double logPhat = r.logP[j] - logRestP;
                phat = LossMath.exp(logPhat);
                if (phat > 0) {
                    nckd += phat * (logPhat - logQhat);
                }
            }
            dz[j] = alpha * qhat * (b1 - qy) + (logRestP == Double.NEGATIVE_INFINITY ? 0 : beta * (qhat - phat));
        }
        for (int j = 0; j < v; j++) {
            dz[j] *= warm;
        }
        parts[0] = tckd;
        parts[1] = nckd;
        return warm * (alpha * tckd + beta * nckd);
    }
}
