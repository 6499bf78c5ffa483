package org.distill4j.loss;

/**
 * Reverse KL: {@code T^2 * KL(q || p)} with {@code q = softmax(s/T)} (student),
 * {@code p = softmax(t/T)} (teacher). Registered as {@code reverse-kl}.
 *
 * <p>Mode-seeking: the student is pushed to put its mass where the teacher's is high rather than to
 * cover every teacher mode, which suits small students of large generative teachers (Y. Gu, L. Dong,
 * F. Wei, M. Huang, "MiniLLM: Knowledge Distillation of Large Language Models", ICLR 2024). Gradient:
 * {@code T * q_j (log q_j - log p_j - KL(q || p))}.
 *
 * <p><b>Classes the teacher gives no mass</b> ({@code -Infinity} logits of a masked or padded vocabulary,
 * e.g. {@code VocabularyAlignment} PAD, or zero probabilities) would make {@code KL(q || p)} infinite
 * wherever the student has mass. The teacher's log-probabilities at T = 1 are therefore floored at
 * {@link #TEACHER_LOG_FLOOR} = {@code log(Float.MIN_VALUE)} = -103.28 (the value a top-k soft-target store
 * keeps for a zero probability; a dense store keeps -Infinity, which the floor then raises) before tempering: value and gradient stay finite, and student mass on such a
 * class costs about {@code 103 / T} nats per unit of mass (before the {@code T^2} factor), so it is pushed
 * off steeply. Teachers whose every log-probability is above the floor are not affected.
 */
public final class ReverseKl extends TemperedDivergence {
    /** The registered name. */
    public static final String NAME = "reverse-kl";
    /**
     * {@code log(Float.MIN_VALUE)} = -103.28: the least teacher log-probability (at T = 1) that reverse KL (and
     * {@code gjsd} at beta 1) uses; the value a top-k soft-target store keeps for a zero probability (a dense store
     * keeps -Infinity), so a live teacher and its store give the same loss either way.
     */
    public static final double TEACHER_LOG_FLOOR = Math.log(Float.MIN_VALUE);

    /** @param temperature softmax temperature {@code T > 0} on both sides */
    public ReverseKl(double temperature) {
        this(temperature, Reduction.MEAN);
    }

    /**
     * Reverse KL at the temperature {@code T} (finite, {@code > 0}) with the given reduction over rows
     * ({@link Reduction#MEAN} in the one-argument constructor).
     *
     * @throws IllegalArgumentException if the temperature is not a finite number {@code > 0}
     * @throws NullPointerException     if {@code reduction} is null
     */
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

    /** True: KL(q || p) is infinite where the teacher has no mass (see the class comment). */
    @Override
    boolean floorsTeacher() {
        return true;
    }

    @Override
    double row(Row r, double[] dz, double[] parts) {
        return reverseKl(r, dz);
    }
}
