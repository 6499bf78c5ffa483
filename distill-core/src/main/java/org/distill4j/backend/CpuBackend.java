package org.distill4j.backend;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;

/**
 * The CPU backend: runs each loss's own fused CPU implementation on the calling thread. Always
 * available; the fallback when no accelerator backend is.
 */
public final class CpuBackend implements ComputeBackend {
    /** The backend's name. */
    public static final String NAME = "cpu";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String device() {
        return CpuBackendProvider.describeCpu();
    }

    @Override
    public LossResult logitLoss(LogitLoss loss, LogitBatch batch, float[] gradOut, float upstream) {
        return loss.compute(batch, gradOut, upstream);
    }

    @Override
    public void close() {
        // nothing native to release
    }
}
