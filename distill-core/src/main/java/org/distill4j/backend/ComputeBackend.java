package org.distill4j.backend;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;

/**
 * Where the loss work of a training step runs: the CPU, or an accelerator.
 *
 * <p>A backend runs a {@link LogitLoss} by its name with its own kernels where it has them and
 * must give the same result as the loss's CPU implementation within the tolerance of its dtype.
 * Backends are found by {@link Backends} through {@link ComputeBackendProvider} services.
 */
public interface ComputeBackend extends AutoCloseable {

    /** The stable name used by {@code -Ddistill.backend}, e.g. {@code cpu}, {@code cuda}. */
    String name();

    /** What this backend runs on, for logs and provenance (e.g. the CPU model or the GPU name). */
    String device();

    /**
     * Computes {@code loss} over {@code batch}, writing {@code upstream * dLoss/dStudentLogits} into
     * {@code gradOut}; the contract of {@link LogitLoss#compute}.
     */
    LossResult logitLoss(LogitLoss loss, LogitBatch batch, float[] gradOut, float upstream);

    /** Releases native resources; calling it twice is harmless. */
    @Override
    void close();
}
