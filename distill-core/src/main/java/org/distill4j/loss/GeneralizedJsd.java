package org.distill4j.loss;

import java.util.Map;

/**
 * Generalized Jensen-Shannon divergence with interpolation {@code beta} in [0, 1], as in GKD
 * (R. Agarwal et al., "On-Policy Distillation of Language Models: Learning from Self-Generated
 * Mistakes", ICLR 2024). Registered as {@code gjsd}.
 *
 * <pre>
 *   m = beta * p + (1 - beta) * q
 *   JSD_beta = beta * KL(p || m) + (1 - beta) * KL(q || m)        for 0 &lt; beta &lt; 1
 *   JSD_0 = KL(p || q)   (forward KL)      JSD_1 = KL(q || p)   (reverse KL)
 *   loss = T^2 * JSD_beta
 * </pre>
 * with {@code p = softmax(t/T)} (teacher) and {@code q = softmax(s/T)} (student). As in TRL's
 * implementation the end points are the plain KL divergences: the mixture formula itself tends to
 * {@code beta * KL(p||q)} and {@code (1 - beta) * KL(q||p)} there, so the loss scale jumps at 0 and 1.
 * For the interior, {@code dJSD/dq_i = (1 - beta) log(q_i / m_i)}; {@code log m} is computed with a
 * stable log-add-exp.
 *
 * <p>Teacher classes of zero mass ({@code -Infinity} logits, zero probabilities) are exact for
 * {@code beta < 1}: the mixture keeps {@code m_i = (1 - beta) q_i > 0}. At {@code beta = 1} (reverse KL) they
 * would make the divergence infinite, so there the teacher's log-probabilities are floored as
 * {@link ReverseKl} does ({@link ReverseKl#TEACHER_LOG_FLOOR}).
 */
public final class GeneralizedJsd extends TemperedDivergence {
    /** The registered name. */
    public static final String NAME = "gjsd";

    private final double beta;

    /**
     * @param beta        weight of the teacher in the mixture, in [0, 1]
     * @param temperature softmax temperature {@code T > 0} on both sides
     */
    public GeneralizedJsd(double beta, double temperature) {
        this(beta, temperature, Reduction.MEAN);
    }

    /**
     * The generalized JSD with the teacher's weight {@code beta} in [0, 1] (0 is forward KL, 1 reverse KL), the
     * temperature {@code T} (finite, {@code > 0}) and the reduction over rows ({@link Reduction#MEAN} in the
     * two-argument constructor).
     *
     * @throws IllegalArgumentException if {@code beta} is outside [0, 1] or NaN, or the temperature is not a finite
     *                                  number {@code > 0}
     * @throws NullPointerException     if {@code reduction} is null
     */
    public GeneralizedJsd(double beta, double temperature, Reduction reduction) {
        super(temperature, reduction);
        if (!(beta >= 0 && beta <= 1)) {
            throw new IllegalArgumentException("gjsd beta must be in [0, 1], got " + beta);
        }
        this.beta = beta;
    }

    /** The teacher's weight in the mixture, in [0, 1]: 0 is forward KL, 1 reverse KL. */
    public double beta() {
        return beta;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public GeneralizedJsd withTemperature(double t) {
        return new GeneralizedJsd(beta, t, reduction);
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new java.util.LinkedHashMap<>();
        m.put("beta", beta);
        m.putAll(super.settings());
        return m;
    }

    /** At beta = 1, as {@link ReverseKl}. */
    @Override
    boolean floorsTeacher() {
        return beta == 1;
    }

    @Override
    double row(Row r, double[] dz, double[] parts) {
        if (beta == 0) {
            return forwardKl(r, dz);
        }
        if (beta == 1) {
            return reverseKl(r, dz);
        }
        final double logB = Math.log(beta);
        final double log1mB = Math.log1p(-beta);
        double klP = 0;
        double klQ = 0;
        for (int i = 0; i < r.v; i++) {
            double logM = logAddExp(logB + r.logP[i], log1mB + r.logQ[i]);
            if (r.p[i] > 0) {
                klP += r.p[i] * (r.logP[i] - logM);
            }
            double g = r.logQ[i] - logM;
            if (r.q[i] > 0) {
                klQ += r.q[i] * g;
            }
            dz[i] = (1 - beta) * g;
        }
        softmaxChain(r.q, dz, dz, r.v);
        return beta * klP + (1 - beta) * klQ;
    }
}
