package org.distill4j.student;

import org.distill4j.data.Batch;

/**
 * A trainable model seen from the loss: forward to logits, then take {@code dLoss/dLogits} back and
 * apply one optimizer step. The loss is computed outside the model (on any backend).
 */
public interface Student {

    /** Logits per row. */
    int classes();

    /**
     * Row-major {@code [batch.size(), classes()]} logits. With {@code training} the model keeps what
     * {@link #backward} needs and applies training-time behaviour such as dropout.
     */
    float[] forward(Batch batch, boolean training);

    /**
     * Back-propagates {@code dLoss/dLogits} (row-major, same shape as the last training forward) and
     * applies one optimizer step. The gradient is that of the reduced loss (e.g. already divided by
     * the batch size for a mean), and is applied as such.
     */
    void backward(float[] dLogits);

    /**
     * The named intermediate activation of the last training forward, for feature losses.
     *
     * @throws UnsupportedOperationException when this student exposes no features
     */
    default org.distill4j.data.Feature feature(String name) {
        throw new UnsupportedOperationException(describe() + " exposes no intermediate features");
    }

    /**
     * Like {@link #backward(float[])}, with gradients injected at named intermediate features too
     * (each the shape of {@link #feature}); one optimizer step for all of them.
     */
    default void backward(float[] dLogits, java.util.Map<String, float[]> dFeatures) {
        if (!dFeatures.isEmpty()) {
            throw new UnsupportedOperationException(describe() + " cannot take gradients at intermediate features");
        }
        backward(dLogits);
    }

    /** Marks the end of an epoch (for epoch-based learning-rate schedules). */
    void endEpoch();

    /** Number of trainable parameters. */
    long parameterCount();

    /** A short description for logs and provenance. */
    String describe();
}
