package org.distill4j.loss;

/**
 * Reverse KL: {@code T^2 * KL(q || p)} with {@code q = softmax(s/T)} (student),
 * {@code p = softmax(t/T)} (teacher). Registered as {@code reverse-kl}.
 *
 * <p>Mode-seeking: the student is pushed to put its mass where the teacher's is high rather than to
 * cover every teacher mode, which suits small students of large generative teachers (Y. Gu, L. Dong,
 * F. Wei, M. Huang, "MiniLLM: Knowledge Distillation of Large Language Models", ICLR 2024). Gradient:
 * {@code T * q_j (log q_j - log p_j - KL(q || p))}. A teacher probability of exactly 0 where the
 * student has mass makes the divergence infinite and is reported as an error.
 */
public final class ReverseKl extends TemperedDivergence {
    /** The registered name. */
    public static final String NAME = "reverse-kl";

    /** @param temperature softmax temperature {@code T > 0} on both sides */
    public ReverseKl(double temperature) {
        this(temperature, Reduction.MEAN);
    }

    public ReverseKl(double temperature, Reduction reduction) {
        super(temperature, reduction);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public ReverseKl withTemperature(double t) {
        return new ReverseKl(t, reduction);
    }

    @Override
    double row(Row r, double[] dz, double[] parts) {
        return reverseKl(r, dz, NAME);
    }
}
