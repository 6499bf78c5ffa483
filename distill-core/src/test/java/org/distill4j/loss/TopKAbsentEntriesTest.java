package org.distill4j.loss;

import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Top-k rows with fewer than k entries: a slot of id {@link LogitBatch#ABSENT} and log-probability -Infinity holds no
 * class (a vocabulary alignment dropped its entry). The row is then the top-k of its other entries: under the
 * {@code rest} tail every class outside them, the absent slots' included, is part of the rest, and a row with fewer
 * entries than classes has a rest bucket even where k equals the vocabulary. Value against the float64 reference,
 * gradient against its central differences, upstream 0.73, V 13 and k 5 (and k = V = 6), both tails, T below and above
 * 1; and bit for bit as the same rows given without the absent slots.
 */
class TopKAbsentEntriesTest {
    private static final float UP = LossFamilyTest.UP;

    /** Top-k rows of random teachers, sorted best first, with {@code absent[r]} of row r's slots made absent. */
    private static Object[] rows(Random rng, int rows, int v, int k, int[] absent) {
        int[] ids = new int[rows * k];
        float[] lps = new float[rows * k];
        float[] te = Inputs.logits(rng, rows, v, 2.5);
        double[] td = FamilyReference.widen(te);
        FamilyReference.topKOf(td, rows, v, k, ids, lps);
        for (int r = 0; r < rows; r++) {
            // absent slots anywhere in the row, not only at its end
            for (int a = 0; a < absent[r]; a++) {
                int j;
                do {
                    j = rng.nextInt(k);
                } while (ids[r * k + j] == LogitBatch.ABSENT);
                ids[r * k + j] = LogitBatch.ABSENT;
                lps[r * k + j] = Float.NEGATIVE_INFINITY;
            }
        }
        return new Object[]{ids, lps};
    }

    @ParameterizedTest(name = "V={0} k={1} T={2} rest={3}")
    @CsvSource({"13, 5, 0.7, true", "13, 5, 2.5, true", "13, 5, 0.7, false", "13, 5, 2.5, false",
            "6, 6, 1.5, true", "6, 6, 1.5, false"})
    void aRowWithAbsentSlotsMatchesTheReference(int v, int k, double t, boolean restTail) {
        Random rng = new Random(v * 1000L + k * 10L + (long) (t * 10) + (restTail ? 1 : 0));
        int rows = 5;
        int[] absent = {0, 1, 2, k - 1, 1};
        Object[] top = rows(rng, rows, v, k, absent);
        int[] ids = (int[]) top[0];
        float[] lps = (float[]) top[1];
        float[] s = Inputs.logits(rng, rows, v, 2.5);
        TopKKd loss = new TopKKd(t, restTail ? TopKKd.Tail.REST_BUCKET : TopKKd.Tail.RENORMALIZE);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = loss.compute(LogitBatch.ofTopK(rows, v, s, ids, lps, k, null), grad, UP);
        double[] sd = FamilyReference.widen(s);
        FamilyReference.Value ref = x -> FamilyReference.topk(x, ids, lps, k, rows, v, t, restTail);
        String what = "V=" + v + " k=" + k + " T=" + t + (restTail ? " rest" : " renormalize");
        Tolerances.assertValueClose(ref.at(sd), r.value(), what + " value");
        LossFamilyTest.checkGradient(ref, sd, grad, rng, what);
    }

    /** Each row equals the same row given as a top-k of its present entries only (a batch of one row each). */
    @ParameterizedTest(name = "rest={0}")
    @CsvSource({"true", "false"})
    void absentSlotsAreTheSameAsAShorterRow(boolean restTail) {
        Random rng = new Random(restTail ? 17 : 18);
        int v = 11;
        int k = 6;
        int rows = 4;
        int[] absent = {2, 0, 5, 3};
        Object[] top = rows(rng, rows, v, k, absent);
        int[] ids = (int[]) top[0];
        float[] lps = (float[]) top[1];
        float[] s = Inputs.logits(rng, rows, v, 2.5);
        TopKKd loss = new TopKKd(1.7, restTail ? TopKKd.Tail.REST_BUCKET : TopKKd.Tail.RENORMALIZE, Reduction.SUM);
        float[] grad = new float[rows * v];
        double value = loss.compute(LogitBatch.ofTopK(rows, v, s, ids, lps, k, null), grad, UP).value();
        double sum = 0;
        for (int r = 0; r < rows; r++) {
            int n = k - absent[r];
            int[] ri = new int[n];
            float[] rl = new float[n];
            for (int j = 0, o = 0; j < k; j++) {
                if (ids[r * k + j] != LogitBatch.ABSENT) {
                    ri[o] = ids[r * k + j];
                    rl[o++] = lps[r * k + j];
                }
            }
            float[] g = new float[v];
            sum += loss.compute(LogitBatch.ofTopK(1, v, Arrays.copyOfRange(s, r * v, (r + 1) * v), ri, rl, n, null), g, UP).value();
            assertArrayEquals(g, Arrays.copyOfRange(grad, r * v, (r + 1) * v), "row " + r + ": the gradient, bit for bit");
        }
        assertEquals(sum, value, 1e-12 * Math.abs(sum));
    }

    /** An absent slot must say so with -Infinity; a row of absent slots only has no mass. */
    @Test
    void anAbsentSlotWithAFiniteLogProbabilityOrARowOfThemOnlyIsRefused() {
        float[] s = Inputs.logits(new Random(3), 2, 5, 1.0);
        BadRowException finite = assertThrows(BadRowException.class, () -> LogitBatch.ofTopK(2, 5, s,
                new int[]{0, LogitBatch.ABSENT, 2, 3}, new float[]{-0.5f, -1f, -0.2f, -2f}, 2, null));
        assertEquals(0, finite.row());
        assertTrue(finite.getMessage().contains("entry 1 is absent (id -1) but has log-probability -1.0")
                && finite.getMessage().contains("-Infinity"), finite.getMessage());
        BadRowException none = assertThrows(BadRowException.class, () -> LogitBatch.ofTopK(2, 5, s,
                new int[]{0, 1, LogitBatch.ABSENT, LogitBatch.ABSENT},
                new float[]{-0.5f, -1f, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY}, 2, null));
        assertEquals(1, none.row());
        assertThrows(BadRowException.class, () -> LogitBatch.ofTopK(1, 5, Arrays.copyOf(s, 5),
                new int[]{-2, 1}, new float[]{Float.NEGATIVE_INFINITY, -1f}, 2, null), "only -1 marks an absent slot");
    }
}
