package org.distill4j.loss;

import java.util.Map;

/**
 * The reduced value of a loss over one batch, plus its named components (each already reduced the
 * same way, before any weighting), e.g. {@code kd} and {@code ce} for soft-target KD.
 *
 * @param value the loss value after reduction (this is what the written gradient differentiates)
 * @param rows  the number of rows that contributed
 * @param terms named components, unweighted, for metrics; never null
 */
public record LossResult(double value, int rows, Map<String, Double> terms) {
    /**
     * Keeps an unmodifiable copy of {@code terms}, in its own order.
     *
     * @throws NullPointerException if {@code terms}, a term's name or a term's value is null
     */
    public LossResult {
        terms = orderedCopy(terms);
    }

    /** An unmodifiable copy in {@code terms}' own order (the loss's: kd before ce), which logs and reports keep. */
    public static Map<String, Double> orderedCopy(Map<String, Double> terms) {
        java.util.LinkedHashMap<String, Double> copy = new java.util.LinkedHashMap<>();
        terms.forEach((k, v) -> copy.put(java.util.Objects.requireNonNull(k, "term name"), java.util.Objects.requireNonNull(v, k)));
        return java.util.Collections.unmodifiableMap(copy);
    }
}
