package org.distill4j.benchmarks.gpu;

import java.util.Arrays;

/** The statistics the GPU suites write for a set of timed runs, one definition for every suite and the copy bandwidth. */
final class Timings {
    private Timings() {
    }

    /**
     * {median, min, max} of {@code ms} (any order, left as it is): for an even count the median is the mean of the
     * two middle values, as Python's {@code statistics.median} in the PyTorch scripts beside the suites.
     */
    static double[] medianMinMax(double[] ms) {
        if (ms.length == 0) {
            throw new IllegalArgumentException("no timed runs to take a median of");
        }
        double[] t = ms.clone();
        Arrays.sort(t);
        int n = t.length;
        double median = n % 2 == 1 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
        return new double[] {median, t[0], t[n - 1]};
    }
}
