package org.distill4j.loss;

/**
 * What a teacher row holds: raw logits, or probabilities that sum to one.
 *
 * <p>Probabilities are turned into temperature-scaled targets exactly: since
 * {@code softmax(z / T) = normalize(p^(1/T))} for {@code p = softmax(z)}, a loss treats
 * {@code log p} as logits. A class of zero mass is written as a zero probability or as a logit of
 * {@code -Infinity} (a masked or padded vocabulary entry, an underflowed softmax); the two are the same
 * target, and every loss gives finite values and gradients for them (see each loss for what it does
 * there: {@code reverse-kl} floors such probabilities, {@code mse} refuses them). Every row needs a class
 * with mass (a finite logit, a positive probability). NaN, {@code +Infinity} and negative probabilities
 * are rejected, naming the row and class.
 */
public enum TeacherValues {
    /** Unnormalized scores, finite or {@code -Infinity} (zero mass); the loss applies the (temperature-scaled) softmax. */
    LOGITS,
    /** Probabilities, each row non-negative; rows are renormalized, so small rounding drift is harmless. */
    PROBABILITIES
}
