package org.distill4j.loss;

import org.distill4j.testing.Inputs;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The built-in losses' (and LogitBatch's) errors about one row carry that row as data, with the message text they had
 * when the row was only in the text; a wrapper can rename the row without touching the text.
 */
class BadRowExceptionTest {
    private static final int ROWS = 7;
    private static final int V = 11;
    private static final int BAD = 5;

    private static BadRowException badRow(Executable call, String expectedText) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        BadRowException bad = assertInstanceOf(BadRowException.class, e, e.getMessage());
        assertEquals(BAD, bad.row(), e.getMessage());
        assertTrue(e.getMessage().startsWith(expectedText), e.getMessage());
        return bad;
    }

    @Test
    void theBuiltInLossesNameTheRowAsData() {
        Random rng = new Random(17);
        float[] s = Inputs.logits(rng, ROWS, V, 3);
        float[] t = Inputs.logits(rng, ROWS, V, 3);
        float[] g = new float[ROWS * V];

        float[] nanStudent = s.clone();
        nanStudent[BAD * V + 4] = Float.NaN;
        badRow(() -> new SoftTargetKd(2, 0.3).compute(LogitBatch.of(ROWS, V, nanStudent, t, TeacherValues.LOGITS,
                Inputs.labels(rng, ROWS, V)), g, 0.7f), "student logit at row 5, class 4 is NaN, expected a finite value");

        float[] infTeacher = t.clone();
        infTeacher[BAD * V + 2] = Float.POSITIVE_INFINITY;
        badRow(() -> new ReverseKl(2).compute(LogitBatch.of(ROWS, V, s, infTeacher, TeacherValues.LOGITS, null), g, 0.7f),
                "teacher logit at row 5, class 2 is Infinity, expected a finite value, or -Infinity");

        float[] massless = t.clone();
        java.util.Arrays.fill(massless, BAD * V, BAD * V + V, Float.NEGATIVE_INFINITY);
        badRow(() -> new SoftTargetKd(2, 0).compute(LogitBatch.of(ROWS, V, s, massless, TeacherValues.LOGITS, null), g, 0.7f),
                "teacher logits of row 5 are all -Infinity (no class has probability)");

        float[] p = Inputs.probabilities(rng, ROWS, V, 2);
        float[] negative = p.clone();
        negative[BAD * V + 1] = -0.25f;
        badRow(() -> new SoftTargetKd(2, 0).compute(LogitBatch.of(ROWS, V, s, negative, TeacherValues.PROBABILITIES, null), g,
                0.7f), "teacher probability at row 5, class 1 is -0.25, expected a finite value >= 0");
        float[] zero = p.clone();
        java.util.Arrays.fill(zero, BAD * V, BAD * V + V, 0f);
        badRow(() -> new SoftTargetKd(2, 0).compute(LogitBatch.of(ROWS, V, s, zero, TeacherValues.PROBABILITIES, null), g, 0.7f),
                "teacher probabilities of row 5 are all zero");

        float[] padded = t.clone();
        padded[BAD * V + 9] = Float.NEGATIVE_INFINITY;
        badRow(() -> new LogitMse().compute(LogitBatch.of(ROWS, V, s, padded, TeacherValues.LOGITS, null), g, 0.7f),
                "loss 'mse' compares logits, but the teacher logit at row 5, class 9 is -Infinity");

        int[] labels = Inputs.labels(rng, ROWS, V);
        labels[BAD] = V;
        badRow(() -> LogitBatch.ofLabels(ROWS, V, s, labels), "label of row 5 is 11, expected a class index in [0, 11)");

        int k = 3;
        int[] ids = new int[ROWS * k];
        float[] lps = new float[ROWS * k];
        for (int r = 0; r < ROWS; r++) {
            for (int j = 0; j < k; j++) {
                ids[r * k + j] = (r + 2 * j) % V;
                lps[r * k + j] = (float) Math.log(0.5 / (j + 1)); // 0.92 of the mass
            }
        }
        int[] outside = ids.clone();
        outside[BAD * k + 1] = -2; // -1 is an absent slot (LogitBatch.ABSENT), which needs -Infinity
        badRow(() -> LogitBatch.ofTopK(ROWS, V, s, outside, lps, k, null), "top-k id at row 5, entry 1 is -2");
        int[] absent = ids.clone();
        absent[BAD * k + 1] = LogitBatch.ABSENT;
        badRow(() -> LogitBatch.ofTopK(ROWS, V, s, absent, lps, k, null), "top-k entry at row 5, entry 1 is absent (id -1)");
        int[] repeated = ids.clone();
        repeated[BAD * k + 2] = repeated[BAD * k];
        badRow(() -> LogitBatch.ofTopK(ROWS, V, s, repeated, lps, k, null), "top-k ids of row 5 repeat class");
        float[] positive = lps.clone();
        positive[BAD * k] = 0.5f;
        badRow(() -> LogitBatch.ofTopK(ROWS, V, s, ids, positive, k, null), "top-k log-probability at row 5, entry 0 is 0.5");
        float[] none = lps.clone();
        java.util.Arrays.fill(none, BAD * k, BAD * k + k, Float.NEGATIVE_INFINITY);
        badRow(() -> LogitBatch.ofTopK(ROWS, V, s, ids, none, k, null), "top-k log-probabilities of row 5 are all -Infinity");
        // 0.6 + 0.3 + 0.2 = 1.1: more than one distribution's mass, which the rest bucket cannot take
        float[] excess = lps.clone();
        for (int j = 0; j < k; j++) {
            excess[BAD * k + j] = (float) Math.log(0.6 / (j + 1));
        }
        badRow(() -> new TopKKd(2, TopKKd.Tail.REST_BUCKET).compute(LogitBatch.ofTopK(ROWS, V, s, ids, excess, k, null), g, 0.7f),
                "top-k probabilities of row 5 sum to");
    }

    /**
     * The default computeRows runs the loss on a copy of rows [from, to) as a batch of their own: a bad row it names is
     * a row of that slice, which must come back as the row of the batch computeRows was given (from + row).
     */
    @Test
    void theDefaultComputeRowsNamesTheBatchsRowNotTheSlices() {
        Random rng = new Random(29);
        float[] s = Inputs.logits(rng, ROWS, V, 3);
        float[] t = Inputs.logits(rng, ROWS, V, 3);
        s[BAD * V + 4] = Float.NaN;
        LogitBatch batch = LogitBatch.of(ROWS, V, s, t, TeacherValues.LOGITS, null);
        LogitLoss own = new org.distill4j.testing.CopyingRowsLoss(new SoftTargetKd(2, 0));
        for (int from : new int[]{0, 2, BAD}) {
            for (int to : new int[]{BAD + 1, ROWS}) {
                float[] g = new float[(to - from) * V + 3];
                badRow(() -> own.computeRows(batch, from, to, g, 3, 0.7f),
                        "student logit at row 5, class 4 is NaN, expected a finite value");
            }
        }
        // the whole batch, into a gradient buffer of its own size: computed in place, the row as the loss names it
        badRow(() -> own.computeRows(batch, 0, ROWS, new float[ROWS * V], 0, 0.7f), "student logit at row 5, class 4 is NaN");
    }

    @Test
    void atRowKeepsTheTextCauseAndTraceAndRenamesTheRow() {
        RuntimeException cause = new RuntimeException("underlying");
        BadRowException e = new BadRowException("student logit at row ", 2, ", class 4 is NaN");
        e.initCause(cause);
        e.addSuppressed(new IllegalStateException("also"));
        BadRowException moved = e.atRow(602);
        assertEquals(602, moved.row());
        assertEquals("student logit at row 602, class 4 is NaN", moved.getMessage());
        assertSame(cause, moved.getCause());
        assertArrayEquals(e.getStackTrace(), moved.getStackTrace());
        assertEquals(1, moved.getSuppressed().length);
        assertEquals(2, e.row(), "the original is unchanged");
        IllegalArgumentException negative = assertThrows(IllegalArgumentException.class, () -> new BadRowException("row ", -1, ""));
        assertTrue(negative.getMessage().contains("-1"), negative.getMessage());
    }
}
