package org.distill4j.data;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Batches of a dataset's rows: rows and labels where they belong, and a bad index or range named with the dataset. */
class BatchTest {
    @Test
    void aBatchHoldsTheRowsItNamesWithTheirLabels() {
        Dataset data = DatasetTest.numbered(11);
        Batch b = Batch.of(data, new int[]{10, 3, 3});
        assertArrayEquals(new int[]{10, 3, 3}, b.indices());
        assertArrayEquals(new int[]{10 % 7, 3, 3}, b.labels());
        assertEquals(10.5f, b.features()[2], 0f);
        assertEquals(3.25f, b.features()[4], 0f);
        Batch r = Batch.range(data, 4, 9);
        assertArrayEquals(new int[]{4, 5, 6, 7, 8}, r.indices());
        assertEquals(0, Batch.range(data, 11, 11).size());
    }

    @Test
    void aSampleIndexOutsideTheDatasetIsNamed() {
        Dataset data = DatasetTest.numbered(11);
        for (int bad : new int[]{11, -1, Integer.MAX_VALUE}) {
            IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> Batch.of(data, new int[]{2, bad}));
            assertTrue(e.getMessage().contains("numbered: sample index " + bad + " (row 1 of the batch) outside [0, 11)"),
                    e.getMessage());
        }
        for (int[] range : new int[][]{{5, 4}, {-1, 3}, {3, 12}}) {
            IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> Batch.range(data, range[0], range[1]));
            assertTrue(e.getMessage().contains("numbered: rows [" + range[0] + ", " + range[1] + ") of 11 samples, expected 0 <= from"
                    + " <= to <= 11"), e.getMessage());
        }
    }

    /** Every value of every row is copied from its sample, and the batch keeps its own copy of the indices and features. */
    @Test
    void aBatchCopiesWholeRows() {
        Dataset data = DatasetTest.numbered(13);
        int[] idx = {12, 0, 7, 7, 3};
        Batch b = Batch.of(data, idx);
        assertEquals(5, b.size());
        assertEquals(data.featureCount(), b.featureCount());
        for (int i = 0; i < idx.length; i++) {
            for (int j = 0; j < data.featureCount(); j++) {
                assertEquals(idx[i] + 0.25f * j, b.features()[i * data.featureCount() + j], 0f, "row " + i + ", feature " + j);
            }
        }
        idx[0] = 1;
        data.features()[12 * data.featureCount()] = -1;
        assertEquals(12, b.indices()[0], "the caller's array changed afterwards");
        assertEquals(12f, b.features()[0], 0f, "the dataset's features changed afterwards");
        Batch r = Batch.range(data, 0, 13);
        assertEquals(13, r.size());
        assertArrayEquals(data.labels(), r.labels());
        assertEquals(0, Batch.range(data, 0, 0).size());
    }

    @Test
    void shapesThatDisagreeAreNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Batch(new int[3], new float[6], 2, new int[2]));
        assertEquals("batch shapes disagree: 3 indices, 2 labels, 6 feature values for 2 features per row", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Batch(new int[2], new float[5], 2, new int[2]));
        assertEquals("batch shapes disagree: 2 indices, 2 labels, 5 feature values for 2 features per row", e.getMessage());
        assertEquals(2, new Batch(new int[2], new float[6], 3, new int[2]).size());
    }

    /**
     * A batch has at least one feature per row: with empty arrays a featureCount of 0 or less agreed with every length
     * and was accepted. An empty batch (no rows) of a positive featureCount stays valid.
     */
    @Test
    void aFeatureCountBelowOneIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Batch(new int[0], new float[0], 0, new int[0]));
        assertEquals("batch featureCount must be > 0, got 0", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Batch(new int[0], new float[0], -3, new int[0]));
        assertEquals("batch featureCount must be > 0, got -3", e.getMessage());
        assertEquals(0, new Batch(new int[0], new float[0], 4, new int[0]).size());
    }
}
