package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What DistiLLM's two skew divergences share ({@link SkewKl}, {@link SkewReverseKl}): the skew {@code alpha} in [0, 1),
 * the weight of one side mixed into the other, checked once and reported first among the settings.
 */
abstract class SkewDivergence extends TemperedDivergence {
    /** The skew, in {@code [0, 1)} (checked by the constructor); see {@link #alpha()}. */
    protected final double alpha;

    SkewDivergence(double alpha, double temperature, Reduction reduction) {
        super(temperature, reduction);
        if (!(alpha >= 0 && alpha < 1)) { // NaN too
            throw new IllegalArgumentException(name() + " alpha (the skew) must be in [0, 1), got " + alpha
                    + (alpha == 1 ? ": at 1 the mixture is the loss's own first distribution and the loss is 0 whatever the student does" : ""));
        }
        this.alpha = alpha;
    }

    /** The skew: the weight in the mixture of the distribution the KL is taken from. */
    public double alpha() {
        return alpha;
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("alpha", alpha);
        m.putAll(super.settings());
        return m;
    }
}
