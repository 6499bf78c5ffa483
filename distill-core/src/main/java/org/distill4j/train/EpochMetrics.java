package org.distill4j.train;

import org.distill4j.loss.LossResult;

import java.util.Map;

/**
 * What one epoch did.
 *
 * @param epoch             0-based epoch index
 * @param epochs            total epochs of the run
 * @param loss              mean training loss over the epoch's trained samples (not its IGNORE_INDEX ones, nor its
 *                          UNLABELED ones where no term reads the teacher: see {@link Distiller})
 * @param terms             mean of each named loss component (e.g. kd, ce), unweighted
 * @param temperature       the temperature used this epoch (NaN when the loss has none)
 * @param alpha             the hard-label weight used this epoch (NaN when the loss has none)
 * @param testAccuracy      student top-1 accuracy on the test set's labeled samples, in [0, 1]
 * @param teacherAgreement  fraction of labeled test samples where student and teacher top-1 agree (NaN without teacher)
 * @param teacherKl         mean KL(teacher || student) per labeled test sample at T = 1, in nats; for a
 *                          {@code TopKTeacher} of a live teacher, to that teacher's dense rows (NaN without a teacher, for
 *                          a teacher of top-k entries only such as a top-k store, or when the teacher's test outputs are
 *                          too large to keep, see {@link Distiller})
 * @param samplesPerSecond  trained samples per second (teacher forward, student step and loss; no evaluation)
 * @param trainSeconds      wall time of the training part of the epoch
 * @param evalSeconds       wall time of the evaluation after it
 */
public record EpochMetrics(int epoch, int epochs, double loss, Map<String, Double> terms, double temperature,
                           double alpha, double testAccuracy, double teacherAgreement, double teacherKl, double samplesPerSecond,
                           double trainSeconds, double evalSeconds) {
    /**
     * Keeps an unmodifiable copy of {@code terms}, in its own order (the loss's: kd before ce).
     *
     * @throws NullPointerException if {@code terms}, a term's name or a term's value is null
     */
    public EpochMetrics {
        terms = LossResult.orderedCopy(terms);
    }
}
