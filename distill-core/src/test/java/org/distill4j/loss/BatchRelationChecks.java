package org.distill4j.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checks shared by the feature losses that compare directions of a batch's samples ({@code sp}, {@code pkt}). */
final class BatchRelationChecks {
    private BatchRelationChecks() {
    }

    /**
     * Scaling the whole student feature by c > 0 and the teacher's by c' leaves {@code loss} unchanged (1e-6 relative) and
     * divides its gradient by c (1e-4 of the largest element, over c), for (c, c') from 1e-30 to 1e30: float features whose
     * squares leave float's range, which the loss must handle in float64. {@code s} and {@code t} are flat, {@code ds} and
     * {@code dt} values a sample. Returns the unscaled value and fills {@code g} with its gradient.
     */
    static double assertWholeFeatureScaleIgnored(FeatureLoss loss, float[] s, int ds, float[] t, int dt, int b, float up, float[] g) {
        double base = loss.compute(FeatureBatch.of(b, s, new int[]{ds}, t, new int[]{dt}), g, up).value();
        double gMax = 0;
        for (float e : g) {
            gMax = Math.max(gMax, Math.abs(e));
        }
        double[][] scales = {{1e-30, 1e30}, {1e30, 1e-30}, {3e-7, 250}, {1e15, 1e15}};
        for (double[] c : scales) {
            float[] s2 = new float[s.length];
            float[] t2 = new float[t.length];
            for (int k = 0; k < s.length; k++) {
                s2[k] = (float) (s[k] * c[0]);
            }
            for (int k = 0; k < t.length; k++) {
                t2[k] = (float) (t[k] * c[1]);
            }
            float[] g2 = new float[s.length];
            double scaled = loss.compute(FeatureBatch.of(b, s2, new int[]{ds}, t2, new int[]{dt}), g2, up).value();
            String what = loss.name() + ": student x " + c[0] + ", teacher x " + c[1];
            assertEquals(base, scaled, 1e-6 * base, what);
            for (int k = 0; k < s.length; k++) {
                assertTrue(Float.isFinite(g2[k]), what + ": finite gradient at " + k);
                assertEquals(g[k] / c[0], g2[k], 1e-4 * gMax / c[0], what + ": gradient at " + k);
            }
        }
        return base;
    }
}
