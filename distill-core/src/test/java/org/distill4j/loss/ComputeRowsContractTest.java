package org.distill4j.loss;

import org.distill4j.testing.Inputs;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link LogitLoss#computeRows} of every built-in row-separable loss, called directly (the CPU backend calls it for
 * each slice of a large batch): the rows' result is that of {@code compute} on {@link LogitBatch#slice}, bit for bit,
 * written at the offset and nowhere else; and its arguments are checked before any row is read, with the errors
 * {@code compute} gives (range, gradient room, alias, upstream factor, inputs the loss needs), never an index error or
 * a silently NaN gradient. Odd sizes (7 rows of 13 classes), upstream 0.73.
 */
class ComputeRowsContractTest {
    static final int ROWS = 7;
    static final int V = 13;
    static final int K = 4;
    static final float UP = 0.73f;

    static Stream<String> losses() {
        return Stream.of("kd", "ce", "reverse-kl", "gjsd", "skew-kl", "skew-rkl", "akl", "abkd", "tvd", "mse", "dkd", "logit-std", "topk-renormalize",
                "topk-rest");
    }

    static LogitLoss loss(String which) {
        return switch (which) {
            case "kd" -> new SoftTargetKd(2.5, 0.3);
            case "ce" -> new CrossEntropy();
            case "reverse-kl" -> new ReverseKl(1.5);
            case "gjsd" -> new GeneralizedJsd(0.3, 2);
            case "skew-kl" -> new SkewKl(0.1, 2);
            case "skew-rkl" -> new SkewReverseKl(0.2, 1.5);
            case "akl" -> new AdaptiveKl(0.4, 1.5);
            case "abkd" -> new AlphaBetaDivergence(0.6, 0.9, 2);
            case "tvd" -> new TotalVariation(2);
            case "mse" -> new LogitMse();
            case "dkd" -> new Dkd(1, 8, 4, 0);
            case "logit-std" -> LogitStandardization.of(new SoftTargetKd(2, 0.2));
            case "topk-renormalize" -> new TopKKd(2, TopKKd.Tail.RENORMALIZE);
            case "topk-rest" -> new TopKKd(2, TopKKd.Tail.REST_BUCKET);
            default -> throw new IllegalArgumentException(which);
        };
    }

