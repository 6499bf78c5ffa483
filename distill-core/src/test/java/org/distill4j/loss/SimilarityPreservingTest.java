package org.distill4j.loss;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.distill4j.loss.FeatureLossTest.UP;
import static org.distill4j.loss.FeatureLossTest.checkGradient;
import static org.distill4j.loss.FeatureLossTest.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Similarity-preserving KD against a float64 reference written from the paper's formula, its gradient against central
 * differences of the reference (upstream {@link FeatureLossTest#UP}), on odd batch and feature sizes.
 */
class SimilarityPreservingTest {
    /** Value tolerance (relative): both sides sum in float64. */
    private static final double VALUE_REL = 1e-9;

    /**
     * gamma / b^2 * sum_ij (G~s_ij - G~t_ij)^2 with G~ = rows of Q Q^T over their norms. {@code frozen} >= 0: that sample's
     * row of G~s is held at zero, as for a sample whose feature is all zero.
     */
    static double reference(double[] s, int ds, double[] t, int dt, int b, double gamma, int frozen) {
        double[][] gs = normalized(s, ds, b);
        double[][] gt = normalized(t, dt, b);
        double sum = 0;
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < b; j++) {
                double si = i == frozen ? 0 : gs[i][j];
                sum += (si - gt[i][j]) * (si - gt[i][j]);
            }
        }
        return gamma * sum / (b * b);
    }

    private static double[][] normalized(double[] q, int d, int b) {
        double[][] g = new double[b][b];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < b; j++) {
                for (int x = 0; x < d; x++) {
                    g[i][j] += q[i * d + x] * q[j * d + x];
                }
            }
        }
        for (double[] row : g) {
            double norm = 0;
            for (double e : row) {
                norm += e * e;
            }
            norm = Math.sqrt(norm);
            for (int j = 0; j < b && norm > 0; j++) {
                row[j] /= norm;
            }
        }
        return g;
    }

    private static LossResult compute(SimilarityPreserving sp, float[] s, int[] sShape, float[] t, int[] tShape, int b, float[] g) {
        return sp.compute(FeatureBatch.of(b, s, sShape, t, tShape), g, UP);
    }

    @Test
    void valueAndGradientMatchTheReferenceOnOddSizes() {
        Random rng = new Random(0x5b);
        int[][] cases = {{2, 5, 17}, {3, 1, 4}, {7, 13, 30}, {13, 9, 3}, {5, 31, 31}};
        for (int[] c : cases) {
            int b = c[0], ds = c[1], dt = c[2];
            for (double gamma : new double[]{SimilarityPreserving.DEFAULT_GAMMA, 0.7}) {
                float[] s = randn(rng, b * ds, 1.3);
                float[] t = randn(rng, b * dt, 0.4);
                float[] g = new float[s.length];
                java.util.Arrays.fill(g, Float.NaN); // every element must be written
                SimilarityPreserving sp = new SimilarityPreserving(gamma);
                LossResult r = compute(sp, s, new int[]{ds}, t, new int[]{dt}, b, g);
                double ref = reference(FamilyReference.widen(s), ds, FamilyReference.widen(t), dt, b, gamma, -1);
                String what = "sp b " + b + " ds " + ds + " dt " + dt + " gamma " + gamma;
                assertTrue(ref > 0, what);
                assertEquals(ref, r.value(), VALUE_REL * ref, what);
                assertEquals(r.value(), r.terms().get("sp"), 0.0, what);
                assertEquals(b, r.rows(), what);
                checkGradient(x -> reference(x, ds, FamilyReference.widen(t), dt, b, gamma, -1), s, g, 1e-4, 1e-5, what);
            }
        }
    }

    /** A teacher map (C, H, W) and a student vector: shapes may differ, only the samples' relations are compared. */
    @Test
    void featuresOfAnyShapeOnEitherSide() {
        Random rng = new Random(11);
        int b = 6;
        float[] s = randn(rng, b * 3 * 5 * 2, 1);
        float[] t = randn(rng, b * 19, 2);
        float[] g = new float[s.length];
        LossResult r = compute(new SimilarityPreserving(3000), s, new int[]{3, 5, 2}, t, new int[]{19}, b, g);
        double ref = reference(FamilyReference.widen(s), 30, FamilyReference.widen(t), 19, b, 3000, -1);
        assertEquals(ref, r.value(), VALUE_REL * ref);
        checkGradient(x -> reference(x, 30, FamilyReference.widen(t), 19, b, 3000, -1), s, g, 1e-4, 1e-5, "map student");
    }

    /**
     * Scaling the whole student feature by c > 0 (and the teacher's by c') leaves the loss unchanged and divides the
     * gradient by c, at magnitudes from 1e-30 to 1e30 (float features whose squares leave float's range; the loss works
     * in float64).
     */
    @Test
    void theFeaturesScaleIsIgnoredAtExtremeMagnitudes() {
        Random rng = new Random(5);
        int b = 9, ds = 11, dt = 6;
        float[] s = randn(rng, b * ds, 1);
        float[] t = randn(rng, b * dt, 1);
        SimilarityPreserving sp = new SimilarityPreserving(3000);
        assertTrue(BatchRelationChecks.assertWholeFeatureScaleIgnored(sp, s, ds, t, dt, b, UP, new float[s.length]) > 0);
    }

    /** Student features equal to the teacher's, rescaled: loss 0, gradient 0. */
    @Test
    void theTeachersOwnRelationsCostNothing() {
        Random rng = new Random(3);
        int b = 5, d = 7;
        float[] t = randn(rng, b * d, 1);
        float[] s = t.clone();
        for (int k = 0; k < s.length; k++) {
            s[k] *= 4; // rescaling the feature changes nothing
        }
        float[] g = new float[s.length];
        LossResult r = compute(new SimilarityPreserving(3000), s, new int[]{d}, t, new int[]{d}, b, g);
        assertEquals(0, r.value(), 1e-9);
        for (float e : g) {
            assertEquals(0, e, 1e-5);
        }
    }

    /**
     * A sample whose student feature is all zero (a dead ReLU layer): its row of G~ is zero and passes no gradient, the
     * other samples' gradients match the reference with that row held at zero, and nothing is NaN. A zero teacher feature
     * is an ordinary target. A batch of one sample costs nothing.
     */
    @Test
    void zeroFeaturesAndSingleSampleBatches() {
        Random rng = new Random(21);
        int b = 6, ds = 5, dt = 8, dead = 3;
        float[] s = randn(rng, b * ds, 1);
        java.util.Arrays.fill(s, dead * ds, (dead + 1) * ds, 0f);
        float[] t = randn(rng, b * dt, 1);
        float[] g = new float[s.length];
        SimilarityPreserving sp = new SimilarityPreserving(3000);
        LossResult r = compute(sp, s, new int[]{ds}, t, new int[]{dt}, b, g);
        double[] tw = FamilyReference.widen(t);
        assertEquals(reference(FamilyReference.widen(s), ds, tw, dt, b, 3000, dead), r.value(), 1e-9 * r.value());
        // the dead sample's coordinates: the reference with its row held at zero (it is discontinuous at zero otherwise)
        checkGradient(x -> reference(x, ds, tw, dt, b, 3000, dead), s, g, 1e-4, 1e-5, "dead student sample");

        float[] tDead = t.clone();
        java.util.Arrays.fill(tDead, 0, dt, 0f);
        float[] s2 = randn(rng, b * ds, 1);
        float[] g2 = new float[s2.length];
        LossResult r2 = compute(sp, s2, new int[]{ds}, tDead, new int[]{dt}, b, g2);
        double[] td = FamilyReference.widen(tDead);
        assertEquals(reference(FamilyReference.widen(s2), ds, td, dt, b, 3000, -1), r2.value(), 1e-9 * r2.value());
        checkGradient(x -> reference(x, ds, td, dt, b, 3000, -1), s2, g2, 1e-4, 1e-5, "dead teacher sample");

        // a sample so small against the others that normalizing its row would blow its gradient up (to infinity in float
        // below about 1e-38): its row counts as zero, as a dead sample's does, and every gradient stays finite
        for (float tiny : new float[]{Float.MIN_VALUE, 1e-39f, 1e-30f, 1e-14f}) {
            float[] st = s2.clone();
            for (int x = 0; x < ds; x++) {
                st[dead * ds + x] = tiny * (x + 1);
            }
            float[] gt = new float[st.length];
            LossResult rt = compute(sp, st, new int[]{ds}, t, new int[]{dt}, b, gt);
            double ref = reference(FamilyReference.widen(st), ds, tw, dt, b, 3000, dead);
            assertEquals(ref, rt.value(), 1e-9 * ref, "tiny " + tiny);
            for (float e : gt) {
                assertTrue(Float.isFinite(e) && Math.abs(e) < 1e6, "tiny " + tiny + ": gradient " + e);
            }
        }

        float[] one = {Float.NaN, Float.NaN};
        LossResult single = sp.compute(FeatureBatch.of(1, new float[]{0.3f, -2f}, new int[]{2}, new float[]{5f}, new int[]{1}), one, UP);
        assertEquals(0.0, single.value());
        assertEquals(0f, one[0]);
        assertEquals(0f, one[1]);
        for (float[][] st : new float[][][]{{{0f, 0f}, {5f}}, {{0.3f, -2f}, {0f}}}) { // a dead side: still nothing to relate
            assertEquals(0.0, sp.compute(FeatureBatch.of(1, st[0], new int[]{2}, st[1], new int[]{1}), new float[2], UP).value());
        }
        IllegalArgumentException big = assertThrows(IllegalArgumentException.class, () -> sp.compute(FeatureBatch.of(46_341,
                randn(rng, 46_341, 1), new int[]{1}, randn(rng, 46_341, 1), new int[]{1}), new float[46_341], UP));
        assertEquals("sp compares every pair of a batch's samples in b x b matrices; a batch of 46341 samples needs 2147488281"
                + " values each, more than an array holds; use batches of at most 46340", big.getMessage());
    }

    @Test
    void settingsAndBadWeights() {
        assertEquals(java.util.Map.of("gamma", 25.0), new SimilarityPreserving(25).settings());
        for (double bad : new double[]{-1, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new SimilarityPreserving(bad));
            assertEquals("sp weight gamma must be finite and >= 0, got " + bad, e.getMessage());
        }
    }
}
