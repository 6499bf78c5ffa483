package org.distill4j.cuda;

import org.distill4j.testing.Float64Reference;

/** Inputs the kernel tests share: a teacher's top-k rows, float-to-double widening. */
public final class KernelInputs {
    private KernelInputs() {
    }

    /** A teacher's top-k ids and true log-probabilities per row, largest first. */
    record TopK(int[] ids, float[] logProbs) {
    }

    static TopK topK(float[] teacherLogits, int rows, int v, int k) {
        int[] ids = new int[rows * k];
        float[] lps = new float[rows * k];
        for (int r = 0; r < rows; r++) {
            double[] logP = Float64Reference.logSoftmax(teacherLogits, r * v, v, 1.0);
            Integer[] order = new Integer[v];
            for (int i = 0; i < v; i++) {
                order[i] = i;
            }
            java.util.Arrays.sort(order, (a, c) -> Double.compare(logP[c], logP[a]));
            for (int j = 0; j < k; j++) {
                ids[r * k + j] = order[j];
                lps[r * k + j] = (float) logP[order[j]];
            }
        }
        return new TopK(ids, lps);
    }

    /** The rows {@code keep} of a row-major [rows, v] array, in that order. */
    public static float[] rows(float[] x, int[] keep, int v) {
        float[] out = new float[keep.length * v];
        for (int k = 0; k < keep.length; k++) {
            System.arraycopy(x, keep[k] * v, out, k * v, v);
        }
        return out;
    }

    /** The entries {@code keep} of {@code x}, in that order. */
    public static int[] pick(int[] x, int[] keep) {
        int[] out = new int[keep.length];
        for (int k = 0; k < keep.length; k++) {
            out[k] = x[keep[k]];
        }
        return out;
    }

    public static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }
}
