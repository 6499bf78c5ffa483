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
