package org.distill4j.loss;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.distill4j.loss.FeatureLossTest.UP;
import static org.distill4j.loss.FeatureLossTest.checkGradient;
import static org.distill4j.loss.FeatureLossTest.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Probabilistic knowledge transfer against a float64 reference written from the formula (cosine kernel (1 + cos)/2,
 * rows normalized to conditional probabilities, beta/b^2 * sum of p log((p + eps)/(q + eps)), the diagonal included),
 * its gradient against central differences of the reference (upstream {@link FeatureLossTest#UP}), on odd batch and
 * feature sizes with student and teacher sizes apart.
 */
class ProbabilisticTransferTest {
    /** Value tolerance (relative): both sides sum in float64. */
    private static final double VALUE_REL = 1e-9;
    /** Central-difference step and gradient tolerance (relative to the largest coordinate) for features of scale ~1. */
    private static final double H = 1e-4;
    private static final double GRAD_REL = 1e-5;
    private static final double EPS = 1e-7;

    /**
     * beta / b^2 * sum_ij p_ij log((p_ij + eps) / (q_ij + eps)). {@code frozen} >= 0: that student sample's unit vector is
     * held at zero, as for a sample whose feature is all zero or negligible.
     */
    static double reference(double[] s, int ds, double[] t, int dt, int b, double beta, int frozen) {
        double[][] q = conditional(s, ds, b, frozen);
        double[][] p = conditional(t, dt, b, -1);
        double sum = 0;
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < b; j++) {
                sum += p[i][j] * Math.log((p[i][j] + EPS) / (q[i][j] + EPS));
            }
        }
        return beta * sum / ((double) b * b);
    }

    /** p(j|i) from the cosine kernel; a sample of norm at most 1e-12 of the largest has a zero unit vector. */
    private static double[][] conditional(double[] f, int d, int b, int frozen) {
        double[][] u = new double[b][d];
        double[] norm = new double[b];
        double largest = 0;
        for (int i = 0; i < b; i++) {
            for (int x = 0; x < d; x++) {
                norm[i] += f[i * d + x] * f[i * d + x];
            }
            norm[i] = Math.sqrt(norm[i]);
            largest = Math.max(largest, norm[i]);
        }
        for (int i = 0; i < b; i++) {
            if (i != frozen && norm[i] > 1e-12 * largest) {
                for (int x = 0; x < d; x++) {
                    u[i][x] = f[i * d + x] / norm[i];
                }
            }
        }
        double[][] k = new double[b][b];
        for (int i = 0; i < b; i++) {
            double rowSum = 0;
            for (int j = 0; j < b; j++) {
                double cos = 0;
                for (int x = 0; x < d; x++) {
                    cos += u[i][x] * u[j][x];
                }
                k[i][j] = (1 + cos) / 2;
                rowSum += k[i][j];
            }
            for (int j = 0; j < b; j++) {
                k[i][j] /= rowSum;
            }
        }
        return k;
    }

    private static LossResult compute(ProbabilisticTransfer pkt, float[] s, int[] sShape, float[] t, int[] tShape, int b, float[] g) {
        return pkt.compute(FeatureBatch.of(b, s, sShape, t, tShape), g, UP);
    }

    private static float[] abs(float[] x) {
        float[] y = x.clone();
        for (int k = 0; k < y.length; k++) {
            y[k] = Math.abs(y[k]);
        }
        return y;
    }

    @Test
    void valueAndGradientMatchTheReferenceOnOddSizes() {
        Random rng = new Random(0x9c7);
        int[][] cases = {{2, 5, 17}, {7, 13, 30}, {13, 9, 3}, {7, 31, 1}, {5, 3, 3}};
        for (int[] c : cases) {
            int b = c[0], ds = c[1], dt = c[2];
            for (double beta : new double[]{ProbabilisticTransfer.DEFAULT_BETA, 0.7}) {
                for (boolean relu : new boolean[]{false, true}) { // signed features; non-negative ones (cosines >= 0)
                    float[] s = randn(rng, b * ds, 1.3);
                    float[] t = randn(rng, b * dt, 0.4);
                    if (relu) {
                        s = abs(s);
                        t = abs(t);
                    }
                    float[] g = new float[s.length];
                    Arrays.fill(g, Float.NaN); // every element must be written
                    LossResult r = compute(new ProbabilisticTransfer(beta), s, new int[]{ds}, t, new int[]{dt}, b, g);
                    double[] tw = FamilyReference.widen(t);
                    double ref = reference(FamilyReference.widen(s), ds, tw, dt, b, beta, -1);
                    String what = "pkt b " + b + " ds " + ds + " dt " + dt + " beta " + beta + (relu ? " relu" : "");
                    assertTrue(ref > 0, what);
                    assertEquals(ref, r.value(), VALUE_REL * ref, what);
                    assertEquals(r.value(), r.terms().get("pkt"), 0.0, what);
                    assertEquals(b, r.rows(), what);
                    checkGradient(x -> reference(x, ds, tw, dt, b, beta, -1), s, g, H, GRAD_REL, what);
                }
            }
        }
    }

    /** A student map (C, H, W) and a teacher vector of another size: only the samples' relations are compared. */
    @Test
    void featuresOfAnyShapeOnEitherSide() {
        Random rng = new Random(11);
        int b = 6;
        float[] s = randn(rng, b * 3 * 5 * 2, 1);
        float[] t = randn(rng, b * 19, 2);
        float[] g = new float[s.length];
        LossResult r = compute(new ProbabilisticTransfer(30000), s, new int[]{3, 5, 2}, t, new int[]{19}, b, g);
        double[] tw = FamilyReference.widen(t);
        double ref = reference(FamilyReference.widen(s), 30, tw, 19, b, 30000, -1);
        assertEquals(ref, r.value(), VALUE_REL * ref);
        checkGradient(x -> reference(x, 30, tw, 19, b, 30000, -1), s, g, H, GRAD_REL, "map student");
        // and a teacher map against a student vector
        float[] g2 = new float[t.length];
        LossResult r2 = compute(new ProbabilisticTransfer(30000), t, new int[]{19}, s, new int[]{3, 5, 2}, b, g2);
        double[] sw = FamilyReference.widen(s);
        double ref2 = reference(tw, 19, sw, 30, b, 30000, -1);
        assertEquals(ref2, r2.value(), VALUE_REL * ref2);
        checkGradient(x -> reference(x, 19, sw, 30, b, 30000, -1), t, g2, H, GRAD_REL, "map teacher");
    }

    /**
     * Scaling the whole student feature by c > 0 (and the teacher's by c') leaves the loss unchanged and divides the
     * gradient by c, at magnitudes from 1e-30 to 1e30 (float features whose squares leave float's range; the loss works
     * in float64). Scaling each sample by its own factor changes nothing either: only directions count.
     */
    @Test
    void theFeaturesScaleIsIgnoredAtExtremeMagnitudes() {
        Random rng = new Random(5);
        int b = 9, ds = 11, dt = 6;
        float[] s = randn(rng, b * ds, 1);
        float[] t = randn(rng, b * dt, 1);
        ProbabilisticTransfer pkt = new ProbabilisticTransfer(30000);
        float[] g = new float[s.length];
        double base = BatchRelationChecks.assertWholeFeatureScaleIgnored(pkt, s, ds, t, dt, b, UP, g);
        assertTrue(base > 0);
        double gMax = 0;
        for (float e : g) {
            gMax = Math.max(gMax, Math.abs(e));
        }
        // each sample by its own factor (1e-5 to 1e5): the same loss; a sample's gradient divided by its factor
        float[] s3 = s.clone();
        float[] t3 = t.clone();
        double[] f = new double[b];
        for (int i = 0; i < b; i++) {
            f[i] = Math.pow(10, -5 + 10 * rng.nextDouble());
            double ft = Math.pow(10, -5 + 10 * rng.nextDouble());
            for (int x = 0; x < ds; x++) {
                s3[i * ds + x] = (float) (s[i * ds + x] * f[i]);
            }
            for (int x = 0; x < dt; x++) {
                t3[i * dt + x] = (float) (t[i * dt + x] * ft);
            }
        }
        float[] g3 = new float[s.length];
        assertEquals(base, compute(pkt, s3, new int[]{ds}, t3, new int[]{dt}, b, g3).value(), 1e-6 * base, "per-sample factors");
        for (int k = 0; k < s.length; k++) {
            double fi = f[k / ds];
            assertEquals(g[k] / fi, g3[k], 1e-4 * gMax / fi, "per-sample factors: gradient at " + k);
        }
    }

    /**
     * The student's samples in the teacher's directions: loss 0. Its gradient there is not exactly 0: the eps inside the
     * logarithm moves the minimum by about eps, so it is of order beta * eps / b, far below the gradient of an unrelated
     * student (checked: below 1e-3 of it).
     */
    @Test
    void theTeachersOwnRelationsCostNothing() {
        Random rng = new Random(3);
        int b = 5, d = 7;
        float[] t = randn(rng, b * d, 1);
        float[] s = t.clone();
        float[] g = new float[s.length];
        ProbabilisticTransfer pkt = new ProbabilisticTransfer(30000);
        LossResult r = compute(pkt, s, new int[]{d}, t, new int[]{d}, b, g);
        assertEquals(0.0, r.value(), 0.0);
        float[] other = randn(rng, b * d, 1);
        float[] gOther = new float[s.length];
        compute(pkt, other, new int[]{d}, t, new int[]{d}, b, gOther);
        double max = 0, maxOther = 0;
        for (int k = 0; k < g.length; k++) {
            max = Math.max(max, Math.abs(g[k]));
            maxOther = Math.max(maxOther, Math.abs(gOther[k]));
        }
        assertTrue(maxOther > 0 && max < 1e-3 * maxOther, "gradient at the teacher's relations " + max + ", elsewhere " + maxOther);
        // rescaled samples in the same directions: the same cosines up to rounding
        for (int k = 0; k < s.length; k++) {
            s[k] *= 4;
        }
        assertEquals(0, compute(pkt, s, new int[]{d}, t, new int[]{d}, b, g).value(), 1e-9);
    }

    /**
     * Exactly opposite samples: a student pair at cosine -1 has q = 0, which without eps would cost infinity wherever the
     * teacher's p is above 0; here the value and gradient are finite and match the reference. A teacher pair at -1 (p = 0)
     * costs nothing.
     */
    @Test
    void oppositeSamplesCostAFiniteAmount() {
        Random rng = new Random(17);
        int b = 7, ds = 5, dt = 9;
        float[] s = randn(rng, b * ds, 1);
        float[] t = randn(rng, b * dt, 1);
        for (int x = 0; x < ds; x++) {
            s[4 * ds + x] = -s[1 * ds + x]; // student samples 1 and 4 opposite
        }
        for (int x = 0; x < dt; x++) {
            t[2 * dt + x] = -3 * t[5 * dt + x]; // teacher samples 2 and 5 opposite
        }
        float[] g = new float[s.length];
        LossResult r = compute(new ProbabilisticTransfer(30000), s, new int[]{ds}, t, new int[]{dt}, b, g);
        double[] tw = FamilyReference.widen(t);
        double ref = reference(FamilyReference.widen(s), ds, tw, dt, b, 30000, -1);
        assertTrue(Double.isFinite(ref) && ref > 0);
        assertEquals(ref, r.value(), VALUE_REL * ref);
        for (float e : g) {
            assertTrue(Float.isFinite(e), "gradient " + e);
        }
        // q = 0 sits at the edge of the eps guard, where the reference curves steeply: a smaller step
        checkGradient(x -> reference(x, ds, tw, dt, b, 30000, -1), s, g, 1e-6, 1e-4, "opposite samples");
    }

    /**
     * A sample whose student feature is all zero (a dead ReLU layer): it has no direction, so its unit vector is zero (its
     * conditional distribution uniform) and it gets gradient 0; the other samples' gradients match the reference with
     * that unit vector held at zero, and nothing is NaN. A zero teacher feature is an ordinary target (a uniform row).
     * Features negligible against the batch's largest count as zero; a whole batch of zeros costs a finite amount with
     * gradient 0.
     */
    @Test
    void zeroFeatures() {
        Random rng = new Random(21);
        int b = 6, ds = 5, dt = 8, dead = 3;
        float[] s = randn(rng, b * ds, 1);
        Arrays.fill(s, dead * ds, (dead + 1) * ds, 0f);
        float[] t = randn(rng, b * dt, 1);
        float[] g = new float[s.length];
        Arrays.fill(g, Float.NaN);
        ProbabilisticTransfer pkt = new ProbabilisticTransfer(30000);
        LossResult r = compute(pkt, s, new int[]{ds}, t, new int[]{dt}, b, g);
        double[] tw = FamilyReference.widen(t);
        assertEquals(reference(FamilyReference.widen(s), ds, tw, dt, b, 30000, dead), r.value(), VALUE_REL * r.value());
        for (int x = 0; x < ds; x++) {
            assertEquals(0f, g[dead * ds + x], "no gradient for the dead sample");
        }
        // the dead sample's coordinates: the reference with its unit vector held at zero (discontinuous at zero otherwise)
        checkGradient(x -> reference(x, ds, tw, dt, b, 30000, dead), s, g, H, GRAD_REL, "dead student sample");

        float[] tDead = t.clone();
        Arrays.fill(tDead, 0, dt, 0f);
        float[] s2 = randn(rng, b * ds, 1);
        float[] g2 = new float[s2.length];
        LossResult r2 = compute(pkt, s2, new int[]{ds}, tDead, new int[]{dt}, b, g2);
        double[] td = FamilyReference.widen(tDead);
        assertEquals(reference(FamilyReference.widen(s2), ds, td, dt, b, 30000, -1), r2.value(), VALUE_REL * r2.value());
        checkGradient(x -> reference(x, ds, td, dt, b, 30000, -1), s2, g2, H, GRAD_REL, "dead teacher sample");

        // a sample so small against the others that normalizing it would blow its gradient up (to infinity in float below
        // about 1e-38): it counts as dead, and every gradient stays finite
        for (float tiny : new float[]{Float.MIN_VALUE, 1e-39f, 1e-30f, 1e-14f}) {
            float[] st = s2.clone();
            for (int x = 0; x < ds; x++) {
                st[dead * ds + x] = tiny * (x + 1);
            }
            float[] gt = new float[st.length];
            LossResult rt = compute(pkt, st, new int[]{ds}, t, new int[]{dt}, b, gt);
            double ref = reference(FamilyReference.widen(st), ds, tw, dt, b, 30000, dead);
            assertEquals(ref, rt.value(), VALUE_REL * ref, "tiny " + tiny);
            for (int k = 0; k < gt.length; k++) {
                assertTrue(Float.isFinite(gt[k]) && Math.abs(gt[k]) < 1e6, "tiny " + tiny + ": gradient " + gt[k]);
                if (k / ds == dead) {
                    assertEquals(0f, gt[k], "tiny " + tiny);
                }
            }
        }

        // every student sample dead: each row uniform, a finite cost, gradient 0
        float[] zeros = new float[b * ds];
        float[] gz = new float[zeros.length];
        Arrays.fill(gz, Float.NaN);
        LossResult rz = compute(pkt, zeros, new int[]{ds}, t, new int[]{dt}, b, gz);
        double refZ = reference(new double[zeros.length], ds, tw, dt, b, 30000, -1);
        assertTrue(refZ > 0);
        assertEquals(refZ, rz.value(), VALUE_REL * refZ);
        for (float e : gz) {
            assertEquals(0f, e);
        }
        // both sides all zero: the same uniform rows, loss 0
        assertEquals(0.0, compute(pkt, zeros, new int[]{ds}, new float[b * dt], new int[]{dt}, b, gz).value(), 0.0);
    }

    /** A batch of one sample is its own only neighbour (p = q = 1), with or without a direction on either side: 0 and 0. */
    @Test
    void aSingleSampleBatchCostsNothing() {
        ProbabilisticTransfer pkt = new ProbabilisticTransfer(30000);
        for (float[][] st : new float[][][]{{{0.3f, -2f, 7f}, {5f, 1f}}, {{0f, 0f, 0f}, {5f, 1f}}, {{0.3f, -2f, 7f}, {0f, 0f}}}) {
            float[] g = {Float.NaN, Float.NaN, Float.NaN};
            LossResult r = pkt.compute(FeatureBatch.of(1, st[0], new int[]{3}, st[1], new int[]{2}), g, UP);
            assertEquals(0.0, r.value(), 0.0);
            assertEquals(1, r.rows());
            for (float e : g) {
                assertEquals(0f, e);
            }
        }
    }

    /** Shapes are checked by the batch, the gradient buffer and the batch size by the loss, each naming what it expected. */
    @Test
    void badShapesAndBatchesAreRefusedByName() {
        Random rng = new Random(8);
        ProbabilisticTransfer pkt = new ProbabilisticTransfer(30000);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> FeatureBatch.of(3, randn(rng, 3 * 7, 1), new int[]{2, 2, 2}, randn(rng, 3 * 5, 1), new int[]{5}));
        assertEquals("student feature has 21 values, expected rows x [2, 2, 2] = 24", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> FeatureBatch.of(3, randn(rng, 3 * 7, 1), new int[]{7}, randn(rng, 3 * 5, 1), new int[]{3, 0, 2}));
        assertEquals("teacher feature shape [3, 0, 2] has a dimension <= 0", e.getMessage());
        FeatureBatch ok = FeatureBatch.of(3, randn(rng, 3 * 7, 1), new int[]{7}, randn(rng, 3 * 5, 1), new int[]{5});
        e = assertThrows(IllegalArgumentException.class, () -> pkt.compute(ok, new float[3 * 5], UP));
        assertEquals("gradient buffer for loss 'pkt' has 15 elements, expected one per student feature value: 21", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> pkt.compute(FeatureBatch.of(46_341,
                randn(rng, 46_341, 1), new int[]{1}, randn(rng, 46_341, 1), new int[]{1}), new float[46_341], UP));
        assertEquals("pkt compares every pair of a batch's samples in b x b matrices; a batch of 46341 samples needs 2147488281"
                + " values each, more than an array holds; use batches of at most 46340", e.getMessage());
    }

    @Test
    void settingsAndBadWeights() {
        assertEquals(java.util.Map.of("beta", 25.0), new ProbabilisticTransfer(25).settings());
        assertEquals("pkt", new ProbabilisticTransfer(0).name());
        for (double bad : new double[]{-1, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ProbabilisticTransfer(bad));
            assertEquals("pkt weight beta must be finite and >= 0, got " + bad, e.getMessage());
        }
    }
}
