package org.distill4j.loss;

import org.distill4j.backend.CpuBackend;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DIST against its float64 reference (the paper's formulas, materialized, {@link FamilyReference#dist}): value, and the
 * gradient against the reference's central differences, at odd shapes (V in {1, 10, 1000, 3001}, 1, 2 and 7 rows), T in
 * {0.5, 1, 4}, upstream 0.73, gradients poisoned; with masked rows, zero-mass and probability teachers, extreme logits;
 * and the CPU backend, which must not slice it: its intra-class term looks across rows.
 */
class DistTest {
    static final float UP = LossFamilyTest.UP;

    static Stream<Arguments> grid() {
        List<Arguments> out = new ArrayList<>();
        for (int v : new int[]{1, 10, 1000, 3001}) {
            for (int rows : new int[]{1, 2, 7}) {
                for (double t : new double[]{0.5, 1, 4}) {
                    out.add(Arguments.of(v, rows, t));
                }
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "V={0} rows={1} T={2}")
    @MethodSource("grid")
    void valueMatchesFloat64ReferenceAndGradientMatchesItsCentralDifferences(int v, int rows, double t) {
        Random rng = new Random(v * 31L + rows * 7L + (long) (t * 10));
        float[] s = Inputs.logits(rng, rows, v, 2.5);
        float[] te = Inputs.logits(rng, rows, v, 2.5);
        double[] td = FamilyReference.widen(te);
        Dist loss = new Dist(1.5, 0.7, t);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = loss.compute(LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, null), grad, UP);
        FamilyReference.Value ref = x -> FamilyReference.dist(x, td, false, null, rows, v, 1.5, 0.7, t);
        String what = "dist V=" + v + " rows=" + rows + " T=" + t;
        double[] sd = FamilyReference.widen(s);
        Tolerances.assertValueClose(ref.at(sd), r.value(), what + " value");
        assertEquals(rows, r.rows());
        assertEquals(r.value(), 1.5 * r.terms().get("inter") + 0.7 * r.terms().get("intra"), 1e-12 * Math.max(1, r.value()), what);
        LossFamilyTest.checkGradient(ref, sd, grad, rng, what);
    }

    /**
     * Rows labeled IGNORE_INDEX or masked take no part in either term (the intra-class correlation too) and get a zero
     * gradient; the counted rows' value and gradient are those of the batch of the counted rows alone. Teacher as
     * probabilities with exact zeros and as logits with -Infinity (zero-mass classes) alike.
     */
    @Test
    void uncountedRowsTakeNoPartAndZeroMassTeachersAreExact() {
        Random rng = new Random(44);
        int rows = 9;
        int v = 23;
        double t = 2;
        for (boolean probs : new boolean[]{false, true}) {
            float[] s = Inputs.logits(rng, rows, v, 2.5);
            int[] y = Inputs.labels(rng, rows, v);
            float[] logits = ZeroMassTeacherTest.maskedTeacher(rng, rows, v, y);
            float[] te = probs ? ZeroMassTeacherTest.probabilities(logits, rows, v) : logits;
            TeacherValues tv = probs ? TeacherValues.PROBABILITIES : TeacherValues.LOGITS;
            y[4] = LogitBatch.IGNORE_INDEX;
            boolean[] mask = {true, true, true, true, true, false, true, true, true};
            boolean[] counted = mask.clone();
            counted[4] = false;
            LogitBatch b = LogitBatch.of(rows, v, s, te, tv, y).withRowMask(mask);
            Dist loss = new Dist(1, 2, t);
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = loss.compute(b, grad, UP);
            assertEquals(7, r.rows());
            double[] td = FamilyReference.widen(te);
            FamilyReference.Value ref = x -> FamilyReference.dist(x, td, probs, counted, rows, v, 1, 2, t);
            double[] sd = FamilyReference.widen(s);
            Tolerances.assertValueClose(ref.at(sd), r.value(), "probabilities " + probs);
            LossFamilyTest.checkGradient(ref, sd, grad, rng, "dist, zero-mass teacher, probabilities " + probs);
            for (int row : new int[]{4, 5}) {
                for (int i = 0; i < v; i++) {
                    assertEquals(0f, grad[row * v + i], "uncounted row " + row);
                }
            }
            // the same rows without the uncounted ones
            int[] keep = {0, 1, 2, 3, 6, 7, 8};
            float[] s7 = new float[keep.length * v];
            float[] t7 = new float[keep.length * v];
            for (int j = 0; j < keep.length; j++) {
                System.arraycopy(s, keep[j] * v, s7, j * v, v);
                System.arraycopy(te, keep[j] * v, t7, j * v, v);
            }
            float[] g7 = new float[keep.length * v];
            LossResult r7 = loss.compute(LogitBatch.of(keep.length, v, s7, t7, tv, null), g7, UP);
            assertEquals(r7.value(), r.value(), 0.0);
            for (int j = 0; j < keep.length; j++) {
                assertArrayEquals(Arrays.copyOfRange(g7, j * v, (j + 1) * v), Arrays.copyOfRange(grad, keep[j] * v, (keep[j] + 1) * v));
            }
        }
    }

    /** Student logits of magnitude 1e4: finite, the reference, and gradients that sum to zero over each row. */
    @Test
    void extremeLogitsStayFinite() {
        Random rng = new Random(99);
        int rows = 5;
        int v = 1000;
        for (double t : new double[]{0.5, 1, 4}) {
            float[] s = Inputs.logits(rng, rows, v, 1.0);
            for (int i = 0; i < s.length; i += 7) {
                s[i] = (i % 2 == 0 ? 1e4f : -1e4f) * (0.5f + rng.nextFloat());
            }
            float[] te = Inputs.logits(rng, rows, v, 3.0);
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = new Dist(1, 1, t).compute(LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, null), grad, UP);
            double ref = FamilyReference.dist(FamilyReference.widen(s), FamilyReference.widen(te), false, null, rows, v, 1, 1, t);
            assertEquals(ref, r.value(), 1e-5 * Math.max(1, Math.abs(ref)), "T=" + t);
            LossFamilyTest.assertFiniteRowsSummingToZero(grad, rows, v, "dist T=" + t);
        }
    }

    /**
     * What DIST keeps and what it drops: a student whose probabilities are an affine image of the teacher's in every row
     * and column (here: the teacher itself) has both correlations 1, so the loss is 0 up to the 1e-8 in the denominators;
     * a student that ranks the classes the other way round has inter-class correlation -1, the loss's maximum of 2 there.
     */
    @Test
    void equalDistributionsGiveZeroAndReversedRankingsTheMaximum() {
        Random rng = new Random(5);
        int rows = 6;
        int v = 17;
        float[] te = Inputs.logits(rng, rows, v, 2.0);
        float[] g = Inputs.poisoned(rows * v);
        LossResult same = new Dist(1, 1, 1).compute(LogitBatch.of(rows, v, te.clone(), te, TeacherValues.LOGITS, null), g, 1f);
        double ref = FamilyReference.dist(FamilyReference.widen(te), FamilyReference.widen(te), false, null, rows, v, 1, 1, 1);
        Tolerances.assertValueClose(ref, same.value(), "dist of a student equal to the teacher");
        assertTrue(same.value() < 1e-5, "0 but for the 1e-8 in the correlations' denominators: " + same.value());
        for (float x : g) {
            assertEquals(0f, x, 1e-5f);
        }
        // two classes: q = 1 - p per row, so each row's correlation is exactly -1
        float[] t2 = {1.3f, -0.4f, 0.2f, 0.9f, -1.1f, 0.6f};
        float[] s2 = {-1.3f, 0.4f, -0.2f, -0.9f, 1.1f, -0.6f};
        LossResult rev = new Dist(1, 0, 1).compute(LogitBatch.of(3, 2, s2, t2, TeacherValues.LOGITS, null), new float[6], 1f);
        assertEquals(2.0, rev.value(), 1e-6);
    }

    /**
     * The CPU backend splits large batches of row-separable losses into slices on several threads; DIST's intra-class
     * term looks across rows, so it must run whole: the backend's result is compute's, bit for bit, on a batch above the
     * slicing threshold, and computeRows of a part is the loss of that part alone.
     */
    @Test
    void theCpuBackendRunsItWholeAndComputeRowsIsThePartAlone() {
        Random rng = new Random(7);
        int rows = 71;
        int v = 4001; // 284,071 logits: above the 2^18 at which the backend slices
        float[] s = Inputs.logits(rng, rows, v, 2.5);
        float[] te = Inputs.logits(rng, rows, v, 2.5);
        LogitBatch b = LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, null);
        Dist loss = new Dist();
        assertTrue(!loss.rowSeparable());
        float[] direct = new float[rows * v];
        float[] backend = Inputs.poisoned(rows * v);
        LossResult d = loss.compute(b, direct, UP);
        LossResult k = new CpuBackend(2).logitLoss(loss, b, backend, UP);
        assertEquals(d.value(), k.value(), 0.0);
        assertArrayEquals(direct, backend);

        float[] part = Inputs.poisoned(20 * v + 5);
        LossResult pr = loss.computeRows(b, 30, 50, part, 5, UP);
        float[] alone = new float[20 * v];
        LossResult pa = loss.compute(b.slice(30, 50), alone, UP);
        assertEquals(pa.value(), pr.value(), 0.0);
        assertArrayEquals(alone, Arrays.copyOfRange(part, 5, 5 + 20 * v));
    }

    @Test
    void settingsAreRegisteredAndBadOnesRefusedNamingThem() {
        assertTrue(Losses.create("dist", Map.of()) instanceof Dist d && d.beta() == 1 && d.gamma() == 1 && d.temperature() == 1,
                "the paper's ImageNet settings");
        assertTrue(Losses.create("dist", Map.of("beta", 2, "gamma", 2, "temperature", 4)) instanceof Dist d
                && d.beta() == 2 && d.gamma() == 2 && d.temperature() == 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Losses.create("dist", Map.of("reduction", "sum")));
        assertEquals("dist reduction must be mean, got sum: its intra-class term is a "
                + "correlation over the batch's rows, which is not a sum of per-row terms", e.getMessage());
        for (double bad : new double[]{-1e-9, Double.NaN, Double.POSITIVE_INFINITY}) {
            e = assertThrows(IllegalArgumentException.class, () -> new Dist(bad, 1, 1));
            assertEquals("dist beta and gamma must be finite and >= 0, got " + bad + " and 1.0", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new Dist(1, bad, 1));
            assertEquals("dist beta and gamma must be finite and >= 0, got 1.0 and " + bad, e.getMessage());
        }
        e = assertThrows(IllegalArgumentException.class, () -> new Dist(1, 1, 0));
        assertEquals("dist temperature must be a finite number > 0, got 0.0", e.getMessage());
        assertEquals(4.0, new Dist(1, 1, 1).withTemperature(4).temperature());
        e = assertThrows(IllegalArgumentException.class, () -> new Dist().compute(
                LogitBatch.ofLabels(2, 3, new float[6], new int[]{0, 1}), new float[6], 1f));
        assertTrue(e.getMessage().contains("dist"), e.getMessage());
    }

    /**
     * A null reduction is refused naming the field, as the other losses refuse it: it threw a NullPointerException from
     * building the "must be mean" message instead.
     */
    @Test
    void aNullReductionIsRefusedNamingIt() {
        NullPointerException e = assertThrows(NullPointerException.class, () -> new Dist(1, 1, 1, null));
        assertEquals("reduction", e.getMessage());
    }
}
