package org.distill4j.benchmarks;

import org.distill4j.backend.CpuBackend;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.Losses;

import java.util.Map;

/**
 * One registered loss on a batch of fresh inputs, called either directly ({@code threads} "compute": the loss's own
 * {@code compute}) or through a {@link CpuBackend} of that many threads: what the CPU backend benchmarks time.
 */
final class LossCall implements AutoCloseable {
    private final LogitLoss impl;
    private final LogitBatch batch;
    private final float[] grad;
    private final CpuBackend backend;

    LossCall(String loss, int rows, int vocab, String threads) {
        impl = Losses.create(loss, Map.of());
        batch = LossInputs.batch(rows, vocab, impl);
        grad = new float[rows * vocab];
        backend = threads.equals("compute") ? null : new CpuBackend(Integer.parseInt(threads));
    }

    /** The loss's value and gradient, once. */
    double valueAndGradient() {
        return backend == null ? impl.compute(batch, grad, 1f).value() : backend.logitLoss(impl, batch, grad, 1f).value();
    }

    @Override
    public void close() {
        if (backend != null) {
            backend.close();
        }
    }
}
