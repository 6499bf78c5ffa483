package org.distill4j.teacher;

import org.distill4j.data.Dataset;
import org.distill4j.loss.TeacherValues;
import org.distill4j.testing.Float64Reference;
import org.distill4j.testing.Inputs;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.distill4j.teacher.TeacherCombinatorsTest.Fixed;
import static org.distill4j.teacher.TeacherCombinatorsTest.batch;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * TopKTeacher: the bounds of k (both ends taken, one past either refused, naming k and the bound), ties broken to the
 * smaller id (float64 reference on rows with many tied classes), a top-k teacher that breaks its shape contract named,
 * and what the wrapper forwards: dense rows, dense-ness, the data served, identity and description.
 */
class TopKTeacherChecksTest {

    @Test
    void kFromOneToTheClassesIsTakenOnePastEitherEndIsRefused() {
        Random rng = new Random(51);
        int v = 9;
        Teacher t = new Fixed(Inputs.logits(rng, 2, v, 2), v, TeacherValues.LOGITS);
        for (int k : new int[]{1, v}) {
            SparseTeacher.TopK top = TopKTeacher.of(t, k).topK(batch(2));
            assertEquals(k, top.k());
            assertEquals(2 * k, top.ids().length);
        }
        for (int bad : new int[]{0, -1, v + 1}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TopKTeacher.of(t, bad), "k " + bad);
            assertEquals("top-k k is " + bad + ", expected 1 <= k <= " + v + " (the teacher's classes)", e.getMessage());
        }
        SparseAlignmentTest.Entries sparse = SparseAlignmentTest.topK(Inputs.logits(rng, 2, v, 2), 2, v, 4);
        assertEquals(4, TopKTeacher.of(sparse, 4).topK(batch(2)).k(), "k equal to the top-k teacher's own k");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TopKTeacher.of(sparse, 5));
        assertEquals("top-k k is 5, but entries holds only 4 entries per row; expected 1 <= k <= 4", e.getMessage());
        assertThrows(NullPointerException.class, () -> TopKTeacher.of(null, 1));
    }

    /**
     * Rows of 29 logits drawn from 4 values (so most classes tie), in several orders: the top-k is the float64 ranking
     * with a tie going to the smaller id, and its log-probabilities are the float64 ones.
     */
    @Test
    void tiesGoToTheSmallerIdWhateverTheirPositions() {
        Random rng = new Random(52);
        int v = 29;
        int n = 6;
        float[] levels = {1.5f, -0.25f, 0.75f, 3f};
        float[] logits = new float[n * v];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = levels[rng.nextInt(levels.length)];
        }
        for (int k : new int[]{1, 5, 11, v}) {
            SparseTeacher.TopK got = TopKTeacher.of(new Fixed(logits, v, TeacherValues.LOGITS), k).topK(batch(n));
            for (int r = 0; r < n; r++) {
                double[] lp = Float64Reference.logSoftmax(logits, r * v, v, 1.0);
                Integer[] order = new Integer[v];
                for (int i = 0; i < v; i++) {
                    order[i] = i;
                }
                Arrays.sort(order, (a, b) -> lp[a] != lp[b] ? Double.compare(lp[b], lp[a]) : Integer.compare(a, b));
                for (int j = 0; j < k; j++) {
                    assertEquals(order[j], got.ids()[r * k + j], "k " + k + ", row " + r + ", rank " + j);
                    assertEquals(lp[order[j]], got.logProbs()[r * k + j], 1e-6 * Math.max(1, Math.abs(lp[order[j]])));
                }
            }
        }
        // a top-k teacher's entries with tied log-probabilities, not in id order: the smaller id first
        SparseAlignmentTest.Entries tied = new SparseAlignmentTest.Entries(new int[]{8, 3, 5, 1}, new float[]{-1.5f, -1.5f, -0.5f, -1.5f},
                4, 10);
        SparseTeacher.TopK best = TopKTeacher.of(tied, 3).topK(batch(1));
        assertArrayEquals(new int[]{5, 1, 3}, best.ids());
        assertArrayEquals(new float[]{-0.5f, -1.5f, -1.5f}, best.logProbs(), 0f);
    }

    /** A top-k teacher that gives another k, or rows of another length, is named with what it gave and what was expected. */
    @Test
    void aTopKTeacherGivingRowsOfTheWrongShapeIsNamed() {
        int v = 8;
        int[][] ids = {{0, 1, 2, 0, 1, 2}, {0, 1, 2, 0, 1}, {0, 1, 2, 0, 1, 2}};
        float[][] lps = {{-1, -2, -3, -1, -2, -3}, {-1, -2, -3, -1, -2, -3}, {-1, -2, -3, -1, -2}};
        int[] ks = {2, 3, 3};
        String[] expected = {
                "bad gave top-k rows of k 2 with 6 ids and 6 log-probabilities for 2 rows; expected k 3 and 2 x 3 of each",
                "bad gave top-k rows of k 3 with 5 ids and 6 log-probabilities for 2 rows; expected k 3 and 2 x 3 of each",
                "bad gave top-k rows of k 3 with 6 ids and 5 log-probabilities for 2 rows; expected k 3 and 2 x 3 of each"};
        for (int c = 0; c < 3; c++) {
            int cc = c;
            SparseTeacher bad = new org.distill4j.testing.EntriesTeacher("bad", v, 3, b -> new SparseTeacher.TopK(ids[cc], lps[cc], ks[cc]));
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> TopKTeacher.of(bad, 2).topK(batch(2)), "case " + c);
            assertEquals(expected[c], e.getMessage());
        }
    }

    /** What the wrapper forwards to its teacher: rows (at 1 and at T), dense-ness, the data served, identity, description. */
    @Test
    void forwardsRowsDensenessServedDataIdentityAndDescription() {
        Random rng = new Random(53);
        int v = 7;
        float[] rows = Inputs.logits(rng, 3, v, 2);
        Teacher stored = new EnsembleTeacherChecksTest.Named(new Fixed(rows, v, TeacherValues.LOGITS), "t", "train");
        TopKTeacher top = TopKTeacher.of(stored, 3);
        assertArrayEquals(rows, top.outputs(batch(3)), 0f);
        assertArrayEquals(rows, top.outputs(batch(3), 2.5), 0f);
        assertSame(TeacherValues.LOGITS, top.values());
        assertEquals(v, top.classes());
        assertTrue(top.hasDenseOutputs(), "a dense teacher's top-k view has its dense rows");
        SparseTeacher entriesOnly = EnsembleTeacherChecksTest.entriesOnly(v, 3);
        assertFalse(TopKTeacher.of(entriesOnly, 2).hasDenseOutputs(), "a top-k store's top-k view has no dense rows");
        assertTrue(TopKTeacher.of(TopKTeacher.of(stored, 4), 2).hasDenseOutputs(), "a top-k view of a live teacher's top-k view has");
        Dataset train = new Dataset("train", new float[2], 1, new int[]{0, 1}, v);
        Dataset other = new Dataset("other", new float[2], 1, new int[]{0, 1}, v);
        assertTrue(top.serves(train));
        assertFalse(top.serves(other), "only what the wrapped teacher serves");
        assertEquals("top-3 of [id t]", top.identity());
        assertEquals("top-3 of described t", top.describe());
    }
}
