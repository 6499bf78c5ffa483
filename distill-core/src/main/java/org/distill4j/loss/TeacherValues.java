package org.distill4j.loss;

/**
 * What a teacher row holds: raw logits, or probabilities that sum to one.
 *
 * <p>Probabilities are turned into temperature-scaled targets exactly: since
 * {@code softmax(z / T) = normalize(p^(1/T))} for {@code p = softmax(z)}, a loss treats
 * {@code log p} as logits. Zero probabilities are allowed (they become zero targets);
 * negative or non-finite values are rejected.
 */
public enum TeacherValues {
    /** Unnormalized scores; the loss applies the (temperature-scaled) softmax. */
    LOGITS,
    /** Probabilities, each row non-negative; rows are renormalized, so small rounding drift is harmless. */
    PROBABILITIES
}
