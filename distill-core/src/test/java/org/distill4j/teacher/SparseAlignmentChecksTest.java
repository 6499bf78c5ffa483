package org.distill4j.teacher;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.TeacherValues;
import org.junit.jupiter.api.Test;

import static org.distill4j.teacher.TeacherCombinatorsTest.batch;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An aligned top-k teacher's checks of its wrapped teacher's rows (shape, ids in range, no class twice, some mass left in
 * the student's vocabulary), each named with the row and sample; TRUNCATE below k renormalizing every row, the last
 * included, against a float64 reference; and what the aligned view forwards.
 */
class SparseAlignmentChecksTest {
    private static final float NINF = Float.NEGATIVE_INFINITY;

    /** Two rows that are samples 10 and 11 of their data, so a message's row and sample differ. */
    private static Batch samples10and11() {
        return new Batch(new int[]{10, 11}, new float[2], 1, new int[2]);
    }

    private static SparseAlignmentTest.Entries entries(int[] ids, float[] lps, int k, int classes) {
        return new SparseAlignmentTest.Entries(ids, lps, k, classes);
    }

    @Test
    void aWrappedTeachersRowsOfTheWrongShapeAreNamed() {
        int[][] ids = {{0, 1, 2, 0, 1, 2}, {0, 1, 2, 0, 1}, {0, 1, 2, 0, 1, 2}};
        float[][] lps = {{-1, -2, -3, -1, -2, -3}, {-1, -2, -3, -1, -2, -3}, {-1, -2, -3, -1, -2}};
        int[] ks = {2, 3, 3};
        String[] expected = {"bad gave top-k rows of k 2 with 6 ids and 6 log-probabilities for 2 rows; expected k 3 and 2 x 3 of each",
                "bad gave top-k rows of k 3 with 5 ids and 6 log-probabilities for 2 rows; expected k 3 and 2 x 3 of each",
                "bad gave top-k rows of k 3 with 6 ids and 5 log-probabilities for 2 rows; expected k 3 and 2 x 3 of each"};
        for (int c = 0; c < 3; c++) {
            int cc = c;
            SparseTeacher bad = new org.distill4j.testing.EntriesTeacher("bad", 5, 3, b -> new SparseTeacher.TopK(ids[cc], lps[cc], ks[cc]));
            SparseTeacher aligned = VocabularyAlignment.align(bad, 7, VocabularyAlignment.Mode.PAD);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> aligned.topK(batch(2)), "case " + c);
            assertEquals(expected[c], e.getMessage());
        }
    }

    @Test
    void idsOutOfRangeOrRepeatedAreNamedWithRowAndSample() {
        float[] lps = {-0.5f, -1, -2, -0.5f, -1, -2};
        int[][] bad = {{0, 1, 2, 3, -2, 4}, {0, 1, 2, 3, 5, 4}, {0, 1, 2, 3, 1, 3}, {0, 1, 2, 3, -1, 4}};
        String[] expected = {"entries: top-k id at row 1 (sample 11), entry 1 is -2, expected a class in [0, 5)",
                "entries: top-k id at row 1 (sample 11), entry 1 is 5, expected a class in [0, 5)",
                "entries: top-k ids of row 1 (sample 11) repeat class 3",
                "entries: top-k id at row 1 (sample 11), entry 1 is -1, expected a class in [0, 5)"};
        for (int c = 0; c < bad.length; c++) {
            SparseTeacher aligned = VocabularyAlignment.align(entries(bad[c], lps, 3, 5), 6, VocabularyAlignment.Mode.PAD);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> aligned.topK(samples10and11()), "case " + c);
            assertEquals(expected[c], e.getMessage());
        }
        // the largest class id is in range, and each row's ids are checked on their own (a class may appear in two rows)
        SparseTeacher.TopK ok = VocabularyAlignment.align(entries(new int[]{4, 0, 1, 4, 0, 1}, lps, 3, 5), 6, VocabularyAlignment.Mode.PAD)
                .topK(batch(2));
        assertArrayEquals(new int[]{4, 0, 1, 5, 4, 0, 1, 5}, ok.ids());
    }

    @Test
    void aRowWithoutMassInTheStudentsVocabularyIsNamed() {
        SparseTeacher none = entries(new int[]{0, 1, 0, 1}, new float[]{-0.1f, -3, NINF, NINF}, 2, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VocabularyAlignment.align(none, 3, VocabularyAlignment.Mode.TRUNCATE).topK(samples10and11()));
        assertEquals("entries: row 1 (sample 11) has no top-k entry of positive probability; expected at least one", e.getMessage());
        SparseTeacher dropped = entries(new int[]{0, 1, 3, 2}, new float[]{-0.1f, -3, -0.2f, -2}, 2, 4);
        e = assertThrows(IllegalArgumentException.class,
                () -> VocabularyAlignment.map(dropped, new int[]{0, 1, -1, -1}, 2).topK(samples10and11()));
        assertEquals("entries: every top-k entry of positive probability of row 1 (sample 11) is of a class the id map drops"
                + " (ids [3, 2]): nothing of its distribution is left in the student's vocabulary", e.getMessage());
    }

    /**
     * TRUNCATE to fewer classes than k: every row keeps its entries below the student's classes, renormalized with the
     * unknown tail, the last row too (float64 reference).
     */
    @Test
    void truncatingBelowKRenormalizesEveryRow() {
        int[] ids = {0, 1, 4, 4, 1, 0, 1, 3, 0};
        float[] lps = {-0.7f, -1.2f, -2.5f, -0.3f, -1.9f, -2.2f, -0.9f, -1.1f, -2.0f};
        SparseTeacher.TopK got = VocabularyAlignment.align(entries(ids, lps, 3, 5), 2, VocabularyAlignment.Mode.TRUNCATE).topK(batch(3));
        assertEquals(2, got.k());
        for (int r = 0; r < 3; r++) {
            double kept = 0;
            double all = 0;
            for (int j = 0; j < 3; j++) {
                all += Math.exp(lps[r * 3 + j]);
                kept += ids[r * 3 + j] < 2 ? Math.exp(lps[r * 3 + j]) : 0;
            }
            double shift = Math.log(kept + Math.max(0, 1 - all));
            int slot = 0;
            for (int j = 0; j < 3; j++) {
                if (ids[r * 3 + j] < 2) {
                    assertEquals(ids[r * 3 + j], got.ids()[r * 2 + slot], "row " + r);
                    assertEquals(lps[r * 3 + j] - shift, got.logProbs()[r * 2 + slot], 1e-6, "row " + r);
                    slot++;
                }
            }
            assertEquals(2, slot);
        }
    }

    @Test
    void theAlignedViewForwardsToItsTeacher() {
        float[] rows = {0.5f, -1, 2, 0.25f};
        SparseTeacher live = TopKTeacher.of(new EnsembleTeacherChecksTest.Named(
                new TeacherCombinatorsTest.Fixed(rows, 4, TeacherValues.LOGITS), "t", "train"), 2);
        SparseTeacher padded = VocabularyAlignment.align(live, 6, VocabularyAlignment.Mode.PAD);
        assertArrayEquals(new float[]{0.5f, -1, 2, 0.25f, NINF, NINF}, padded.outputs(batch(1)), 0f);
        assertArrayEquals(new float[]{0.5f, -1, 2, 0.25f, NINF, NINF}, padded.outputs(batch(1), 3.0), 0f);
        assertEquals(TeacherValues.LOGITS, padded.values());
        assertTrue(padded.hasDenseOutputs());
        assertFalse(VocabularyAlignment.align(EnsembleTeacherChecksTest.entriesOnly(4, 2), 6, VocabularyAlignment.Mode.PAD)
                .hasDenseOutputs());
        assertEquals("[top-2 of [id t]], padd from 4 to 6 classes", padded.identity());
        assertEquals("top-2 of described t, padded from 4 to 6 classes", padded.describe());
        assertTrue(padded.serves(new Dataset("train", new float[1], 1, new int[]{0}, 6)));
        assertFalse(padded.serves(new Dataset("other", new float[1], 1, new int[]{0}, 6)));
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, () -> padded.feature(batch(1), "h"));
        assertEquals("described t exposes no intermediate features", e.getMessage());
        org.distill4j.data.Feature hidden = new org.distill4j.data.Feature(new float[]{0.5f, -2, 7}, 1, new int[]{3});
        SparseTeacher featured = VocabularyAlignment.align(TopKTeacher.of(new Teacher() {
            @Override
            public int classes() {
                return 4;
            }

            @Override
            public TeacherValues values() {
                return TeacherValues.LOGITS;
            }

            @Override
            public float[] outputs(Batch batch) {
                return rows.clone();
            }

            @Override
            public String describe() {
                return "with a feature";
            }

            @Override
            public org.distill4j.data.Feature feature(Batch batch, String name) {
                return hidden;
            }
        }, 2), 5, VocabularyAlignment.Mode.PAD);
        assertEquals(hidden, featured.feature(batch(1), "h"));
    }
}
