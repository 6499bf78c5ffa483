package org.distill4j.data;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A feature's values must be rows x the per-sample shape; a size that does not fit, or a negative one, is named. */
class FeatureTest {
    @Test
    void valuesMustBeRowsTimesTheShape() {
        Feature f = new Feature(new float[5 * 3 * 2 * 7], 5, new int[]{3, 2, 7});
        assertEquals(5, f.rows());
        assertArrayEquals(new int[]{3, 2, 7}, f.shape());
        new Feature(new float[0], 0, new int[]{13});
        new Feature(new float[4], 4, new int[0]); // a scalar per sample
        for (int n : new int[]{5 * 42 - 1, 5 * 42 + 1, 42, 0}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Feature(new float[n], 5, new int[]{3, 2, 7}));
            assertEquals("feature has " + n + " values, expected 5 x [3, 2, 7]", e.getMessage());
        }
    }

    /** Negative sizes whose product is the value count (-2 rows of -3 values) are not a feature. */
    @Test
    void negativeRowsOrDimensionsAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Feature(new float[6], -2, new int[]{-3}));
        assertTrue(e.getMessage().contains("-2") && e.getMessage().contains("[-3]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Feature(new float[6], 2, new int[]{-1, -3}));
        assertTrue(e.getMessage().contains("[-1, -3]") && e.getMessage().contains("expected"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Feature(new float[0], -1, new int[]{0}));
        assertTrue(e.getMessage().contains("-1"), e.getMessage());
    }
}
