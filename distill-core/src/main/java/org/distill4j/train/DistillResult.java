package org.distill4j.train;

import java.util.List;

/**
 * The outcome of a {@link Distiller} run.
 *
 * @param epochs            per-epoch metrics, in order
 * @param testAccuracy      final student top-1 test accuracy
 * @param teacherAgreement  final top-1 agreement with the teacher on the test set (NaN without teacher)
 * @param samplesPerSecond  training samples per second over the whole run (evaluation excluded)
 * @param wallSeconds       wall time of the whole run, evaluation included
 * @param backend           the compute backend's name
 * @param device            what the backend ran on
 * @param engine            what ran the training steps: {@code dl4j} (with the reasons no {@link StepEngine} was
 *                          taken, if any were offered) or the engine's description
 */
public record DistillResult(List<EpochMetrics> epochs, double testAccuracy, double teacherAgreement,
                            double samplesPerSecond, double wallSeconds, String backend, String device, String engine) {
    /**
     * Keeps an unmodifiable copy of {@code epochs}.
     *
     * @throws NullPointerException if {@code epochs} or one of its elements is null
     */
    public DistillResult {
        epochs = List.copyOf(epochs);
    }

    /** A result of the DL4J path. */
    public DistillResult(List<EpochMetrics> epochs, double testAccuracy, double teacherAgreement, double samplesPerSecond,
                         double wallSeconds, String backend, String device) {
        this(epochs, testAccuracy, teacherAgreement, samplesPerSecond, wallSeconds, backend, device, StepEngines.DL4J);
    }
}
