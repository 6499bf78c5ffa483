package org.distill4j.loss;

/**
 * A loss whose settings follow the training epoch (e.g. DKD's warm-up, scheduled weights in a
 * {@link WeightedSum}). The training loop asks for the loss of each epoch before running it.
 */
public interface EpochAware {

    /** This loss as used in {@code epoch} (0-based) of {@code epochs}. */
    LogitLoss atEpoch(int epoch, int epochs);
}
