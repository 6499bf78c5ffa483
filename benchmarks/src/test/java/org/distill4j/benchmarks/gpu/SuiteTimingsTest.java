package org.distill4j.benchmarks.gpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The statistics the GPU suites write: issue #5's fraction of copy bandwidth divides a method's median GB/s by the
 * copy's, so both must be the same median (for an even count, the mean of the two middle runs, as the methods' own
 * and PyTorch's {@code statistics.median}).
 */
class SuiteTimingsTest {
    @Test
    void copyBandwidthCountsReadAndWriteOverTheMedianRun() {
        long bytes = 1L << 30;
        // runs in any order; median of 4 runs = (0.8 + 0.9) / 2 ms
        double gbps = KdKernelSuite.copyGbps(bytes, new double[] {0.9, 0.7, 1.4, 0.8});
        assertEquals(2.0 * bytes / (0.85e-3) / 1e9, gbps, 1e-9 * gbps);
        // odd count: the middle run
        gbps = KdKernelSuite.copyGbps(bytes, new double[] {0.9, 0.7, 1.4});
        assertEquals(2.0 * bytes / (0.9e-3) / 1e9, gbps, 1e-9 * gbps);
    }

    @Test
    void medianMinAndMaxOfRunsInAnyOrder() {
        double[] runs = {3.0, 1.0, 4.0, 2.0};
        assertArrayEquals(new double[] {2.5, 1.0, 4.0}, Timings.medianMinMax(runs));
        assertArrayEquals(new double[] {3.0, 1.0, 4.0, 2.0}, runs); // left as it was
        assertArrayEquals(new double[] {7.0, 7.0, 7.0}, Timings.medianMinMax(new double[] {7.0}));
        assertArrayEquals(new double[] {2.0, 1.0, 9.0}, Timings.medianMinMax(new double[] {9.0, 1.0, 2.0}));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Timings.medianMinMax(new double[0]));
        assertTrue(e.getMessage().contains("no timed runs"), e.getMessage());
    }
}
