package org.distill4j.loss;

/**
 * Skew forward KL, as in DistiLLM (J. Ko, S. Kim, T. Chen, S.-Y. Yun, "DistiLLM: Towards Streamlined Distillation
 * for Large Language Models", ICML 2024). Registered as {@code skew-kl}.
 *
 * <pre>
 *   m = alpha * p + (1 - alpha) * q
 *   loss = T^2 * KL(p || m)
 * </pre>
 * with {@code p = softmax(t/T)} (teacher), {@code q = softmax(s/T)} (student) and the skew {@code alpha} in [0, 1):
 * {@code alpha = 0} is forward KL ({@code kd} with alpha 0). Mixing a little of the teacher into the student's side
 * bounds the gradient where the student has almost no mass: {@code dKL/dq_i = -(1 - alpha) p_i / m_i}, at most
 * {@code (1 - alpha) / alpha} in size, where plain forward KL's {@code -p_i / q_i} is unbounded; the paper reports
 * faster and steadier training with {@code alpha = 0.1} (its default here). Gradient with respect to the student
 * logits: {@code T * (q_j S - p_j r_j)} with {@code r_j = (1 - alpha) q_j / m_j} and {@code S = sum_i p_i r_i}; every
 * term is computed from log-probabilities, so extreme logits stay finite.
 *
 * <p>With the same mixture weight, {@code gjsd}'s {@code beta * KL(p || m)} part is {@code beta} times this loss, and
 * its other part is {@link SkewReverseKl}'s at skew {@code 1 - beta}. Teacher classes of zero mass are exact: they add
 * nothing to {@code KL(p || m)}.
 */
public final class SkewKl extends SkewDivergence {
    /** The registered name. */
    public static final String NAME = "skew-kl";

    /**
     * @param alpha       the skew: the teacher's weight in the mixture, in [0, 1)
     * @param temperature softmax temperature {@code T > 0} on both sides
     */
    public SkewKl(double alpha, double temperature) {
        this(alpha, temperature, Reduction.MEAN);
    }

    /**
     * The skew divergence with the skew {@code alpha} (the teacher's weight in the mixture) in [0, 1), the temperature
     * {@code T} (finite, {@code > 0}) and the reduction over rows ({@link Reduction#MEAN} in the two-argument constructor).
     *
     * @throws IllegalArgumentException if the temperature is not a finite number {@code > 0}, or {@code alpha} is outside
     *                                  [0, 1) or NaN
     * @throws NullPointerException     if {@code reduction} is null
     */
    public SkewKl(double alpha, double temperature, Reduction reduction) {
        super(alpha, temperature, reduction);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public SkewKl withTemperature(double t) {
        return new SkewKl(alpha, t, reduction);
    }

    @Override
    double row(Row r, double[] dz, double[] parts) {
        if (alpha == 0) {
            return forwardKl(r, dz);
        }
        final double logA = Math.log(alpha);
        final double log1mA = Math.log1p(-alpha);
        double kl = 0;
        double sum = 0; // S = sum_i p_i r_i
        for (int i = 0; i < r.v; i++) {
            if (r.p[i] > 0) {
                double logQ1mA = log1mA + r.logQ[i];
                double logM = logAddExp(logA + r.logP[i], logQ1mA);
                kl += r.p[i] * (r.logP[i] - logM);
                double pr = r.p[i] * LossMath.exp(logQ1mA - logM); // p_i r_i, r_i = (1 - alpha) q_i / m_i in [0, 1]
                dz[i] = -pr;
                sum += pr;
            } else {
                dz[i] = 0; // no teacher mass: q_i's own part comes from S below
            }
        }
        for (int i = 0; i < r.v; i++) {
            dz[i] += r.q[i] * sum;
        }
        return kl;
    }
}
