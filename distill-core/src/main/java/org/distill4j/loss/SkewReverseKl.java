package org.distill4j.loss;

/**
 * Skew reverse KL, as in DistiLLM (J. Ko, S. Kim, T. Chen, S.-Y. Yun, "DistiLLM: Towards Streamlined Distillation
 * for Large Language Models", ICML 2024). Registered as {@code skew-rkl}.
 *
 * <pre>
 *   m = (1 - alpha) * p + alpha * q
 *   loss = T^2 * KL(q || m)
 * </pre>
 * with {@code p = softmax(t/T)} (teacher), {@code q = softmax(s/T)} (student) and the skew {@code alpha} in [0, 1):
 * {@code alpha = 0} is reverse KL ({@code reverse-kl}, mode-seeking), and a little of the student mixed into the
 * teacher's side keeps the loss finite where the teacher has no mass (at most {@code -log alpha} per unit of student
 * mass), so for {@code alpha > 0} no floor is needed. The paper's default, and this one's, is {@code alpha = 0.1}.
 * Gradient: {@code dKL/dq_i = log(q_i / m_i) + 1 - alpha q_i / m_i}, through the softmax at {@code T} (the constant
 * cancels there), times {@code T}.
 *
 * <p>At {@code alpha = 0} teacher classes of zero mass would make the loss infinite, so there the teacher's
 * log-probabilities are floored as {@link ReverseKl} does ({@link ReverseKl#TEACHER_LOG_FLOOR}). With {@code gjsd}'s
 * mixture weight {@code beta = 1 - alpha}, its {@code (1 - beta) * KL(q || m)} part is {@code alpha} times this loss
 * (see {@link SkewKl}).
 */
public final class SkewReverseKl extends SkewDivergence {
    /** The registered name. */
    public static final String NAME = "skew-rkl";

    /**
     * @param alpha       the skew: the student's weight in the mixture, in [0, 1)
     * @param temperature softmax temperature {@code T > 0} on both sides
     */
    public SkewReverseKl(double alpha, double temperature) {
        this(alpha, temperature, Reduction.MEAN);
    }

    /**
     * The skew divergence with the skew {@code alpha} (the student's weight in the mixture) in [0, 1), the temperature
     * {@code T} (finite, {@code > 0}) and the reduction over rows ({@link Reduction#MEAN} in the two-argument constructor).
     *
     * @throws IllegalArgumentException if the temperature is not a finite number {@code > 0}, or {@code alpha} is outside
     *                                  [0, 1) or NaN
     * @throws NullPointerException     if {@code reduction} is null
     */
    public SkewReverseKl(double alpha, double temperature, Reduction reduction) {
        super(alpha, temperature, reduction);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public SkewReverseKl withTemperature(double t) {
        return new SkewReverseKl(alpha, t, reduction);
    }

    /** At alpha = 0, as {@link ReverseKl}. */
    @Override
    boolean floorsTeacher() {
        return alpha == 0;
    }

    @Override
    double row(Row r, double[] dz, double[] parts) {
        if (alpha == 0) {
            return reverseKl(r, dz);
        }
        final double logA = Math.log(alpha);
        final double log1mA = Math.log1p(-alpha);
        double kl = 0;
        for (int i = 0; i < r.v; i++) {
            if (r.q[i] > 0) {
                double logQA = logA + r.logQ[i];
                double logM = logAddExp(log1mA + r.logP[i], logQA);
                double g = r.logQ[i] - logM;
                kl += r.q[i] * g;
                dz[i] = g - LossMath.exp(logQA - logM); // alpha q_i / m_i in [0, 1]; the constant 1 cancels in the chain
            } else {
                dz[i] = 0; // q_i * g_i -> 0 as q_i -> 0
            }
        }
        softmaxChain(r.q, dz, dz, r.v);
        return kl;
    }
}
