package org.distill4j.testing;

import java.util.Random;

/** Fresh random test inputs (never zeros), seeded per test so failures reproduce. */
public final class Inputs {
    private Inputs() {
    }

    /** Normal logits with standard deviation {@code scale}, plus a random offset per row. */
    public static float[] logits(Random rng, int rows, int v, double scale) {
        float[] x = new float[rows * v];
        for (int r = 0; r < rows; r++) {
            double shift = rng.nextGaussian() * 3;
            for (int i = 0; i < v; i++) {
                x[r * v + i] = (float) (shift + scale * rng.nextGaussian());
            }
        }
        return x;
    }

    /** Rows of probabilities: softmax of random logits, computed in double and rounded to float. */
    public static float[] probabilities(Random rng, int rows, int v, double scale) {
        float[] z = logits(rng, rows, v, scale);
        float[] p = new float[z.length];
        for (int r = 0; r < rows; r++) {
            double[] lp = Float64Reference.logSoftmax(z, r * v, v, 1.0);
            for (int i = 0; i < v; i++) {
                p[r * v + i] = (float) Math.exp(lp[i]);
            }
        }
        return p;
    }

    public static int[] labels(Random rng, int rows, int v) {
        int[] y = new int[rows];
        for (int r = 0; r < rows; r++) {
            y[r] = rng.nextInt(v);
        }
        return y;
    }

    /** A buffer filled with NaN, so an element a kernel forgets to write fails every comparison. */
    public static float[] poisoned(int n) {
        float[] g = new float[n];
        java.util.Arrays.fill(g, Float.NaN);
        return g;
    }
}
