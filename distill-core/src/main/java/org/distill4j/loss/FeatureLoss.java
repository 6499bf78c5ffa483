package org.distill4j.loss;

import java.util.Map;

/**
 * A loss between intermediate features of student and teacher (FitNets hints, attention transfer,
 * relational KD). Like {@link LogitLoss} it works on plain buffers and returns the value with the
 * gradient with respect to the student feature; it never sees a model. Losses with parameters of
 * their own (a hint's projection) are {@link Trainable}.
 */
public interface FeatureLoss {

    /** The registered name: {@code hint}, {@code at}, {@code rkd}, {@code sp}, {@code pkt}. */
    String name();

    /** The loss settings, for logs and provenance. */
    Map<String, Object> settings();

    /**
     * Computes the loss (mean over samples, or over the sample pairs and triplets of a relational loss)
     * and writes {@code upstream * dLoss/dStudentFeature} into {@code gradOut} (every element).
     * {@code upstream} must be finite.
     */
    LossResult compute(FeatureBatch batch, float[] gradOut, float upstream);

    /**
     * Checks the gradient buffer (one element per student feature value, not the array of either feature) and the
     * upstream factor (finite); shared by implementations, which call it first in {@link #compute}.
     */
    default void checkGradient(FeatureBatch batch, float[] gradOut, float upstream) {
        if (gradOut == null || gradOut.length != batch.student().length) {
            throw new IllegalArgumentException("gradient buffer for loss '" + name() + "' has "
                    + (gradOut == null ? "no array" : gradOut.length + " elements") + ", expected one per student feature value: "
                    + batch.student().length);
        }
        String alias = gradOut == batch.student() ? "the student feature" : gradOut == batch.teacher() ? "the teacher feature" : null;
        if (alias != null) {
            throw new IllegalArgumentException("gradient buffer for loss '" + name() + "' is the same array as " + alias
                    + "; it must not alias an input (the loss reads them while it writes the gradient)");
        }
        LogitLoss.requireFiniteUpstream(name(), upstream);
    }

    /** A feature loss with trainable parameters, updated after each backward pass. */
    interface Trainable {
        /** Applies one optimizer step with the parameter gradients of the last {@code compute}. */
        void step();

        /** Number of trainable parameters. */
        long parameterCount();
    }
}
