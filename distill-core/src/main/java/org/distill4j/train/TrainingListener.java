package org.distill4j.train;

/** Callbacks from the {@link Distiller} loop; every method has an empty default. */
public interface TrainingListener {

    /** Before the first batch of an epoch. */
    default void epochStarted(int epoch, int epochs, int batches) {
    }

    /**
     * After each training batch.
     *
     * @param batch        0-based index of the batch in the epoch
     * @param batches      batches in the epoch
     * @param samples      samples trained so far in the epoch
     * @param elapsedNanos wall time since the epoch started
     * @param loss         the batch's loss value
     */
    default void batchFinished(int epoch, int batch, int batches, long samples, long elapsedNanos, double loss) {
    }

    /** After the epoch's evaluation. */
    default void epochFinished(EpochMetrics metrics) {
    }
}
