package org.distill4j.loss;

/**
 * How per-row losses are combined into one value.
 *
 * <p>{@link #MEAN} (the default everywhere) divides the sum over counted rows by their number (or by
 * the batch's normalizer, see {@link LogitBatch#withNormalizer}), so the loss and its gradient do not
 * grow with the batch size; {@link #SUM} keeps the plain sum. The gradient written by a loss always
 * matches the reduced value. See {@link LogitBatch#rowWeight(Reduction)}.
 */
public enum Reduction {
    /** Sum over counted rows divided by their number (default). */
    MEAN,
    /** Plain sum over counted rows. */
    SUM
}
