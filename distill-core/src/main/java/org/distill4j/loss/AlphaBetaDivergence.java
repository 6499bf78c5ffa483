package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The alpha-beta divergence of ABKD (G. Wang, Z. Yang, Z. Wang, S. Wang, Q. Xu, Q. Huang, "ABKD: Pursuing a Proper
 * Allocation of the Probability Mass in Knowledge Distillation via alpha-beta-Divergence", ICML 2025). Registered as
 * {@code abkd}.
 *
 * <pre>
 *   loss = T^2 * D_AB(p || q),
 *   D_AB = -1 / (alpha beta) * sum_i (p_i^alpha q_i^beta - alpha / (alpha + beta) p_i^(alpha + beta) - beta / (alpha + beta) q_i^(alpha + beta))
 * </pre>
 * with {@code p = softmax(t/T)} (teacher) and {@code q = softmax(s/T)} (student). Every class's term is at least 0
 * (weighted AM-GM), and 0 only where {@code p_i = q_i}. The family reaches forward KL as {@code alpha = 1, beta -> 0}
 * (use {@code kd} with alpha 0 there) and reverse KL as {@code alpha -> 0, beta = 1} ({@code reverse-kl}); in between,
 * alpha sets how strongly the student is pulled to the teacher's large probabilities and beta how strongly it is pushed
 * off where the teacher has little, which the paper shows forward and reverse KL fix at two extremes. Both must be
 * above 0 here; the defaults, alpha 0.8 and beta 0.3, are the authors' recipe for image classification (their
 * language-model runs use other pairs).
 *
 * <p>Gradient with respect to the student logits: {@code T * (h_j - q_j * sum_i h_i)} with
 * {@code h_i = (q_i^(alpha + beta) - p_i^alpha q_i^beta) / alpha}; every power is taken as {@code exp} of a multiple of a
 * log-probability, so extreme logits stay finite. Each class's term is computed as
 * {@code c (expm1(beta x) / beta + expm1(-alpha x) / alpha) / (alpha + beta)} with {@code c = p^alpha q^beta} and
 * {@code x = log p - log q}, so that neither a student close to the teacher nor a small alpha or beta loses the value
 * to cancellation (the bracket as written subtracts terms of order 1 and divides by {@code alpha beta}). Teacher
 * classes of zero mass need no floor: their terms are {@code q_i^(alpha + beta) / (alpha (alpha + beta))}.
 */
public final class AlphaBetaDivergence extends TemperedDivergence {
    /** The registered name. */
    public static final String NAME = "abkd";
    /** The authors' alpha for image classification, 0.8: the power of the teacher's probabilities. */
    public static final double DEFAULT_ALPHA = 0.8;
    /** The authors' beta for image classification, 0.3: the power of the student's probabilities. */
    public static final double DEFAULT_BETA = 0.3;

    private final double alpha;
    private final double beta;

    /**
     * @param alpha       the power of the teacher's probabilities, above 0
     * @param beta        the power of the student's probabilities, above 0
     * @param temperature softmax temperature {@code T > 0} on both sides
     */
    public AlphaBetaDivergence(double alpha, double beta, double temperature) {
        this(alpha, beta, temperature, Reduction.MEAN);
    }

    /**
     * The alpha-beta divergence with powers {@code alpha} and {@code beta} (each finite and above 0), the temperature
     * {@code T} (finite, {@code > 0}) and the reduction over rows ({@link Reduction#MEAN} in the three-argument
     * constructor).
     *
     * @throws IllegalArgumentException if the temperature, {@code alpha} or {@code beta} is not a finite number above 0
     *                                  (at 0, the message names the loss to use for that limit instead)
     * @throws NullPointerException     if {@code reduction} is null
     */
    public AlphaBetaDivergence(double alpha, double beta, double temperature, Reduction reduction) {
        super(temperature, reduction);
        requirePositive("alpha", alpha, "alpha -> 0 with beta 1 is reverse KL: use reverse-kl");
        requirePositive("beta", beta, "beta -> 0 with alpha 1 is forward KL: use kd with alpha 0");
        this.alpha = alpha;
        this.beta = beta;
    }

    private static void requirePositive(String what, double x, String limit) {
        if (!(x > 0 && x < Double.POSITIVE_INFINITY)) { // NaN too
            throw new IllegalArgumentException(NAME + " " + what + " must be above 0 and finite, got " + x
                    + (x == 0 ? " (" + limit + ")" : ""));
        }
    }

    @Override
    public String name() {
        return NAME;
    }

    /** The power of the teacher's probabilities, above 0: how strongly the student is pulled to the teacher's large ones. */
    public double alpha() {
        return alpha;
    }

    /** The power of the student's probabilities, above 0: how strongly the student is pushed off where the teacher has little. */
    public double beta() {
        return beta;
    }

    @Override
    public AlphaBetaDivergence withTemperature(double t) {
        return new AlphaBetaDivergence(alpha, beta, t, reduction);
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("alpha", alpha);
        m.put("beta", beta);
        m.putAll(super.settings());
        return m;
    }

    @Override
    double row(Row r, double[] dz, double[] parts) {
        final int v = r.v;
        final double s = alpha + beta;
        double d = 0;
        double hSum = 0;
        for (int i = 0; i < v; i++) {
            double lp = r.logP[i]; // -inf where the teacher has no mass: its powers are 0
            double lq = r.logQ[i];
            double term;
            double h;
            double x = lp - lq; // p^(a+b) = c e^(b x), q^(a+b) = c e^(-a x) with c = p^a q^b
            if (lp == Double.NEGATIVE_INFINITY || beta * x > EXP_LIMIT || -alpha * x > EXP_LIMIT) {
                // no cancellation to fear: the powers as they are (c e^(b x) or c e^(-a x) would overflow)
                double cross = LossMath.exp(alpha * lp + beta * lq);
                double qs = LossMath.exp(s * lq);
                term = (alpha * LossMath.exp(s * lp) + beta * qs - s * cross) / (s * alpha * beta);
                h = (qs - cross) / alpha;
            } else {
                // the bracket's terms nearly cancel where p is close to q: in expm1 form they do not
                double c = LossMath.exp(alpha * lp + beta * lq);
                double em = expm1(-alpha * x);
                term = c * (expm1(beta * x) / beta + em / alpha) / s;
                h = c * em / alpha;
            }
            d += term;
            dz[i] = h;
            hSum += h;
        }
        for (int i = 0; i < v; i++) {
            dz[i] -= r.q[i] * hSum;
        }
        return d;
    }

    /**
     * {@code e^y - 1}: {@code LossMath.exp(y) - 1} where that loses at most a few ulps ({@code |y| >= 1/2}: the difference is at
     * least 0.39 of the larger term), {@code Math.expm1} near 0, where it would lose them all. Math.expm1 is no JIT
     * intrinsic: abkd took 3.2 times kd's time at V = 32000 with expm1 throughout (cpu-losses-2026-11-23).
     */
    static double expm1(double y) {
        return Math.abs(y) >= 0.5 ? LossMath.exp(y) - 1 : Math.expm1(y);
    }

    /** Below {@code log(Double.MAX_VALUE)} (709.8): where a scaled log ratio passes it, the direct form is used. */
    private static final double EXP_LIMIT = 700;
}
