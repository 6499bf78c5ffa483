package org.distill4j.loss;

import java.util.Map;
import java.util.Objects;

/**
 * Mean squared error between student and teacher logits, averaged over the classes of a row:
 * {@code (1/V) * sum_i (s_i - t_i)^2}, gradient {@code 2 (s_i - t_i) / V}. Registered as {@code mse}.
 *
 * <p>Matching logits directly is the high-temperature limit of soft-target KD (Hinton et al., section
 * 2.1; J. Ba, R. Caruana, "Do Deep Nets Really Need to be Deep?", NIPS 2014). Needs teacher logits:
 * probabilities are rejected, since logits are only known up to a per-row constant from them. A
 * {@code -Infinity} teacher logit (a class of zero mass, e.g. from {@code VocabularyAlignment} PAD) is
 * rejected too, naming the row and class: its squared error is infinite, and there is no logit to match. An
 * {@code EnsembleTeacher} averaging probabilities gives logits, the log of its averaged probabilities (at the
 * temperature the rows are asked at: 1 for {@code mse} alone), so {@code mse} matches those log-probabilities, as it
 * does those of a store of log-probabilities.
 */
public final class LogitMse implements LogitLoss {
    /** The registered name. */
    public static final String NAME = "mse";

    private final Reduction reduction;

    /** Logit MSE averaged over the counted rows ({@link Reduction#MEAN}). */
    public LogitMse() {
        this(Reduction.MEAN);
    }

    /**
     * Logit MSE with the given reduction over the counted rows (each row's value is already a mean over its classes).
     *
     * @throws NullPointerException if {@code reduction} is null
     */
    public LogitMse(Reduction reduction) {
        this.reduction = Objects.requireNonNull(reduction, "reduction");
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, Object> settings() {
        return Map.of("reduction", reduction.name().toLowerCase());
    }

    @Override
    public boolean needsTeacher() {
        return true;
    }

    @Override
    public boolean needsLabels() {
        return false;
    }

    /** True: each row's squared error depends on that row only. */
    @Override
    public boolean rowSeparable() {
        return true;
    }

    @Override
    public Reduction reduction() {
        return reduction;
    }

    @Override
    public LossResult compute(LogitBatch batch, float[] gradOut, float upstream) {
        checkInputs(batch, gradOut, upstream);
        return rows(batch, 0, batch.rows(), gradOut, 0, upstream);
    }

    /** Reads the rows in place. */
    @Override
    public LossResult computeRows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        checkRows(batch, from, to, gradOut, gradOffset, upstream);
        return rows(batch, from, to, gradOut, gradOffset, upstream);
    }

    /** Rows {@code [from, to)}, their gradient from {@code gradOut[gradOffset]} on; the arguments are checked. */
    private LossResult rows(LogitBatch batch, int from, int to, float[] gradOut, int gradOffset, float upstream) {
        if (batch.teacherValues() != TeacherValues.LOGITS) {
            throw new IllegalArgumentException("loss 'mse' compares logits, but the teacher gives probabilities");
        }
        final int v = batch.classes();
        final float[] s = batch.student();
        final float[] t = batch.teacher();
        final double w = batch.rowWeight(reduction);
        final double gScale = 2.0 * w * upstream / v;
        double total = 0;
        for (int r = from; r < to; r++) {
            final int goff = gradOffset + (r - from) * v;
            if (!RowMath.beginRow(batch, gradOut, goff, r, true)) {
                continue;
            }
            final int off = r * v;
            final int toGrad = goff - off;
            double sum = 0;
            for (int i = off, end = off + v; i < end; i++) {
                if (t[i] == Float.NEGATIVE_INFINITY) {
                    throw new BadRowException("loss 'mse' compares logits, but the teacher logit at row ", r, ", class "
                            + (i - off) + " is -Infinity (a class of zero probability, e.g. one VocabularyAlignment PAD added): "
                            + "its squared error is infinite; use a loss over distributions (kd, reverse-kl, gjsd, ...)");
                }
                double d = (double) s[i] - t[i];
                sum += d * d;
                gradOut[toGrad + i] = (float) (gScale * d);
            }
            total += sum / v;
        }
        double value = total * w;
        return new LossResult(value, batch.countedRows(from, to), Map.of(NAME, value));
    }
}
