package org.distill4j.loss;

/**
 * How per-row losses are combined into one value.
 *
 * <p>{@link #MEAN} (the default everywhere) divides the sum over rows by the number of rows, so the
 * loss and its gradient do not grow with the batch size; {@link #SUM} keeps the plain sum. The
 * gradient written by a loss always matches the reduced value: with {@code MEAN} each row's
 * gradient is divided by the row count too.
 */
public enum Reduction {
    /** Sum over rows divided by the number of rows (default). */
    MEAN,
    /** Plain sum over rows. */
    SUM;

    /** The factor each row's loss and gradient are multiplied by for a batch of {@code rows} rows. */
    public double rowWeight(int rows) {
        return this == MEAN ? 1.0 / rows : 1.0;
    }
}