    /** A batch with what the loss reads (dense or top-k teacher) and labels, or without labels. */
    static LogitBatch batch(LogitLoss loss, Random rng, boolean labels) {
        float[] s = Inputs.logits(rng, ROWS, V, 2.5);
        int[] y = labels ? Inputs.labels(rng, ROWS, V) : null;
        if (!loss.needsTopK()) {
            return LogitBatch.of(ROWS, V, s, Inputs.logits(rng, ROWS, V, 2.5), TeacherValues.LOGITS, y);
        }
        float[] z = Inputs.logits(rng, ROWS, V, 2.5);
        int[] ids = new int[ROWS * K];
        float[] lps = new float[ROWS * K];
        for (int r = 0; r < ROWS; r++) {
            double[] lp = FamilyReference.logSoftmax(FamilyReference.widen(z), r * V, V, 1);
            for (int j = 0; j < K; j++) {
                int id = (r + 3 * j) % V;
                ids[r * K + j] = id;
                lps[r * K + j] = (float) lp[id];
            }
        }
        return LogitBatch.ofTopK(ROWS, V, s, ids, lps, K, y);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("losses")
    void rowsAreTheSlicesResultBitForBitAtTheOffsetAndNothingElse(String which) {
        LogitLoss loss = loss(which);
        assertTrue(loss.rowSeparable(), which + " depends on each row alone, so the backend may split its batches");
        Random rng = new Random(which.hashCode());
        LogitBatch b = batch(loss, rng, true);
        int[][] splits = {{0, 3}, {3, 4}, {4, ROWS}};
        int offset = 5;
        float[] out = new float[offset + ROWS * V + 6];
        Arrays.fill(out, 42f);
        double sum = 0;
        int counted = 0;
        for (int[] sp : splits) {
            LogitBatch slice = b.slice(sp[0], sp[1]);
            float[] own = Inputs.poisoned(slice.student().length);
            LossResult expected = loss.compute(slice, own, UP);
            LossResult r = loss.computeRows(b, sp[0], sp[1], out, offset + sp[0] * V, UP);
            assertEquals(Double.doubleToRawLongBits(expected.value()), Double.doubleToRawLongBits(r.value()),
                    which + " rows [" + sp[0] + ", " + sp[1] + ") value");
            assertEquals(expected.terms(), r.terms(), which + " terms");
            assertEquals(sp[1] - sp[0], r.rows(), which + " counted rows");
            for (int i = 0; i < own.length; i++) {
                assertEquals(Float.floatToRawIntBits(own[i]), Float.floatToRawIntBits(out[offset + sp[0] * V + i]),
                        which + " rows [" + sp[0] + ", " + sp[1] + ") gradient element " + i);
            }
            sum += r.value();
            counted += r.rows();
        }
        for (int i = 0; i < offset; i++) {
            assertEquals(42f, out[i], which + ": element " + i + " before the offset is untouched");
        }
        for (int i = offset + ROWS * V; i < out.length; i++) {
            assertEquals(42f, out[i], which + ": element " + i + " after the rows is untouched");
        }
        double whole = loss.compute(b, new float[ROWS * V], UP).value();
        assertEquals(whole, sum, 1e-12 * Math.abs(whole), which + ": the slices' values sum to the batch's");
        assertEquals(ROWS, counted);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("losses")
    void argumentsAreCheckedBeforeAnyRowIsRead(String which) {
        LogitLoss loss = loss(which);
        String name = loss.name();
        LogitBatch b = batch(loss, new Random(which.hashCode() + 1L), true);
        for (int[] bad : new int[][]{{-1, 2}, {3, 3}, {4, 2}, {0, ROWS + 1}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> loss.computeRows(b, bad[0], bad[1], new float[ROWS * V], 0, UP), which + " " + Arrays.toString(bad));
            assertEquals("slice [" + bad[0] + ", " + bad[1] + ") of a batch of " + ROWS + " rows: expected 0 <= from < to <= " + ROWS,
                    e.getMessage());
        }
        String buffer = "gradient buffer for loss '" + name + "' has ";
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> loss.computeRows(b, 2, 5, new float[3 * V + 4], 5, UP));
        assertEquals(buffer + (3 * V + 4) + " elements, expected room for rows [2, 5) x " + V + " classes = " + 3 * V
                + " elements from offset 5", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> loss.computeRows(b, 2, 5, new float[3 * V], -1, UP));
        assertTrue(e.getMessage().startsWith(buffer) && e.getMessage().endsWith("from offset -1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> loss.computeRows(b, 2, 5, null, 0, UP));
        assertTrue(e.getMessage().startsWith(buffer + "no array"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> loss.computeRows(b, 0, ROWS, b.student(), 0, UP));
        assertEquals("gradient buffer for loss '" + name + "' is the same array as the student logits; it must not alias an input "
                + "(the loss reads them while it writes the gradient)", e.getMessage());
        for (float up : new float[]{Float.NaN, Float.POSITIVE_INFINITY}) {
            e = assertThrows(IllegalArgumentException.class, () -> loss.computeRows(b, 1, 4, new float[3 * V], 0, up));
            assertEquals("upstream gradient factor for loss '" + name + "' is " + up
                    + ", expected a finite number (1 for a loss used alone, the term weight inside a weighted sum)", e.getMessage());
        }
        // what each loss reads, stated here rather than asked of the loss, so a loss that stops asking for its inputs shows
        boolean labels = java.util.Set.of("kd", "ce", "dkd", "logit-std").contains(which);
        boolean topK = which.startsWith("topk");
        boolean dense = !topK && !which.equals("ce");
        assertEquals(labels, loss.needsLabels(), which + " reads hard labels");
        assertEquals(topK, loss.needsTopK(), which + " reads a top-k teacher");
        assertEquals(dense, loss.needsTeacher(), which + " reads dense teacher values");
        if (labels) {
            LogitBatch unlabeled = batch(loss, new Random(3), false);
            e = assertThrows(IllegalArgumentException.class, () -> loss.computeRows(unlabeled, 1, 4, new float[3 * V], 0, UP));
            assertEquals("loss '" + name + "' needs hard labels, but the batch has none", e.getMessage());
        }
        if (topK) {
            LogitBatch denseBatch = LogitBatch.of(ROWS, V, b.student(), b.student().clone(), TeacherValues.LOGITS, null);
            e = assertThrows(IllegalArgumentException.class, () -> loss.computeRows(denseBatch, 1, 4, new float[3 * V], 0, UP));
            assertEquals("loss '" + name + "' needs a top-k teacher (ids + log-probabilities), but the batch has dense teacher outputs",
                    e.getMessage());
        } else if (dense) {
            LogitBatch labelsOnly = LogitBatch.ofLabels(ROWS, V, b.student(), new int[ROWS]);
            e = assertThrows(IllegalArgumentException.class, () -> loss.computeRows(labelsOnly, 1, 4, new float[3 * V], 0, UP));
            assertEquals("loss '" + name + "' needs dense teacher outputs, but the batch has none", e.getMessage());
        }
    }
}
