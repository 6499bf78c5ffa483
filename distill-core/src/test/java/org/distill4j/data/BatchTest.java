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
}
