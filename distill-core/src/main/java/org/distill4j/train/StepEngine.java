package org.distill4j.train;

import org.distill4j.data.Batch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;

/**
 * Runs whole distillation steps (teacher forward, student forward, loss, backward, optimizer step) on its
 * own copy of the student, e.g. on a GPU, instead of the DL4J path's student forward, backend loss and
 * student backward. {@link Distiller} asks the {@link StepEngineProvider}s for one at the start of a run;
 * with none, it uses the DL4J path.
 *
 * <p>The engine owns the trained weights during the run: {@link #syncToStudent()} writes them back into
 * the student (before each evaluation and checkpoint, at the end of the run, and when the run throws), so what
 * the run returns, evaluates and saves, and what a caller that catches the run's exception (a
 * {@link java.util.concurrent.CancellationException}, a bad batch) holds, is the ordinary student with the
 * engine's last state.
 *
 * <p>The Distiller drives an engine through {@link #submit}: it submits batch i+1 before it asks for batch
 * i's result, so an engine that queues its work (a GPU) can copy the next batch and queue its step while
 * the current one still runs, and the host gathers the next batch meanwhile. At most two steps are then
 * pending; on a run that goes on, every pending result is collected, in submission order, before
 * {@link #endEpoch()}, {@link #syncToStudent()} or {@link #close()}. When the run throws, the Distiller calls
 * {@link #syncToStudent()}, then {@link #close()}, with up to two steps pending whose results it never asks for:
 * the engine writes back the state after every step it applied, the pending ones included (after a step that
 * failed, the state its failure leaves, e.g. the last good step's); an error it raises there is added to the
 * run's as suppressed. Engines that compute at once need only {@link #step}.
 * Runs with feature losses never get an engine (their terms need the student's own activations).
 */
public interface StepEngine extends AutoCloseable {

    /** What runs the steps, for the log and the run's provenance (e.g. {@code cuda-mlp bf16 on NVIDIA H100}). */
    String describe();

    /**
     * One training step on {@code batch} with {@code loss} (this epoch's, temperature and alpha resolved). A bad row of
     * the batch (a non-finite logit, a teacher row without mass) is reported best as a
     * {@link org.distill4j.loss.BadRowException} naming the row, from here or from {@link Pending#result()}: the
     * Distiller wraps every {@link IllegalArgumentException} of a step with its epoch and batch, as on the DL4J path, and
     * names the training sample a {@code BadRowException}'s row holds.
     *
     * @return the loss of the batch, as the backend would report it (reduced value, counted rows, terms)
     */
    LossResult step(Batch batch, LogitLoss loss);

    /** A submitted step, whose result may still be computed. */
    @FunctionalInterface
    interface Pending {
        /** Waits for the step and returns its loss, as {@link #step} would have; asked once. */
        LossResult result();
    }

    /**
     * Queues one training step and returns at once or when it is computed; the result is the same as
     * {@link #step}'s. The default computes it now.
     */
    default Pending submit(Batch batch, LogitLoss loss) {
        LossResult r = step(batch, loss);
        return () -> r;
    }

    /** Writes the engine's current weights (and what an optimizer needs to go on) back into the student. */
    void syncToStudent();

    /** Marks the end of an epoch (for epoch-based learning-rate schedules). */
    default void endEpoch() {
    }

    /** Frees what the engine holds (device memory); closing twice is harmless. */
    @Override
    void close();
}
