package org.distill4j.loss;

/**
 * Total-variation distance {@code T^2 * 1/2 * sum_i |p_i - q_i|} between the teacher's
 * {@code p = softmax(t/T)} and the student's {@code q = softmax(s/T)}. Registered as {@code tvd}.
 *
 * <p>A bounded, symmetric alternative to KL (used for language-model distillation by, e.g., J. Wen
 * et al., "f-Divergence Minimization for Sequence-Level Knowledge Distillation", ACL 2023). Its
 * gradient uses the subgradient {@code sign(0) = 0} where {@code p_i = q_i}.
 */
public final class TotalVariation extends TemperedDivergence {
    /** The registered name. */
    public static final String NAME = "tvd";

    /** @param temperature softmax temperature {@code T > 0} on both sides */
    public TotalVariation(double temperature) {
        this(temperature, Reduction.MEAN);
    }

    /**
     * Total variation at the temperature {@code T} (finite, {@code > 0}) with the given reduction over rows
     * ({@link Reduction#MEAN} in the one-argument constructor).
     *
     * @throws IllegalArgumentException if the temperature is not a finite number {@code > 0}
     * @throws NullPointerException     if {@code reduction} is null
     */
    public TotalVariation(double temperature, Reduction reduction) {
        super(temperature, reduction);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public TotalVariation withTemperature(double t) {
        return new TotalVariation(t, reduction);
    }

    @Override
    double row(Row r, double[] dz, double[] parts) {
        double d = 0;
        for (int i = 0; i < r.v; i++) {
            double diff = r.q[i] - r.p[i];
            d += Math.abs(diff);
            dz[i] = 0.5 * Math.signum(diff);
        }
        softmaxChain(r.q, dz, dz, r.v);
        return 0.5 * d;
    }
}
