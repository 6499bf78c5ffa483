package org.distill4j.loss;

import org.distill4j.testing.Inputs;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Feature losses against float64 references, gradients against central differences of the references. */
class FeatureLossTest {
    static final float UP = 0.61f;

    static float[] randn(Random rng, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (scale * rng.nextGaussian());
        }
        return x;
    }

    /** Compares the gradient with UP * central differences of the reference on every coordinate. */
    static void checkGradient(FamilyReference.Value ref, float[] x, float[] grad, double h, double rel, String what) {
        double[] s = FamilyReference.widen(x);
        double[] fd = new double[s.length];
        double max = 0;
        for (int k = 0; k < s.length; k++) {
            fd[k] = UP * FamilyReference.centralDifference(ref, s, k, h);
            max = Math.max(max, Math.abs(fd[k]));
        }
        assertTrue(max > 0, what + ": the gradient is not identically zero");
        for (int k = 0; k < s.length; k++) {
            double tol = rel * max + 1e-5 * Math.abs(fd[k]) + 1e-12;
            if (!(Math.abs(fd[k] - grad[k]) <= tol)) {
                fail(what + ": gradient at " + k + " is " + grad[k] + ", central difference " + fd[k] + " (tol " + tol + ")");
            }
        }
    }

    // ---------- hint ----------

    static double hintRef(double[] s, float[] t, double[] w, double[] b, int n, int ds, int dt) {
        double total = 0;
        for (int r = 0; r < n; r++) {
            double sq = 0;
            for (int o = 0; o < dt; o++) {
                double acc = b[o];
                for (int i = 0; i < ds; i++) {
                    acc += w[o * ds + i] * s[r * ds + i];
                }
                double e = acc - t[r * dt + o];
                sq += e * e;
            }
            total += sq / dt;
        }
        return total / n;
    }

    @Test
    void hintValueAndGradientsMatchTheReference() {
        Random rng = new Random(1);
        int n = 5;
        int ds = 7;
        int dt = 11;
        HintLoss hint = new HintLoss(ds, dt, 1e-2, 3);
        float[] s = randn(rng, n * ds, 1.5);
        float[] t = randn(rng, n * dt, 1.5);
        double[] bias = new double[dt];
        for (int i = 0; i < dt; i++) {
            bias[i] = rng.nextGaussian() * 0.3;
        }
        hint.setParameters(hint.weights(), bias);
        double[] w = hint.weights();
        float[] g = Inputs.poisoned(n * ds);
        LossResult r = hint.compute(FeatureBatch.of(n, s, new int[]{ds}, t, new int[]{dt}), g, UP);
        assertEquals(hintRef(FamilyReference.widen(s), t, w, bias, n, ds, dt), r.value(), 1e-6 * r.value());
        checkGradient(x -> hintRef(x, t, w, bias, n, ds, dt), s, g, 1e-4, 1e-6, "hint d/ds");
        double[] gw = hint.lastGradients()[0];
        double[] gb = hint.lastGradients()[1];
        double[] sd = FamilyReference.widen(s);
        for (int k = 0; k < w.length; k += 5) {
            double fd = UP * FamilyReference.centralDifference(x -> hintRef(sd, t, x, bias, n, ds, dt), w, k, 1e-5);
            assertEquals(fd, gw[k], 1e-6 * Math.max(1, Math.abs(fd)), "d/dW " + k);
        }
        for (int k = 0; k < dt; k++) {
            double fd = UP * FamilyReference.centralDifference(x -> hintRef(sd, t, w, x, n, ds, dt), bias, k, 1e-5);
            assertEquals(fd, gb[k], 1e-6 * Math.max(1, Math.abs(fd)), "d/db " + k);
        }
    }

    @Test
    void hintRegressorLearnsALinearMap() {
        Random rng = new Random(2);
        int n = 64;
        int ds = 6;
        int dt = 9;
        float[] a = randn(rng, dt * ds, 1);
        float[] s = randn(rng, n * ds, 1);
        float[] t = new float[n * dt];
        for (int r = 0; r < n; r++) {
            for (int o = 0; o < dt; o++) {
                double acc = 0;
                for (int i = 0; i < ds; i++) {
                    acc += a[o * ds + i] * s[r * ds + i];
                }
                t[r * dt + o] = (float) acc;
            }
        }
        HintLoss hint = new HintLoss(ds, dt, 3e-2, 5);
        FeatureBatch b = FeatureBatch.of(n, s, new int[]{ds}, t, new int[]{dt});
        float[] g = new float[n * ds];
        double first = hint.compute(b, g, 1f).value();
        double last = first;
        for (int i = 0; i < 500; i++) {
            hint.step();
            last = hint.compute(b, g, 1f).value();
        }
        assertTrue(last < 1e-3 * first, "the regressor fits the map: " + first + " -> " + last);
        assertEquals(ds * dt + dt, hint.parameterCount());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> hint.compute(FeatureBatch.of(n, t, new int[]{dt}, s, new int[]{ds}), new float[n * dt], 1f));
        assertTrue(e.getMessage().contains("maps 6 student values to 9 teacher values, but the batch has 9 and 6"), e.getMessage());
    }

    // ---------- attention transfer ----------

    static double atRef(double[] s, float[] t, int n, int cs, int ct, int hw, double beta) {
        double total = 0;
        for (int r = 0; r < n; r++) {
            double[] as = attention(s, r * cs * hw, cs, hw);
            double[] at = attention(FamilyReference.widen(t), r * ct * hw, ct, hw);
            double d = 0;
            for (int k = 0; k < hw; k++) {
                d += (as[k] - at[k]) * (as[k] - at[k]);
            }
            total += d / hw;
        }
        return beta / 2 * total / n;
    }

    static double[] attention(double[] x, int off, int c, int hw) {
        double[] m = new double[hw];
        for (int ch = 0; ch < c; ch++) {
            for (int k = 0; k < hw; k++) {
                m[k] += x[off + ch * hw + k] * x[off + ch * hw + k] / c;
            }
        }
        double norm = 0;
        for (double v : m) {
            norm += v * v;
        }
        norm = Math.max(Math.sqrt(norm), 1e-12);
        for (int k = 0; k < hw; k++) {
            m[k] /= norm;
        }
        return m;
    }

    @Test
    void attentionTransferMatchesTheReferenceOnOddShapes() {
        Random rng = new Random(3);
        int n = 3;
        int cs = 3;
        int ct = 6;
        int h = 5;
        int w = 7;
        float[] s = randn(rng, n * cs * h * w, 1.3);
        float[] t = randn(rng, n * ct * h * w, 0.7);
        AttentionTransfer at = new AttentionTransfer(1000);
        float[] g = Inputs.poisoned(s.length);
        LossResult r = at.compute(FeatureBatch.of(n, s, new int[]{cs, h, w}, t, new int[]{ct, h, w}), g, UP);
        assertEquals(atRef(FamilyReference.widen(s), t, n, cs, ct, h * w, 1000), r.value(), 1e-6 * r.value());
        checkGradient(x -> atRef(x, t, n, cs, ct, h * w, 1000), s, g, 1e-4, 1e-5, "at");
    }

    /**
     * A student map so faint that its attention norm is below the floor (1e-12, as F.normalize): the map is divided by
     * the constant floor, and the gradient is that of the floored function (no projection through the norm).
     */
    @Test
    void attentionTransferGradientBelowTheNormFloor() {
        Random rng = new Random(31);
        int n = 2;
        int cs = 3;
        int ct = 2;
        int h = 5;
        int w = 7;
        float[] s = randn(rng, n * cs * h * w, 2e-7);
        float[] t = randn(rng, n * ct * h * w, 1.1);
        double normS = 0;
        for (int r = 0; r < n; r++) {
            double[] m = new double[h * w];
            for (int c = 0; c < cs; c++) {
                for (int k = 0; k < h * w; k++) {
                    double v = s[(r * cs + c) * h * w + k];
                    m[k] += v * v / cs;
                }
            }
            double ss = 0;
            for (double v : m) {
                ss += v * v;
            }
            normS = Math.max(normS, Math.sqrt(ss));
        }
        assertTrue(normS < AttentionTransfer.NORM_FLOOR && normS > 1e-3 * AttentionTransfer.NORM_FLOOR,
                "every student map is below the floor, not far below: " + normS);
        AttentionTransfer at = new AttentionTransfer(1000);
        float[] g = Inputs.poisoned(s.length);
        LossResult r = at.compute(FeatureBatch.of(n, s, new int[]{cs, h, w}, t, new int[]{ct, h, w}), g, UP);
        assertEquals(atRef(FamilyReference.widen(s), t, n, cs, ct, h * w, 1000), r.value(), 1e-9 * r.value());
        checkGradient(x -> atRef(x, t, n, cs, ct, h * w, 1000), s, g, 1e-11, 1e-5, "at below the norm floor");
    }

    @Test
    void attentionTransferChecksShapesAndIgnoresTeacherScale() {
        Random rng = new Random(4);
        float[] s = randn(rng, 2 * 4 * 3 * 3, 1);
        float[] t = randn(rng, 2 * 2 * 3 * 3, 1);
        float[] t5 = t.clone();
        for (int i = 0; i < t5.length; i++) {
            t5[i] *= 5;
        }
        AttentionTransfer at = new AttentionTransfer(1000);
        double a = at.compute(FeatureBatch.of(2, s, new int[]{4, 3, 3}, t, new int[]{2, 3, 3}), new float[s.length], 1f).value();
        double b = at.compute(FeatureBatch.of(2, s, new int[]{4, 3, 3}, t5, new int[]{2, 3, 3}), new float[s.length], 1f).value();
        assertEquals(a, b, 1e-6 * a, "attention maps are normalized");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> at.compute(FeatureBatch.of(2, s, new int[]{4, 3, 3}, new float[2 * 2 * 3 * 4], new int[]{2, 3, 4}), new float[s.length], 1f));
        assertTrue(e.getMessage().contains("student maps are 3x3, teacher maps 3x4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> at.compute(FeatureBatch.of(2, s, new int[]{36}, t, new int[]{18}), new float[s.length], 1f));
        assertTrue(e.getMessage().contains("needs activation maps {C, H, W}"), e.getMessage());
        float[] zero = new float[s.length];
        float[] g = Inputs.poisoned(s.length);
        at.compute(FeatureBatch.of(2, zero, new int[]{4, 3, 3}, t, new int[]{2, 3, 3}), g, 1f);
        for (float x : g) {
            assertEquals(0f, x, 0f, "an all-zero map has no attention to move");
        }
    }

    // ---------- RKD ----------

    static double rkdRef(double[] s, float[] tf, int n, int ds, int dt, double wd, double wa) {
        double[] t = FamilyReference.widen(tf);
        return wd * distRef(s, t, n, ds, dt) + wa * angleRef(s, t, n, ds, dt);
    }

    /** Smooth L1 at delta 1, written out here so that the reference does not share the code it checks. */
    static double huberRef(double x) {
        return Math.abs(x) < 1 ? 0.5 * x * x : Math.abs(x) - 0.5;
    }

    static double dist(double[] x, int d, int i, int j) {
        double ss = 0;
        for (int c = 0; c < d; c++) {
            ss += (x[i * d + c] - x[j * d + c]) * (x[i * d + c] - x[j * d + c]);
        }
        return Math.sqrt(ss);
    }

    static double distRef(double[] s, double[] t, int n, int ds, int dt) {
        double mus = 0;
        double mut = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (i != j) {
                    mus += dist(s, ds, i, j);
                    mut += dist(t, dt, i, j);
                }
            }
        }
        mus /= n * (n - 1);
        mut /= n * (n - 1);
        if (mus == 0 || mut == 0) {
            return 0; // every sample at one point: no distance relation
        }
        double loss = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (i != j) {
                    loss += huberRef(dist(s, ds, i, j) / mus - dist(t, dt, i, j) / mut);
                }
            }
        }
        return loss / (n * (n - 1));
    }

    static double cosAngle(double[] x, int d, int i, int j, int k) {
        double dot = 0;
        for (int c = 0; c < d; c++) {
            dot += (x[j * d + c] - x[i * d + c]) * (x[k * d + c] - x[i * d + c]);
        }
        double norms = dist(x, d, i, j) * dist(x, d, i, k);
        return norms == 0 ? 0 : dot / norms; // a coincident sample's unit vector is 0, as RelationalKd documents
    }

    static double angleRef(double[] s, double[] t, int n, int ds, int dt) {
        double loss = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                for (int k = 0; k < n; k++) {
                    if (j != i && k != i) {
                        loss += huberRef(cosAngle(s, ds, i, j, k) - cosAngle(t, dt, i, j, k));
                    }
                }
            }
        }
        return loss / (n * (double) (n - 1) * (n - 1));
    }

    @Test
    void rkdMatchesTheReferenceOnOddSizes() {
        Random rng = new Random(5);
        int n = 7;
        int ds = 5;
        int dt = 11;
        float[] s = randn(rng, n * ds, 1);
        float[] t = randn(rng, n * dt, 3);
        for (double[] weights : new double[][]{{25, 50}, {1, 0}, {0, 1}}) {
            RelationalKd rkd = new RelationalKd(weights[0], weights[1]);
            float[] g = Inputs.poisoned(s.length);
            LossResult r = rkd.compute(FeatureBatch.of(n, s, new int[]{ds}, t, new int[]{dt}), g, UP);
            double ref = rkdRef(FamilyReference.widen(s), t, n, ds, dt, weights[0], weights[1]);
            assertEquals(ref, r.value(), 1e-9 * ref, "rkd value, weights " + weights[0] + "/" + weights[1]);
            checkGradient(x -> rkdRef(x, t, n, ds, dt, weights[0], weights[1]), s, g, 1e-5, 1e-5,
                    "rkd weights " + weights[0] + "/" + weights[1]);
        }
    }

    @Test
    void rkdIsInvariantToTranslationAndToTheTeachersScale() {
        Random rng = new Random(6);
        int n = 6;
        float[] s = randn(rng, n * 4, 1);
        float[] t = randn(rng, n * 8, 1);
        float[] moved = s.clone();
        float[] tBig = t.clone();
        for (int i = 0; i < moved.length; i++) {
            moved[i] += 3.25f * ((i % 4) + 1);
        }
        for (int i = 0; i < tBig.length; i++) {
            tBig[i] *= 7;
        }
        RelationalKd rkd = new RelationalKd(25, 50);
        double a = rkd.compute(FeatureBatch.of(n, s, new int[]{4}, t, new int[]{8}), new float[s.length], 1f).value();
        double b = rkd.compute(FeatureBatch.of(n, moved, new int[]{4}, tBig, new int[]{8}), new float[s.length], 1f).value();
        assertEquals(a, b, 1e-5 * a);
        assertEquals(0.0, rkd.compute(FeatureBatch.of(n, t, new int[]{8}, tBig, new int[]{8}), new float[t.length], 1f).value(), 1e-9,
                "a student with the teacher's relations has zero loss");
        // a batch of two samples has a pair but no triplet: the distance term alone; one sample: no relation, 0
        float[] s2 = randn(rng, 8, 1);
        float[] t2 = randn(rng, 16, 1);
        float[] g2 = new float[8];
        LossResult two = rkd.compute(FeatureBatch.of(2, s2, new int[]{4}, t2, new int[]{8}), g2, UP);
        double distanceOnly = rkdRef(FamilyReference.widen(s2), t2, 2, 4, 8, 25, 0);
        assertEquals(distanceOnly, two.value(), 1e-9 * distanceOnly + 1e-12);
        assertEquals(0.0, two.terms().get("rkd-angle"));
        float[] g2d = new float[8];
        new RelationalKd(25, 0).compute(FeatureBatch.of(2, s2, new int[]{4}, t2, new int[]{8}), g2d, UP);
        assertArrayEquals(g2d, g2, "the gradient of the distance term alone");
        float[] g1 = {Float.NaN, Float.NaN, Float.NaN, Float.NaN};
        LossResult one = rkd.compute(FeatureBatch.of(1, java.util.Arrays.copyOf(s2, 4), new int[]{4}, java.util.Arrays.copyOf(t2, 8),
                new int[]{8}), g1, UP);
        assertEquals(0.0, one.value());
        assertArrayEquals(new float[4], g1, "one sample: no gradient");
    }

    /** Three samples, the fewest with an angle: one triangle seen from each corner. */
    @Test
    void rkdOfThreeSamples() {
        Random rng = new Random(8);
        int n = 3;
        float[] s = randn(rng, n * 5, 1);
        float[] t = randn(rng, n * 2, 2);
        for (double[] w : new double[][]{{25, 50}, {0, 1}}) {
            float[] g = Inputs.poisoned(s.length);
            LossResult r = new RelationalKd(w[0], w[1]).compute(FeatureBatch.of(n, s, new int[]{5}, t, new int[]{2}), g, UP);
            double ref = rkdRef(FamilyReference.widen(s), t, n, 5, 2, w[0], w[1]);
            assertTrue(ref > 0, "a student triangle of another shape: " + ref);
            assertEquals(ref, r.value(), 1e-9 * ref, "rkd of 3 samples, weights " + w[0] + "/" + w[1]);
            checkGradient(x -> rkdRef(x, t, n, 5, 2, w[0], w[1]), s, g, 1e-5, 1e-5, "rkd of 3 samples, weights " + w[0] + "/" + w[1]);
        }
    }

    /**
     * Coincident student samples, a pair and a collapsed student (every sample at one point): their distance is 0 and
     * their unit vector 0, as documented, so the value is the reference's with those conventions (a collapsed student
     * has no distance relation: that term is 0) and the gradient is finite.
     */
    @Test
    void coincidentStudentSamplesKeepTheValueFiniteAndConventional() {
        Random rng = new Random(9);
        int n = 5;
        int ds = 3;
        int dt = 4;
        float[] t = randn(rng, n * dt, 1);
        float[] pair = randn(rng, n * ds, 1);
        System.arraycopy(pair, ds, pair, 3 * ds, ds); // samples 1 and 3 coincide
        float[] collapsed = new float[n * ds];
        for (int i = 0; i < collapsed.length; i++) {
            collapsed[i] = 0.75f - (i % ds);
        }
        for (float[] s : new float[][]{pair, collapsed}) {
            String what = s == pair ? "a coincident pair" : "a collapsed student";
            for (double[] w : new double[][]{{25, 50}, {1, 0}, {0, 1}}) {
                float[] g = Inputs.poisoned(s.length);
                LossResult r = new RelationalKd(w[0], w[1]).compute(FeatureBatch.of(n, s, new int[]{ds}, t, new int[]{dt}), g, UP);
                double ref = rkdRef(FamilyReference.widen(s), t, n, ds, dt, w[0], w[1]);
                assertEquals(ref, r.value(), 1e-9 * ref, what + ", weights " + w[0] + "/" + w[1]);
                for (float x : g) {
                    assertTrue(Float.isFinite(x), what + ": gradient " + java.util.Arrays.toString(g));
                }
            }
            if (s == collapsed) {
                LossResult r = new RelationalKd(25, 50).compute(FeatureBatch.of(n, s, new int[]{ds}, t, new int[]{dt}), new float[n * ds], UP);
                assertEquals(0.0, r.terms().get("rkd-distance"), what + ": no distance relation");
                assertTrue(r.terms().get("rkd-angle") > 0, what + ": the teacher's angles are still to be matched");
            }
        }
        // a collapsed teacher (every sample at one point) has no distance relation to teach either
        float[] tCollapsed = new float[n * dt];
        for (int i = 0; i < tCollapsed.length; i++) {
            tCollapsed[i] = -1.25f + (i % dt);
        }
        float[] g = Inputs.poisoned(pair.length);
        LossResult r = new RelationalKd(25, 50).compute(FeatureBatch.of(n, pair, new int[]{ds}, tCollapsed, new int[]{dt}), g, UP);
        double ref = rkdRef(FamilyReference.widen(pair), tCollapsed, n, ds, dt, 25, 50);
        assertEquals(ref, r.value(), 1e-9 * ref, "a collapsed teacher");
        assertEquals(0.0, r.terms().get("rkd-distance"), "a collapsed teacher: no distance relation");
        for (float x : g) {
            assertTrue(Float.isFinite(x), "a collapsed teacher: gradient " + java.util.Arrays.toString(g));
        }
    }

    @Test
    void featureLossWeightsAndShapesAreCheckedNamingThem() {
        for (double[] bad : new double[][]{{-1e-9, 1}, {1, -1e-9}, {Double.NaN, 1}, {1, Double.NaN}, {Double.POSITIVE_INFINITY, 1},
                {1, Double.POSITIVE_INFINITY}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new RelationalKd(bad[0], bad[1]));
            assertEquals("rkd weights must be finite and >= 0, got " + bad[0] + " and " + bad[1], e.getMessage());
        }
        RelationalKd rkd = new RelationalKd(0, 0);
        assertEquals("rkd", rkd.name());
        assertEquals(java.util.Map.of("distance", 25.0, "angle", 50.0), new RelationalKd(25, 50).settings());
        for (double bad : new double[]{0, -1, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AttentionTransfer(bad));
            assertEquals("at beta must be a finite number > 0, got " + bad, e.getMessage());
        }
        AttentionTransfer at = new AttentionTransfer(1000);
        assertEquals("at", at.name());
        assertEquals(java.util.Map.of("beta", 1000.0), at.settings());
        assertEquals(java.util.Map.of("beta", 250.0), FeatureLosses.create("at", java.util.Map.of("beta", 250)).settings());
        Random rng = new Random(10);
        float[] s = randn(rng, 2 * 3 * 4 * 5, 1);
        for (int[][] shapes : new int[][][]{{{3, 4, 5}, {20}}, {{60}, {1, 4, 5}}}) { // one side not a map
            float[] t = randn(rng, 2 * java.util.Arrays.stream(shapes[1]).reduce(1, (a, b) -> a * b), 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> at.compute(FeatureBatch.of(2, s, shapes[0], t, shapes[1]), new float[s.length], 1f));
            assertEquals("at needs activation maps {C, H, W}; got student " + java.util.Arrays.toString(shapes[0]) + " and teacher "
                    + java.util.Arrays.toString(shapes[1]), e.getMessage());
        }
        for (int[] other : new int[][]{{2, 3, 5}, {2, 4, 4}}) { // another height alone, another width alone
            float[] t = randn(rng, 2 * other[0] * other[1] * other[2], 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> at.compute(FeatureBatch.of(2, s, new int[]{3, 4, 5}, t, other), new float[s.length], 1f));
            assertEquals("at needs the same spatial size; student maps are 4x5, teacher maps " + other[1] + "x" + other[2], e.getMessage());
        }
    }

    @Test
    void featureLossesAreRegistered() {
        assertEquals(java.util.List.of("hint", "at", "rkd", "sp", "pkt"), FeatureLosses.names());
        assertTrue(FeatureLosses.create("hint", java.util.Map.of("studentSize", 4, "teacherSize", "6")) instanceof HintLoss h
                && h.parameterCount() == 30);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> FeatureLosses.create("hint", java.util.Map.of("studentSize", 4)));
        assertTrue(e.getMessage().contains("needs the setting 'teacherSize'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> FeatureLosses.create("fitnet", java.util.Map.of()));
        assertTrue(e.getMessage().contains("registered feature losses: hint, at, rkd, sp, pkt"), e.getMessage());
        assertTrue(FeatureLosses.create("rkd", java.util.Map.of("angle", 0)) instanceof RelationalKd);
        assertEquals(java.util.Map.of("gamma", 3000.0), FeatureLosses.create("sp", java.util.Map.of()).settings());
        assertEquals(java.util.Map.of("gamma", 12.5), FeatureLosses.create("sp", java.util.Map.of("gamma", 12.5)).settings());
        assertEquals(java.util.Map.of("beta", 30000.0), FeatureLosses.create("pkt", java.util.Map.of()).settings());
        assertEquals(java.util.Map.of("beta", 0.5), FeatureLosses.create("pkt", java.util.Map.of("beta", "0.5")).settings());
        e = assertThrows(IllegalArgumentException.class, () -> FeatureLosses.create("pkt", java.util.Map.of("gamma", 1)));
        assertEquals("feature loss 'pkt' has no setting 'gamma'; its settings: beta", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> FeatureLosses.create("pkt", java.util.Map.of("beta", -2)));
        assertEquals("pkt weight beta must be finite and >= 0, got -2.0", e.getMessage());
    }

    /** Flattened CHW maps reach these sizes: a clear error instead of NegativeArraySizeException or an empty regressor. */
    @Test
    void aHintRegressorTooLargeForAnArrayOrTheHeapIsRefusedWithItsSize() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new HintLoss(32768, 65536, 1e-3, 0));
        assertEquals("the hint regressor from 32768 student values to 65536 teacher values would need 65536 x 32768 = 2147483648 "
                + "weights, more than a Java array holds (2147483639); use smaller features (pool the maps, or hint from an earlier "
                + "layer)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new HintLoss(65536, 65536, 1e-3, 0));
        assertTrue(e.getMessage().contains("65536 x 65536 = 4294967296 weights, more than a Java array holds"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new HintLoss(Integer.MAX_VALUE, Integer.MAX_VALUE, 1e-3, 0));
        assertTrue(e.getMessage().contains("= 4611686014132420609 weights"), e.getMessage());
        // fits an array, not the heap: 40000 x 40000 weights in four arrays of doubles are 51 GB
        long bytes = 32L * (40000L * 40000 + 40000);
        org.junit.jupiter.api.Assumptions.assumeTrue(Runtime.getRuntime().maxMemory() < bytes, "a heap of 51 GB or more");
        e = assertThrows(IllegalArgumentException.class, () -> new HintLoss(40000, 40000, 1e-3, 0));
        assertEquals("the hint regressor from 40000 student values to 40000 teacher values would need " + (bytes >> 20) + " MiB of "
                + "heap (1600000000 weights with their gradient and Adam moments, in double), more than the JVM may use ("
                + (Runtime.getRuntime().maxMemory() >> 20) + " MiB, -Xmx); use smaller features or a larger heap", e.getMessage());
    }

    @Test
    void hintSettingsAreParsedExactlyAndRebuildTheSameRegressor() {
        java.util.Map<String, Object> base = java.util.Map.of("studentSize", 4, "teacherSize", 3);
        java.util.function.Function<Object, java.util.Map<String, Object>> seed = v -> {
            java.util.Map<String, Object> m = new java.util.LinkedHashMap<>(base);
            m.put("seed", v);
            return m;
        };
        // seeds beyond 2^53 are exact as integers or text; 2^53 + 1 and 2^53 give other regressors
        HintLoss big = (HintLoss) FeatureLosses.create("hint", seed.apply("9007199254740993"));
        assertEquals(9007199254740993L, big.settings().get("seed"));
        assertEquals(Long.MAX_VALUE, FeatureLosses.create("hint", seed.apply(Long.MAX_VALUE)).settings().get("seed"));
        assertEquals(Long.MIN_VALUE, FeatureLosses.create("hint", seed.apply(java.math.BigInteger.valueOf(Long.MIN_VALUE))).settings().get("seed"));
        assertTrue(!java.util.Arrays.equals(big.weights(), new HintLoss(4, 3, 1e-3, 9007199254740992L).weights()));
        assertArrayEquals(big.weights(), new HintLoss(4, 3, 1e-3, 9007199254740993L).weights(), 0.0);
        assertEquals(42L, FeatureLosses.create("hint", seed.apply(42.0)).settings().get("seed"));
        assertEquals(42L, FeatureLosses.create("hint", seed.apply(" 42 ")).settings().get("seed"));
        assertEquals(0L, FeatureLosses.create("hint", base).settings().get("seed"));
        for (Object bad : new Object[]{1.9, "1.9", 1e19, "1e19", "seven", new java.math.BigInteger("9223372036854775808")}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FeatureLosses.create("hint", seed.apply(bad)),
                    "seed " + bad);
            assertTrue(e.getMessage().startsWith("feature loss 'hint' setting 'seed' must be a"), e.getMessage());
        }
        // the settings (provenance) rebuild the same loss
        HintLoss h = (HintLoss) FeatureLosses.create("hint", java.util.Map.of("studentSize", 5, "teacherSize", 2, "learningRate", 0.01,
                "seed", 77));
        assertEquals(java.util.Map.of("studentSize", 5, "teacherSize", 2, "learningRate", 0.01, "seed", 77L), h.settings());
        HintLoss again = (HintLoss) FeatureLosses.create("hint", h.settings());
        assertArrayEquals(h.weights(), again.weights(), 0.0);
        assertEquals(h.settings(), again.settings());
        // the learning rate: finite and > 0, as a number or as text
        for (Object lr : new Object[]{"Infinity", Double.POSITIVE_INFINITY, Double.NaN, 0, -1e-3}) {
            java.util.Map<String, Object> m = new java.util.LinkedHashMap<>(base);
            m.put("learningRate", lr);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FeatureLosses.create("hint", m), "lr " + lr);
            assertTrue(e.getMessage().startsWith("hint learning rate must be a finite number > 0, got "), e.getMessage());
        }
    }

    @Test
    void featureBatchesNameBadShapesAndValues() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> FeatureBatch.of(2, new float[10], new int[]{3, 2}, new float[4], new int[]{2}));
        assertTrue(e.getMessage().contains("student feature has 10 values, expected rows x [3, 2] = 12"), e.getMessage());
        float[] bad = new float[4];
        bad[3] = Float.NaN;
        e = assertThrows(IllegalArgumentException.class, () -> FeatureBatch.of(2, new float[4], new int[]{2}, bad, new int[]{2}));
        // a row of the batch, as data: the trainer names the training sample that row holds (batches are shuffled)
        BadRowException row = assertInstanceOf(BadRowException.class, e, e.getMessage());
        assertEquals(1, row.row());
        assertEquals("teacher feature of row 1 has NaN at offset 1", e.getMessage());
        float[] inf = new float[6];
        inf[2] = Float.NEGATIVE_INFINITY;
        row = assertInstanceOf(BadRowException.class, assertThrows(IllegalArgumentException.class,
                () -> FeatureBatch.of(3, inf, new int[]{2}, new float[3], new int[]{1})));
        assertEquals(1, row.row());
        assertEquals("student feature of row 1 has -Infinity at offset 0", row.getMessage());
    }

    @Test
    void featureLossesRejectANonFiniteUpstreamAndABadGradientBufferNamingTheLoss() {
        Random rng = new Random(77);
        int n = 3;
        float[] s = Inputs.logits(rng, 1, n * 2 * 3 * 3, 1.0);
        float[] t = Inputs.logits(rng, 1, n * 4 * 3 * 3, 1.0);
        FeatureBatch maps = FeatureBatch.of(n, s, new int[]{2, 3, 3}, t, new int[]{4, 3, 3});
        FeatureBatch flat = FeatureBatch.of(n, s, new int[]{18}, t, new int[]{36});
        FeatureLoss[] losses = {new HintLoss(18, 36, 1e-3, 1), new AttentionTransfer(1000), new RelationalKd(25, 50),
                new SimilarityPreserving(3000), new ProbabilisticTransfer(30000)};
        FeatureBatch[] batches = {flat, maps, flat, maps, flat};
        for (int i = 0; i < losses.length; i++) {
            FeatureLoss loss = losses[i];
            FeatureBatch b = batches[i];
            assertTrue(Double.isFinite(loss.compute(b, new float[s.length], UP).value()), loss.name());
            for (float up : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> loss.compute(b, new float[s.length], up));
                assertEquals("upstream gradient factor for loss '" + loss.name() + "' is " + up
                        + ", expected a finite number (1 for a loss used alone, the term weight inside a weighted sum)", e.getMessage());
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> loss.compute(b, null, UP));
            assertEquals("gradient buffer for loss '" + loss.name() + "' has no array, expected one per student feature value: "
                    + s.length, e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> loss.compute(b, new float[s.length + 1], UP));
            assertEquals("gradient buffer for loss '" + loss.name() + "' has " + (s.length + 1)
                    + " elements, expected one per student feature value: " + s.length, e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> loss.compute(b, b.student(), UP));
            assertEquals("gradient buffer for loss '" + loss.name() + "' is the same array as the student feature; it must not alias "
                    + "an input (the loss reads them while it writes the gradient)", e.getMessage());
        }
        // a teacher feature of the student's size can be passed as the gradient buffer too
        float[] same = Inputs.logits(rng, 1, n * 18, 1.0);
        FeatureBatch square = FeatureBatch.of(n, s, new int[]{18}, same, new int[]{18});
        for (FeatureLoss loss : new FeatureLoss[]{new HintLoss(18, 18, 1e-3, 1), new RelationalKd(25, 50), new SimilarityPreserving(3000),
                new ProbabilisticTransfer(30000)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> loss.compute(square, same, UP));
            assertEquals("gradient buffer for loss '" + loss.name() + "' is the same array as the teacher feature; it must not alias "
                    + "an input (the loss reads them while it writes the gradient)", e.getMessage());
        }
    }
}
