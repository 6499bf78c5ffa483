package org.distill4j.teacher;

import org.distill4j.data.Batch;

/**
 * A teacher that gives only its top-k classes per row, with their log-probabilities (natural log,
 * temperature 1): API logprobs, compressed logit stores. Feeds {@code topk-kd}.
 */
public interface SparseTeacher extends Teacher {

    /** Entries per row. */
    int k();

    /** Top-k of each row of the batch. */
    TopK topK(Batch batch);

    /**
     * The top-k rows to give a loss that softens them at temperature {@code temperature} ({@code topk-kd}), as
     * {@link Teacher#outputs(Batch, double)} is for dense rows: the {@code Distiller} asks with the loss's temperature. A
     * teacher whose entries do not depend on T (a top-k store, API logprobs) keeps this default, {@link #topK(Batch)};
     * {@link TopKTeacher} of a dense teacher takes the top-k of that teacher's rows at T.
     *
     * @param temperature the loss's temperature, finite and {@code > 0}
     */
    default TopK topK(Batch batch, double temperature) {
        return topK(batch);
    }

    /**
     * Whether {@link #outputs(Batch)} gives the dense rows too (a live teacher wrapped by {@link TopKTeacher} does); a
     * teacher of top-k entries only (a top-k store: API logprobs) says false, and then feeds only {@code topk-kd}:
     * {@code Distiller} and {@link EnsembleTeacher} refuse it up front for anything that reads dense rows.
     */
    default boolean hasDenseOutputs() {
        return true;
    }

    /**
     * Row-major {@code [rows, k]} class ids and log-probabilities, best first.
     *
     * @param ids      class ids
     * @param logProbs their log-probabilities
     * @param k        entries per row
     */
    record TopK(int[] ids, float[] logProbs, int k) {
    }
}
