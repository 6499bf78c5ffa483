package org.distill4j.loss;

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
import static org.junit.jupiter.api.Assertions.assertTimeout;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Every logit loss of the family against its float64 reference value, with gradients checked against
 * central differences of that reference: V in {1, 10, 1000, 32003}, T in {0.5, 1, 4, 20}, upstream
 * gradient 0.73, output buffers poisoned with NaN.
 */
class LossFamilyTest {
    static final float UP = 0.73f;
    static final String[] LOSSES = {"reverse-kl", "gjsd-0.3", "skew-kl-0.1", "skew-rkl-0.1", "akl-0.5", "akl-0.2",
            "abkd", "abkd-0.2-0.7", "tvd", "mse", "dkd", "topk-renormalize", "topk-rest", "logit-std"};

    /** One loss on one random batch, with its reference. */
    record Case(LogitLoss loss, LogitBatch batch, FamilyReference.Value ref, double valueTol) {
    }

    static Case make(String which, int v, double t, int rows, Random rng, double scale) {
        float[] s = Inputs.logits(rng, rows, v, scale);
        float[] te = Inputs.logits(rng, rows, v, scale);
        int[] y = Inputs.labels(rng, rows, v);
        double[] td = FamilyReference.widen(te);
        switch (which) {
            case "reverse-kl":
                return new Case(new ReverseKl(t), LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y),
                        x -> FamilyReference.reverseKl(x, td, rows, v, t), 0);
            case "gjsd-0.3":
                return new Case(new GeneralizedJsd(0.3, t), LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y),
                        x -> FamilyReference.gjsd(x, td, rows, v, 0.3, t), 0);
            case "skew-kl-0.1":
                return new Case(new SkewKl(0.1, t), LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y),
                        x -> FamilyReference.skewKl(x, td, rows, v, 0.1, t, false), 0);
            case "skew-rkl-0.1":
                return new Case(new SkewReverseKl(0.1, t), LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y),
                        x -> FamilyReference.skewKl(x, td, rows, v, 0.1, t, true), 0);
            case "akl-0.5":
            case "akl-0.2": {
                double mu = which.equals("akl-0.5") ? 0.5 : 0.2;
                // the weights are held at the batch's own student logits (s, also edited in place by some tests)
                return new Case(new AdaptiveKl(mu, t), LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y),
                        x -> FamilyReference.akl(x, td, rows, v, mu, t, FamilyReference.widen(s)), 0);
            }
            case "abkd":
                return new Case(new AlphaBetaDivergence(0.8, 0.3, t), LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y),
                        x -> FamilyReference.alphaBeta(x, td, rows, v, 0.8, 0.3, t), 0);
            case "abkd-0.2-0.7":
                return new Case(new AlphaBetaDivergence(0.2, 0.7, t), LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y),
                        x -> FamilyReference.alphaBeta(x, td, rows, v, 0.2, 0.7, t), 0);
            case "tvd":
                return new Case(new TotalVariation(t), LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y),
                        x -> FamilyReference.tvd(x, td, rows, v, t), 0);
            case "mse":
                return new Case(new LogitMse(), LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y),
                        x -> FamilyReference.mse(x, td, rows, v), 0);
            case "dkd":
                return new Case(new Dkd(1.0, 8.0, t, 20).atEpoch(4, 30), LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y),
                        x -> FamilyReference.dkd(x, td, y, rows, v, 1.0, 8.0, t, 5.0 / 20), 0);
            case "topk-renormalize":
            case "topk-rest": {
                int k = Math.min(v, v > 100 ? 64 : 4);
                int[] ids = new int[rows * k];
                float[] lps = new float[rows * k];
                FamilyReference.topKOf(td, rows, v, k, ids, lps);
                boolean rest = which.equals("topk-rest");
                return new Case(new TopKKd(t, rest ? TopKKd.Tail.REST_BUCKET : TopKKd.Tail.RENORMALIZE),
                        LogitBatch.ofTopK(rows, v, s, ids, lps, k, y), x -> FamilyReference.topk(x, ids, lps, k, rows, v, t, rest), 0);
            }
            case "logit-std":
                // the implementation feeds float32 standardized rows to kd, so its value carries float rounding;
                // alpha 0.2 of hard-label CE on the raw logits, as in the paper
                return new Case(LogitStandardization.of(new SoftTargetKd(t, 0.2)), LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y),
                        x -> FamilyReference.logitStdKd(x, td, y, rows, v, t, 0.2), 2e-6);
            default:
                throw new IllegalArgumentException(which);
        }
    }

    static Stream<Arguments> grid() {
        List<Arguments> out = new ArrayList<>();
        for (String l : LOSSES) {
            for (int v : new int[]{1, 10, 1000, 32003}) {
                for (double t : l.equals("mse") ? new double[]{1} : new double[]{0.5, 1, 4, 20}) {
                    out.add(Arguments.of(l, v, t));
                }
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} V={1} T={2}")
    @MethodSource("grid")
    void valueMatchesFloat64ReferenceAndGradientMatchesItsCentralDifferences(String which, int v, double t) {
        Random rng = new Random(which.hashCode() * 31L + v * 7L + (long) (t * 10));
        int rows = v > 10000 ? 2 : 5;
        Case c = make(which, v, t, rows, rng, 2.5);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = c.loss().compute(c.batch(), grad, UP);
        double[] s = FamilyReference.widen(c.batch().student());
        double ref = c.ref().at(s);
        String what = which + " V=" + v + " T=" + t;
        if (c.valueTol() > 0) {
            assertEquals(ref, r.value(), c.valueTol() * Math.max(1, Math.abs(ref)), what + " value");
        } else {
            Tolerances.assertValueClose(ref, r.value(), what + " value");
        }
        assertEquals(rows, r.rows());
        checkGradient(c.ref(), s, grad, rng, what);
    }

    /** Gradient vs central differences of the float64 reference, on all or 60 random coordinates. */
    static void checkGradient(FamilyReference.Value ref, double[] s, float[] grad, Random rng, String what) {
        // h = 1e-3: smaller steps drown in the reference's own rounding at V = 32003 (measured: h = 1e-5
        // is off by 5e-9 on gradients of 5e-5, h = 1e-2 and 1e-3 agree to 4e-7 relative)
        checkGradient(ref, s, grad, rng, what, 1e-3);
    }

    /** The same with central differences of step {@code h}. */
    static void checkGradient(FamilyReference.Value ref, double[] s, float[] grad, Random rng, String what, double h) {
        int n = s.length;
        int[] coords = n <= 300 ? java.util.stream.IntStream.range(0, n).toArray() : rng.ints(60, 0, n).toArray();
        double[] fd = new double[coords.length];
        double max = 0;
        for (int j = 0; j < coords.length; j++) {
            int k = coords[j];
            fd[j] = UP * FamilyReference.centralDifference(ref, s, k, h);
            max = Math.max(max, Math.abs(fd[j]));
        }
        for (float g : grad) {
            assertTrue(Float.isFinite(g), what + ": every gradient element is written and finite");
        }
        // the reference's own resolution: a central difference cannot see below a few ulps of the value over 2h
        // (e.g. logit-std(reverse-kl) at V = 2, gradients of 1e-7 from a floored value of about 100, h = 1e-5)
        final double resolution = UP * 8 * Math.ulp(Math.abs(ref.at(s))) / (2 * h);
        for (int j = 0; j < coords.length; j++) {
            double tol = 2e-5 * max + 1e-5 * Math.abs(fd[j]) + 1e-9 + resolution;
            if (!(Math.abs(fd[j] - grad[coords[j]]) <= tol)) {
                fail(what + ": gradient at " + coords[j] + " is " + grad[coords[j]] + ", central difference " + fd[j] + " (tol " + tol + ")");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("names")
    void extremeLogitsGiveFiniteValuesMatchingTheReferenceAndZeroSumGradients(String which) {
        Random rng = new Random(99);
        int rows = 3;
        int v = 1000;
        for (double t : which.equals("mse") ? new double[]{1} : new double[]{0.5, 1, 4, 20}) {
            Case c = make(which, v, t, rows, rng, 1.0);
            float[] st = c.batch().student();
            for (int i = 0; i < st.length; i += 7) {
                st[i] = (i % 2 == 0 ? 1e4f : -1e4f) * (0.5f + rng.nextFloat());
            }
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = c.loss().compute(c.batch(), grad, UP);
            assertTrue(Double.isFinite(r.value()), which + " T=" + t + " value " + r.value());
            double ref = c.ref().at(FamilyReference.widen(st));
            assertEquals(ref, r.value(), 1e-5 * Math.max(1, Math.abs(ref)), which + " T=" + t);
            if (!which.equals("mse")) {
                assertFiniteRowsSummingToZero(grad, rows, v, which);
            }
        }
    }

    static Stream<String> names() {
        return Arrays.stream(LOSSES);
    }

    /**
     * Every gradient element finite, and each row's sum zero (within 1e-4 of its largest element): the gradient of a loss
     * of {@code softmax(s / T)} with respect to {@code s} is orthogonal to shifting the row.
     */
    static void assertFiniteRowsSummingToZero(float[] grad, int rows, int v, String what) {
        for (int row = 0; row < rows; row++) {
            double sum = 0;
            double max = 0;
            for (int i = 0; i < v; i++) {
                float g = grad[row * v + i];
                assertTrue(Float.isFinite(g), what + ": gradient at row " + row + ", class " + i + " is " + g);
                sum += g;
                max = Math.max(max, Math.abs(g));
            }
            assertEquals(0, sum, 1e-4 * max + 1e-9, what + ": softmax gradients sum to zero per row");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("names")
    void gradientAccumulationWithANormalizerEqualsOneBigBatch(String which) {
        Random rng = new Random(5);
        int rows = 8;
        int v = 13;
        Case c = make(which, v, 2.0, rows, rng, 2.0);
        LogitBatch big = c.batch();
        int[] y = big.labels().clone();
        y[2] = LogitBatch.IGNORE_INDEX;
        boolean[] mask = {true, true, true, false, true, true, false, true};
        LogitBatch masked = rebuild(big, y, 0, rows).withRowMask(mask);
        float[] gBig = Inputs.poisoned(rows * v);
        LossResult rBig = c.loss().compute(masked, gBig, 1f);
        assertEquals(5, rBig.rows(), "rows 2 (ignored label), 3 and 6 (masked) do not count");
        for (int row : new int[]{2, 3, 6}) {
            for (int i = row * v; i < (row + 1) * v; i++) {
                assertEquals(0f, gBig[i], which + ": uncounted row " + row + " gets zero gradient");
            }
        }
        for (int row : new int[]{0, 1, 4, 5, 7}) {
            double norm = 0;
            for (int i = row * v; i < (row + 1) * v; i++) {
                norm += Math.abs(gBig[i]);
            }
            assertTrue(norm > 0, which + ": counted row " + row + " has a gradient");
        }
        // the same rows as two micro-batches, each normalized by the 5 counted rows of the whole step
        LogitBatch a = rebuild(big, y, 0, 4).withRowMask(Arrays.copyOfRange(mask, 0, 4)).withNormalizer(5);
        LogitBatch b = rebuild(big, y, 4, 8).withRowMask(Arrays.copyOfRange(mask, 4, 8)).withNormalizer(5);
        float[] ga = new float[4 * v];
        float[] gb = new float[4 * v];
        double va = c.loss().compute(a, ga, 1f).value();
        double vb = c.loss().compute(b, gb, 1f).value();
        assertEquals(rBig.value(), va + vb, 1e-9 * Math.abs(rBig.value()) + 1e-12, which + " accumulated value");
        for (int i = 0; i < 4 * v; i++) {
            assertEquals(gBig[i], ga[i], 1e-6 * Math.abs(gBig[i]) + 1e-9);
            assertEquals(gBig[4 * v + i], gb[i], 1e-6 * Math.abs(gBig[4 * v + i]) + 1e-9);
        }
    }

    /** Rows [from, to) of a batch with the given labels, keeping its teacher form. */
    static LogitBatch rebuild(LogitBatch b, int[] y, int from, int to) {
        int v = b.classes();
        int n = to - from;
        float[] s = Arrays.copyOfRange(b.student(), from * v, to * v);
        int[] yy = Arrays.copyOfRange(y, from, to);
        if (b.topkIds() != null) {
            int k = b.k();
            return LogitBatch.ofTopK(n, v, s, Arrays.copyOfRange(b.topkIds(), from * k, to * k),
                    Arrays.copyOfRange(b.topkLogProbs(), from * k, to * k), k, yy);
        }
        return LogitBatch.of(n, v, s, Arrays.copyOfRange(b.teacher(), from * v, to * v), b.teacherValues(), yy);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("names")
    void identicalTeacherAndStudentGiveZero(String which) {
        org.junit.jupiter.api.Assumptions.assumeFalse(which.startsWith("topk"), "top-k losses: see topKWithAllClassesEqualsKd");
        Random rng = new Random(8);
        Case c = make(which, 37, 2.0, 4, rng, 2.0);
        LogitBatch b = c.batch();
        LogitBatch same = LogitBatch.of(4, 37, b.student(), b.student().clone(), TeacherValues.LOGITS, b.labels());
        float[] g = Inputs.poisoned(4 * 37);
        LogitLoss loss = which.equals("logit-std") ? LogitStandardization.of(new SoftTargetKd(2, 0)) : c.loss(); // no CE part
        assertEquals(0.0, loss.compute(same, g, 1f).value(), 1e-9, which);
        for (float x : g) {
            assertEquals(0f, x, 1e-7f, which);
        }
    }

    @Test
    void aNormalizerBelowTheCountedRowsIsRejected() {
        Random rng = new Random(16);
        int rows = 5;
        int v = 7;
        LogitBatch b = LogitBatch.of(rows, v, Inputs.logits(rng, rows, v, 2), Inputs.logits(rng, rows, v, 2), TeacherValues.LOGITS, null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.withNormalizer(1));
        assertEquals("normalizer 1 is below the 5 counted rows of this batch (MEAN would weigh each row 1/1 and no longer average); "
                + "expected 0 (divide by the batch's own counted rows) or the counted rows of the whole accumulated step, at least 5",
                e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> b.withNormalizer(4));
        assertThrows(IllegalArgumentException.class, () -> b.withNormalizer(-1));
        assertEquals(0.2, b.withNormalizer(0).rowWeight(Reduction.MEAN), 0.0);
        assertEquals(0.2, b.withNormalizer(5).rowWeight(Reduction.MEAN), 0.0);
        assertEquals(0.125, b.withNormalizer(8).rowWeight(Reduction.MEAN), 0.0);
        // a mask first, then the step's count: fine; a mask that puts rows back above the normalizer: rejected
        boolean[] three = {true, false, true, false, true};
        LogitBatch masked = b.withRowMask(three).withNormalizer(3);
        assertEquals(1.0 / 3, masked.rowWeight(Reduction.MEAN), 0.0);
        e = assertThrows(IllegalArgumentException.class, () -> masked.withRowMask(null));
        assertTrue(e.getMessage().startsWith("normalizer 3 is below the 5 counted rows"), e.getMessage());
    }

    @Test
    void gjsdEndPointsAreForwardAndReverseKl() {
        Random rng = new Random(3);
        int rows = 4;
        int v = 29;
        float[] s = Inputs.logits(rng, rows, v, 2);
        float[] t = Inputs.logits(rng, rows, v, 2);
        LogitBatch b = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, null);
        assertSameLoss(new GeneralizedJsd(0, 3), new SoftTargetKd(3, 0), b);
        assertSameLoss(new GeneralizedJsd(1, 3), new ReverseKl(3), b);
        // inside, the mixture formula tends to beta * forward KL as beta -> 0
        double fwd = new SoftTargetKd(3, 0).compute(b, new float[rows * v], 1f).value();
        double small = new GeneralizedJsd(1e-6, 3).compute(b, new float[rows * v], 1f).value();
        assertEquals(1e-6 * fwd, small, 1e-3 * 1e-6 * fwd);
    }

    /**
     * The skew KLs against the losses they come from: at alpha 0 they are forward KL (kd at alpha 0) and reverse KL, value
     * and gradient; with gjsd's mixture weight beta, gjsd = beta * skew-kl(beta) + (1 - beta) * skew-rkl(1 - beta).
     */
    @Test
    void skewKlsAreKlAtSkewZeroAndTheTwoPartsOfGjsd() {
        Random rng = new Random(31);
        int rows = 5;
        int v = 41;
        float[] s = Inputs.logits(rng, rows, v, 2.5);
        float[] t = Inputs.logits(rng, rows, v, 2.5);
        LogitBatch b = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, null);
        for (double temp : new double[]{0.7, 3}) {
            assertSameLoss(new SkewKl(0, temp), new SoftTargetKd(temp, 0), b);
            assertSameLoss(new SkewReverseKl(0, temp), new ReverseKl(temp), b);
            for (double beta : new double[]{0.1, 0.35, 0.9}) {
                float[] gj = new float[rows * v];
                float[] gf = new float[rows * v];
                float[] gr = new float[rows * v];
                double jsd = new GeneralizedJsd(beta, temp).compute(b, gj, UP).value();
                double f = new SkewKl(beta, temp).compute(b, gf, UP).value();
                double r = new SkewReverseKl(1 - beta, temp).compute(b, gr, UP).value();
                String what = "beta " + beta + ", T " + temp;
                assertTrue(f > 0 && r > 0, what);
                assertEquals(jsd, beta * f + (1 - beta) * r, 1e-12 * jsd, what);
                double max = 0;
                for (float x : gj) {
                    max = Math.max(max, Math.abs(x));
                }
                for (int i = 0; i < gj.length; i++) {
                    assertEquals(gj[i], beta * gf[i] + (1 - beta) * gr[i], 1e-6 * max, what + " gradient " + i);
                }
            }
        }
    }

    /**
     * What the skew is for: where the student has almost no mass on a class the teacher likes, forward KL's gradient
     * with respect to q is -p/q, unbounded; skew KL's is -(1 - alpha) p / m, at most (1 - alpha) / alpha. The value at
     * such a row stays below log(1 / alpha) (m >= alpha p), where forward KL grows with the student's logit gap.
     */
    @Test
    void skewKlStaysBoundedWhereForwardKlGrows() {
        int v = 6;
        float[] t = {4f, 0f, 0f, 0f, 0f, 0f}; // the teacher puts most of its mass on class 0
        for (float gap : new float[]{10f, 40f, 200f}) {
            float[] s = {-gap, 0f, 0f, 0f, 0f, 0f}; // the student almost none
            LogitBatch b = LogitBatch.of(1, v, s, t, TeacherValues.LOGITS, null);
            double kl = new SoftTargetKd(1, 0).compute(b, new float[v], 1f).value();
            double skew = new SkewKl(0.1, 1).compute(b, new float[v], 1f).value();
            double ref = FamilyReference.skewKl(FamilyReference.widen(s), FamilyReference.widen(t), 1, v, 0.1, 1, false);
            Tolerances.assertValueClose(ref, skew, "gap " + gap);
            assertTrue(skew < Math.log(10), "gap " + gap + ": skew KL " + skew + " stays below log(1/alpha)");
            assertTrue(kl > 0.9 * gap, "gap " + gap + ": forward KL " + kl + " grows with it");
        }
    }

    /** The skew must be in [0, 1): at 1 the loss no longer depends on the student. */
    @Test
    void aSkewOutsideZeroToOneIsRefusedNamingTheLoss() {
        for (double bad : new double[]{-1e-9, 1, 1.5, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new SkewKl(bad, 1), "alpha " + bad);
            assertTrue(e.getMessage().startsWith("skew-kl alpha (the skew) must be in [0, 1), got " + bad), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new SkewReverseKl(bad, 1), "alpha " + bad);
            assertTrue(e.getMessage().startsWith("skew-rkl alpha (the skew) must be in [0, 1), got " + bad), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Losses.create("skew-kl", Map.of("alpha", 1)));
        assertTrue(e.getMessage().endsWith("the loss is 0 whatever the student does"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Losses.create("skew-rkl", Map.of("beta", 0.1)));
        assertTrue(e.getMessage().contains("loss 'skew-rkl' has no setting 'beta'"), e.getMessage());
    }

    /**
     * AKL's head, found by selection, against a sort: on random teacher rows with many equal probabilities (drawn from a
     * few levels) and without, for several mu, the head has the classes of the sorted prefix (equal ones in class order)
     * whose running sum stays at most mu, and at least the first.
     */
    @Test
    void aklHeadIsTheSortedPrefixUpToMu() {
        Random rng = new Random(41);
        for (int trial = 0; trial < 400; trial++) {
            int v = 1 + rng.nextInt(trial < 200 ? 12 : 3001);
            boolean ties = trial % 2 == 0;
            double[] w = new double[v];
            double z = 0;
            for (int i = 0; i < v; i++) {
                w[i] = ties ? 1 + rng.nextInt(4) : Math.exp(3 * rng.nextGaussian());
                z += w[i];
            }
            double[] p = new double[v];
            for (int i = 0; i < v; i++) {
                p[i] = w[i] / z;
            }
            double mu = trial % 5 == 0 ? 0 : rng.nextDouble();
            Integer[] sorted = new Integer[v];
            for (int i = 0; i < v; i++) {
                sorted[i] = i;
            }
            Arrays.sort(sorted, (a, b) -> Double.compare(p[b], p[a])); // stable: equal ones stay in class order
            java.util.Set<Integer> expected = new java.util.TreeSet<>();
            double cum = 0;
            for (int j = 0; j < v; j++) {
                cum += p[sorted[j]];
                if (j > 0 && cum > mu) {
                    break;
                }
                expected.add(sorted[j]);
            }
            int[] order = new int[v + 3];
            int head = AdaptiveKl.head(p, v, mu, order);
            java.util.Set<Integer> got = new java.util.TreeSet<>();
            for (int j = 0; j < head; j++) {
                got.add(order[j]);
            }
            // a running sum within rounding of mu could fall either way; random weights never come that close here
            assertEquals(expected, got, "V " + v + ", mu " + mu + (ties ? ", with ties" : ""));
            java.util.Set<Integer> all = new java.util.TreeSet<>();
            for (int j = 0; j < v; j++) {
                all.add(order[j]);
            }
            assertEquals(v, all.size(), "order holds every class once");
        }
    }

    /**
     * AKL's weights and parts: the reported akl-fkl and akl-rkl add up to the value, and with the weights they imply, the
     * gradient is w_head * (forward KL's) + w_tail * (reverse KL's). A student that swaps the teacher's two head classes
     * and matches its tail gets all the weight on forward KL; one that matches the head and reverses the tail, all of it on
     * reverse KL (permuting within a part keeps the softmax's normalizer, so the other part's gaps are 0).
     */
    @Test
    void aklMixesForwardAndReverseKlByTheGapsOnHeadAndTail() {
        int v = 9;
        double temp = 1;
        double mu = 0.95;
        float[] t = {3f, 2.9f, 0f, -0.5f, -1f, -1.5f, -2f, -2.5f, -3f}; // head at mu 0.95: classes 0 and 1 (mass 0.940)
        float[] headSwapped = {2.9f, 3f, 0f, -0.5f, -1f, -1.5f, -2f, -2.5f, -3f};
        float[] tailReversed = {3f, 2.9f, -3f, -2.5f, -2f, -1.5f, -1f, -0.5f, 0f};
        for (float[] s : new float[][]{headSwapped, tailReversed}) {
            LogitBatch b = LogitBatch.of(1, v, s, t, TeacherValues.LOGITS, null);
            float[] g = new float[v];
            LossResult r = new AdaptiveKl(mu, temp).compute(b, g, UP);
            assertEquals(r.value(), r.terms().get("akl-fkl") + r.terms().get("akl-rkl"), 1e-12 * r.value());
            float[] gf = new float[v];
            float[] gr = new float[v];
            double fkl = new SoftTargetKd(temp, 0).compute(b, gf, UP).value();
            double rkl = new ReverseKl(temp).compute(b, gr, UP).value();
            double wHead = r.terms().get("akl-fkl") / fkl;
            double wTail = r.terms().get("akl-rkl") / rkl;
            assertEquals(1, wHead + wTail, 1e-9, "the weights add up to 1");
            for (int i = 0; i < v; i++) {
                assertEquals(wHead * gf[i] + wTail * gr[i], g[i], 1e-6 * (Math.abs(gf[i]) + Math.abs(gr[i])) + 1e-9, "gradient " + i);
            }
            double w = s == headSwapped ? wHead : wTail;
            assertEquals(1, w, 1e-6, (s == headSwapped ? "a swapped head: forward KL" : "a reversed tail: reverse KL") + " only");
        }
    }

    /**
     * The head's boundary: a prefix whose mass is exactly mu is head (the released code's tail is where the running sum
     * exceeds mu), on dyadic probabilities whose sums are exact in any order.
     */
    @Test
    void aklPrefixOfExactlyMuIsHead() {
        double[][] rows = {{0.25, 0.25, 0.25, 0.25}, {0.125, 0.5, 0.125, 0.25}};
        double[][] mus = {{0.5, 0.5 - 1e-12, 0.75, 0.25, 0}, {0.5, 0.75, 0.875, 0.875 - 1e-12, 0.125}};
        int[][][] heads = {{{0, 1}, {0}, {0, 1, 2}, {0}, {0}}, {{1}, {1, 3}, {0, 1, 3}, {1, 3}, {1}}};
        for (int r = 0; r < rows.length; r++) {
            for (int m = 0; m < mus[r].length; m++) {
                int[] order = new int[4];
                int head = AdaptiveKl.head(rows[r], 4, mus[r][m], order);
                int[] got = Arrays.copyOf(order, head);
                Arrays.sort(got);
                assertArrayEquals(heads[r][m], got, "row " + Arrays.toString(rows[r]) + ", mu " + mus[r][m]);
            }
        }
    }

    /**
     * The head's selection stays fast on rows whose probabilities rise and fall across the class index, where a pivot
     * from the range's ends and middle made it quadratic (34 s for the organ-pipe row of 262,144 classes, 10 s for the
     * bump of 131,072): a guard against that regression, with a limit far above the milliseconds these take, not a
     * timing. The heads still agree with a sort's.
     */
    @Test
    void aklHeadOfRisingThenFallingRowsIsFoundInLinearTime() {
        assertTimeout(java.time.Duration.ofSeconds(10), () -> {
            for (int v : new int[]{131_072, 262_144}) {
                double[] organ = new double[v];
                double[] bump = new double[v];
                double so = 0;
                double sb = 0;
                for (int i = 0; i < v; i++) {
                    organ[i] = Math.min(i, v - 1 - i) + 1;
                    double x = (i - 0.37 * v) / (0.05 * v);
                    bump[i] = Math.exp(-0.5 * x * x) + 1e-9;
                    so += organ[i];
                    sb += bump[i];
                }
                for (int i = 0; i < v; i++) {
                    organ[i] /= so;
                    bump[i] /= sb;
                }
                for (double[] p : new double[][]{organ, bump}) {
                    int[] order = new int[v];
                    int head = AdaptiveKl.head(p, v, 0.5, order);
                    Integer[] sorted = new Integer[v];
                    for (int i = 0; i < v; i++) {
                        sorted[i] = i;
                    }
                    Arrays.sort(sorted, (a, b) -> Double.compare(p[b], p[a]));
                    double cum = 0;
                    int expected = 0;
                    while (expected < v && (expected == 0 || cum + p[sorted[expected]] <= 0.5)) {
                        cum += p[sorted[expected++]];
                    }
                    assertEquals(expected, head, "V " + v + (p == organ ? " organ pipe" : " bump"));
                }
            }
        });
    }

    /**
     * A sparse teacher (mass on 3 of 2001 classes, -inf elsewhere, as a top-k store's row) at T 20: the forward part is
     * forward KL on the teacher as it is (kd at alpha 0), not on one floored and spread by the temperature; the reverse
     * part is reverse-kl's, floored.
     */
    @Test
    void aklFloorsTheTeacherForItsReversePartOnly() {
        int v = 2001;
        Random rng = new Random(47);
        float[] s = Inputs.logits(rng, 1, v, 2.0);
        float[] t = new float[v];
        Arrays.fill(t, Float.NEGATIVE_INFINITY);
        t[5] = 3f;
        t[700] = 1.5f;
        t[1999] = 0f;
        LogitBatch b = LogitBatch.of(1, v, s, t, TeacherValues.LOGITS, null);
        double temp = 20;
        LossResult r = new AdaptiveKl(0.5, temp).compute(b, new float[v], 1f);
        double fkl = new SoftTargetKd(temp, 0).compute(b, new float[v], 1f).value();
        double rkl = new ReverseKl(temp).compute(b, new float[v], 1f).value();
        double wHead = r.terms().get("akl-fkl") / fkl;
        double wTail = r.terms().get("akl-rkl") / rkl;
        assertEquals(1, wHead + wTail, 1e-9, "each part is its KL times its weight, the weights adding up to 1");
        assertTrue(wHead > 0.01 && wTail > 0.01, wHead + " " + wTail);
    }

    @Test
    void aklMuOutsideZeroToOneIsRefusedNamingTheLoss() {
        for (double bad : new double[]{-1e-9, 1, 2, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AdaptiveKl(bad, 1), "mu " + bad);
            assertTrue(e.getMessage().startsWith("akl mu (the head's cumulative teacher probability) must be in [0, 1), got " + bad),
                    e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Losses.create("akl", Map.of("mu", 1)));
        assertTrue(e.getMessage().endsWith("the loss is forward KL (kd with alpha 0)"), e.getMessage());
    }

    /**
     * ABKD's alpha-beta divergence where it meets known divergences: alpha = 1 with beta near 0 is forward KL, alpha near 0
     * with beta = 1 reverse KL (both to within about the small power), and alpha = beta = 1/2 is twice the squared
     * distance of the probabilities' square roots (four times the squared Hellinger distance), value and gradient.
     */
    @Test
    void alphaBetaDivergenceMeetsForwardKlReverseKlAndHellinger() {
        Random rng = new Random(43);
        int rows = 3;
        int v = 29;
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        float[] t = Inputs.logits(rng, rows, v, 2.0);
        LogitBatch b = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, null);
        for (double temp : new double[]{1, 2.5}) {
            double fkl = new SoftTargetKd(temp, 0).compute(b, new float[rows * v], 1f).value();
            double rkl = new ReverseKl(temp).compute(b, new float[rows * v], 1f).value();
            double nearF = new AlphaBetaDivergence(1, 1e-4, temp).compute(b, new float[rows * v], 1f).value();
            double nearR = new AlphaBetaDivergence(1e-4, 1, temp).compute(b, new float[rows * v], 1f).value();
            assertEquals(fkl, nearF, 2e-3 * fkl, "alpha 1, beta 1e-4: forward KL, T " + temp);
            assertEquals(rkl, nearR, 2e-3 * rkl, "alpha 1e-4, beta 1: reverse KL, T " + temp);
            double[] sd = FamilyReference.widen(s);
            double[] td = FamilyReference.widen(t);
            FamilyReference.Value hellinger = x -> {
                double total = 0;
                for (int r = 0; r < rows; r++) {
                    double[] lp = FamilyReference.logSoftmax(td, r * v, v, temp);
                    double[] lq = FamilyReference.logSoftmax(x, r * v, v, temp);
                    for (int i = 0; i < v; i++) {
                        double d = Math.exp(lp[i] / 2) - Math.exp(lq[i] / 2);
                        total += temp * temp * 2 * d * d;
                    }
                }
                return total / rows;
            };
            float[] g = Inputs.poisoned(rows * v);
            double half = new AlphaBetaDivergence(0.5, 0.5, temp).compute(b, g, UP).value();
            Tolerances.assertValueClose(hellinger.at(sd), half, "alpha = beta = 1/2, T " + temp);
            checkGradient(hellinger, sd, g, rng, "alpha = beta = 1/2, T " + temp);
        }
    }

    /**
     * As alpha and beta go to 0 the divergence goes to (1/2) sum (log p - log q)^2. At 1e-6 each, with a student a little
     * off the teacher (log ratios of about 1e-2) and at T 100, the value must still be that: the bracket as the paper
     * writes it subtracts terms of order 1 and divides by alpha beta = 1e-12, which left nothing of it.
     */
    @Test
    void alphaBetaKeepsItsValueForSmallPowersNearTheTeacher() {
        Random rng = new Random(53);
        int v = 50;
        for (double temp : new double[]{1, 100}) {
            float[] t = Inputs.logits(rng, 1, v, 1.0);
            float[] s = t.clone();
            for (int i = 0; i < v; i++) {
                s[i] += (float) (1e-2 * temp * rng.nextGaussian());
            }
            LogitBatch b = LogitBatch.of(1, v, s, t, TeacherValues.LOGITS, null);
            double[] lp = FamilyReference.logSoftmax(FamilyReference.widen(t), 0, v, temp);
            double[] lq = FamilyReference.logSoftmax(FamilyReference.widen(s), 0, v, temp);
            double half = 0;
            for (int i = 0; i < v; i++) {
                half += 0.5 * (lp[i] - lq[i]) * (lp[i] - lq[i]);
            }
            double value = new AlphaBetaDivergence(1e-6, 1e-6, temp).compute(b, new float[v], 1f).value();
            assertEquals(temp * temp * half, value, 1e-4 * temp * temp * half, "T " + temp);
        }
    }

    @Test
    void alphaBetaPowersOutsideZeroToInfinityAreRefusedNamingTheLoss() {
        for (double bad : new double[]{0, -0.5, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AlphaBetaDivergence(bad, 0.3, 1));
            assertTrue(e.getMessage().startsWith("abkd alpha must be above 0 and finite, got " + bad), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new AlphaBetaDivergence(0.8, bad, 1));
            assertTrue(e.getMessage().startsWith("abkd beta must be above 0 and finite, got " + bad), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Losses.create("abkd", Map.of("beta", 0)));
        assertTrue(e.getMessage().endsWith("(beta -> 0 with alpha 1 is forward KL: use kd with alpha 0)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Losses.create("abkd", Map.of("alpha", 0.0)));
        assertTrue(e.getMessage().endsWith("(alpha -> 0 with beta 1 is reverse KL: use reverse-kl)"), e.getMessage());
    }

    private static void assertSameLoss(LogitLoss a, LogitLoss b, LogitBatch batch) {
        float[] ga = new float[batch.student().length];
        float[] gb = new float[batch.student().length];
        assertEquals(b.compute(batch, gb, 0.5f).value(), a.compute(batch, ga, 0.5f).value(), 1e-9);
        for (int i = 0; i < ga.length; i++) {
            assertEquals(gb[i], ga[i], 1e-6 * Math.abs(gb[i]) + 1e-9);
        }
    }

    @Test
    void dkdRecombinesToKdAsThePaperStates() {
        Random rng = new Random(12);
        int v = 50;
        for (double t : new double[]{1, 4}) {
            for (int trial = 0; trial < 5; trial++) {
                float[] s = Inputs.logits(rng, 1, v, 2.5);
                float[] te = Inputs.logits(rng, 1, v, 2.5);
                int[] y = {rng.nextInt(v)};
                LogitBatch b = LogitBatch.of(1, v, s, te, TeacherValues.LOGITS, y);
                LossResult d = new Dkd(1, 1, t, 0).compute(b, new float[v], 1f);
                double kd = new SoftTargetKd(t, 0).compute(b, new float[v], 1f).value();
                double py = Math.exp(FamilyReference.logSoftmax(FamilyReference.widen(te), 0, v, t)[y[0]]);
                // KD = TCKD + (1 - p_y) NCKD, each with T^2
                assertEquals(kd, d.terms().get("tckd") + (1 - py) * d.terms().get("nckd"), 1e-9 * kd);
                assertEquals(d.terms().get("tckd") + d.terms().get("nckd"), d.value(), 1e-12);
            }
        }
    }

    @Test
    void dkdWarmsUpOverItsEpochs() {
        Dkd d = new Dkd(1, 8, 4, 20);
        assertEquals(1.0, d.warmFactor());
        assertEquals(1.0 / 20, d.atEpoch(0, 100).warmFactor(), 1e-15);
        assertEquals(10.0 / 20, d.atEpoch(9, 100).warmFactor(), 1e-15);
        assertEquals(1.0, d.atEpoch(50, 100).warmFactor());
        assertEquals(1.0, new Dkd(1, 8, 4, 0).atEpoch(0, 10).warmFactor());
    }

    @Test
    void topKWithAllClassesEqualsKd() {
        Random rng = new Random(4);
        int rows = 3;
        int v = 17;
        float[] s = Inputs.logits(rng, rows, v, 2);
        float[] z = Inputs.logits(rng, rows, v, 2);
        int[] ids = new int[rows * v];
        float[] lps = new float[rows * v];
        float[] probs = new float[rows * v];
        for (int r = 0; r < rows; r++) {
            double[] lp = FamilyReference.logSoftmax(FamilyReference.widen(z), r * v, v, 1);
            for (int i = 0; i < v; i++) {
                int id = (i * 5 + r) % v; // any order
                ids[r * v + i] = id;
                lps[r * v + i] = (float) lp[id];
                probs[r * v + id] = (float) Math.exp(lp[id]);
            }
        }
        LogitBatch dense = LogitBatch.of(rows, v, s, probs, TeacherValues.PROBABILITIES, null);
        LogitBatch sparse = LogitBatch.ofTopK(rows, v, s, ids, lps, v, null);
        for (TopKKd.Tail tail : TopKKd.Tail.values()) {
            float[] g1 = new float[rows * v];
            float[] g2 = new float[rows * v];
            double a = new SoftTargetKd(2, 0).compute(dense, g1, 1f).value();
            double b = new TopKKd(2, tail).compute(sparse, g2, 1f).value();
            assertEquals(a, b, 1e-5 * a, tail.name());
            for (int i = 0; i < g1.length; i++) {
                assertEquals(g1[i], g2[i], 1e-5, tail.name());
            }
        }
    }

    /**
     * The rest tail takes a row whose entries sum just within TopKKd.MASS_TOLERANCE above 1 (a 16-bit store's rounding) as
     * one with an empty rest bucket, the renormalized tail's value and gradient; just beyond it, the row is refused.
     */
    @Test
    void theRestTailTakesMassUpToItsToleranceAboveOne() {
        double[] p = {0.55, 0.3, 0.15};
        double within = 1 + 0.9 * TopKKd.MASS_TOLERANCE;
        double beyond = 1 + 1.1 * TopKKd.MASS_TOLERANCE;
        float[] s = {0.3f, -1.2f, 2.0f, 0.7f, -0.4f, 1.1f, 0.05f};
        for (double mass : new double[]{within, beyond}) {
            float[] lps = new float[3];
            for (int j = 0; j < 3; j++) {
                lps[j] = (float) Math.log(p[j] * mass);
            }
            LogitBatch b = LogitBatch.ofTopK(1, 7, s, new int[]{2, 5, 0}, lps, 3, null);
            TopKKd rest = new TopKKd(2, TopKKd.Tail.REST_BUCKET);
            if (mass == beyond) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> rest.compute(b, new float[7], 0.6f));
                assertTrue(e.getMessage().contains("top-k probabilities of row 0 sum to"), e.getMessage());
                continue;
            }
            float[] g = new float[7];
            float[] gRenorm = new float[7];
            double v = rest.compute(b, g, 0.6f).value();
            double vRenorm = new TopKKd(2, TopKKd.Tail.RENORMALIZE).compute(b, gRenorm, 0.6f).value();
            assertEquals(vRenorm, v, 1e-6 * Math.abs(vRenorm), "an empty rest bucket");
            assertArrayEquals(gRenorm, g, 1e-6f);
        }
    }

    @Test
    void topKInputErrorsNameRowAndEntry() {
        float[] s = new float[2 * 5];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LogitBatch.ofTopK(2, 5, s, new int[]{0, 1, 2, 2}, new float[]{-1, -2, -1, -2}, 2, null));
        assertTrue(e.getMessage().contains("top-k ids of row 1 repeat class 2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LogitBatch.ofTopK(2, 5, s, new int[]{0, 7, 2, 3}, new float[]{-1, -2, -1, -2}, 2, null));
        assertTrue(e.getMessage().contains("top-k id at row 0, entry 1 is 7"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LogitBatch.ofTopK(2, 5, s, new int[]{0, 1, 2, 3}, new float[]{-1, 0.5f, -1, -2}, 2, null));
        assertTrue(e.getMessage().contains("log-probability at row 0, entry 1 is 0.5"), e.getMessage());
        LogitBatch tooMuch = LogitBatch.ofTopK(1, 5, new float[5], new int[]{0, 1}, new float[]{-0.1f, -0.2f}, 2, null);
        e = assertThrows(IllegalArgumentException.class,
                () -> new TopKKd(1, TopKKd.Tail.REST_BUCKET).compute(tooMuch, new float[5], 1f));
        assertTrue(e.getMessage().contains("sum to"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> new SoftTargetKd(1, 0).compute(tooMuch, new float[5], 1f));
        assertTrue(e.getMessage().contains("needs dense teacher outputs, but the batch has a top-k teacher"), e.getMessage());
    }

    @Test
    void logitStandardizationIgnoresTeacherScaleAndShift() {
        Random rng = new Random(6);
        int rows = 3;
        int v = 40;
        float[] s = Inputs.logits(rng, rows, v, 2);
        float[] t = Inputs.logits(rng, rows, v, 2);
        float[] t2 = new float[t.length];
        for (int i = 0; i < t.length; i++) {
            t2[i] = 3.5f * t[i] + 11f;
        }
        LogitLoss l = LogitStandardization.of(new SoftTargetKd(2, 0));
        double a = l.compute(LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, null), new float[rows * v], 1f).value();
        double b = l.compute(LogitBatch.of(rows, v, s, t2, TeacherValues.LOGITS, null), new float[rows * v], 1f).value();
        assertEquals(a, b, 1e-5 * a);
    }

    @Test
    void vocabularyMismatchNamesBothSizes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LogitBatch.of(2, 10, new float[20], new float[24], TeacherValues.LOGITS, null));
        assertEquals("teacher logits have 24 elements, expected rows x classes = 2 x 10 = 20; as 2 rows they have 12 classes per "
                + "row but the student has 10: the vocabularies must match, or align them explicitly with VocabularyAlignment "
                + "(TRUNCATE or PAD)", e.getMessage());
    }

    /** Rows = batch x sequence positions: a teacher with other rows must not be blamed on the vocabulary alone. */
    @Test
    void aRowCountMismatchIsNamedAsSuch() {
        // 40 values over 2 x 10: 2 rows of 20 classes, or 4 rows of 10
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LogitBatch.of(2, 10, new float[20], new float[40], TeacherValues.LOGITS, null));
        assertEquals("teacher logits have 40 elements, expected rows x classes = 2 x 10 = 20; either as 2 rows they have 20 classes "
                + "per row but the student has 10: the vocabularies must match, or align them explicitly with VocabularyAlignment "
                + "(TRUNCATE or PAD), or as rows of 10 classes they are 4 rows but the student has 2: teacher and student must see "
                + "the same rows (check how batch and sequence positions are flattened)", e.getMessage());
        // 30 values over 4 x 10: only 3 rows of 10 fits
        e = assertThrows(IllegalArgumentException.class,
                () -> LogitBatch.of(4, 10, new float[40], new float[30], TeacherValues.PROBABILITIES, null));
        assertEquals("teacher probabilities have 30 elements, expected rows x classes = 4 x 10 = 40; as rows of 10 classes they are "
                + "3 rows but the student has 4: teacher and student must see the same rows (check how batch and sequence "
                + "positions are flattened)", e.getMessage());
        // neither reading fits
        e = assertThrows(IllegalArgumentException.class,
                () -> LogitBatch.of(4, 10, new float[40], new float[37], TeacherValues.LOGITS, null));
        assertEquals("teacher logits have 37 elements, expected rows x classes = 4 x 10 = 40", e.getMessage());
    }

    @Test
    void mseRejectsProbabilities() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new LogitMse()
                .compute(LogitBatch.of(1, 2, new float[]{1, 2}, new float[]{0.5f, 0.5f}, TeacherValues.PROBABILITIES, null), new float[2], 1f));
        assertTrue(e.getMessage().contains("compares logits"), e.getMessage());
    }

    @Test
    void weightedSumAddsWeightedValuesAndGradientsAndFollowsSchedules() {
        Random rng = new Random(10);
        int rows = 5;
        int v = 21;
        float[] s = Inputs.logits(rng, rows, v, 2);
        float[] t = Inputs.logits(rng, rows, v, 2);
        int[] y = Inputs.labels(rng, rows, v);
        LogitBatch b = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, y);
        WeightedSum sum = WeightedSum.builder().add(0.25, new CrossEntropy())
                .add(org.distill4j.train.Schedule.linear(0.0, 2.0), new Dkd(1, 8, 4, 0))
                .add(0.5, new SoftTargetKd(4, 0)).add(0.1, new SoftTargetKd(2, 0)).build();
        WeightedSum late = sum.atEpoch(4, 5); // dkd weight 2.0
        float[] g = new float[rows * v];
        LossResult r = late.compute(b, g, 0.8f);
        float[] g1 = new float[rows * v];
        float[] g2 = new float[rows * v];
        float[] g3 = new float[rows * v];
        float[] g4 = new float[rows * v];
        double v1 = new CrossEntropy().compute(b, g1, 0.8f * 0.25f).value();
        double v2 = new Dkd(1, 8, 4, 0).compute(b, g2, 0.8f * 2f).value();
        double v3 = new SoftTargetKd(4, 0).compute(b, g3, 0.8f * 0.5f).value();
        double v4 = new SoftTargetKd(2, 0).compute(b, g4, 0.8f * 0.1f).value();
        assertEquals(0.25 * v1 + 2 * v2 + 0.5 * v3 + 0.1 * v4, r.value(), 1e-9);
        for (int i = 0; i < g.length; i++) {
            assertEquals(g1[i] + g2[i] + g3[i] + g4[i], g[i], 1e-6);
        }
        assertTrue(r.terms().containsKey("kd") && r.terms().containsKey("kd#2") && r.terms().containsKey("tckd"), r.terms().toString());
        assertEquals(0.0, sum.terms().get(1).currentWeight(), "a schedule starts at its first value");
        WeightedSum hot = late.withTemperature(7);
        assertEquals(7.0, ((TemperatureScaled) hot.terms().get(1).loss()).temperature());
        assertEquals(7.0, ((TemperatureScaled) hot.terms().get(3).loss()).temperature());
        assertThrows(IllegalArgumentException.class, () -> WeightedSum.builder().add(1, new CrossEntropy())
                .add(1, new SoftTargetKd(1, 0, Reduction.SUM)).build());
        IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                () -> WeightedSum.builder().add(1, new CrossEntropy()).add(Double.NaN, new SoftTargetKd(2, 0)).build());
        assertEquals("weight of term 'kd' is NaN; expected a finite number", nan.getMessage());
    }

    @Test
    void weightedSumKeepsEveryReportedTermUnderItsOwnKey() {
        Random rng = new Random(14);
        int rows = 3;
        int v = 17;
        float[] s = Inputs.logits(rng, rows, v, 2);
        float[] t = Inputs.logits(rng, rows, v, 2);
        int[] y = Inputs.labels(rng, rows, v);
        LogitBatch b = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, y);
        double kd = new SoftTargetKd(2, 0).compute(b, new float[rows * v], 1f).value();
        LossResult std = LogitStandardization.of(new SoftTargetKd(2, 0)).compute(b, new float[rows * v], 1f);
        double ce = new CrossEntropy().compute(b, new float[rows * v], 1f).value();
        assertTrue(Math.abs(kd - std.terms().get("kd")) > 1e-3 * kd, "the two kd terms differ, so an overwrite would show");

        // kd + logit-std(kd): both report 'kd'
        LossResult r = WeightedSum.builder().add(1, new SoftTargetKd(2, 0)).add(1, LogitStandardization.of(new SoftTargetKd(2, 0)))
                .build().compute(b, new float[rows * v], 1f);
        assertEquals(java.util.Set.of("kd", "logit-std", "kd#2"), r.terms().keySet());
        assertEquals(kd, r.terms().get("kd"), 0.0, "plain kd keeps its key");
        assertEquals(std.terms().get("kd"), r.terms().get("kd#2"), 0.0, "the standardized kd gets the next free key");

        // ce + kd(alpha 0.3) + kd(alpha 0.3): 'ce' from three terms, 'kd' from two
        r = WeightedSum.builder().add(0.5, new CrossEntropy()).add(1, new SoftTargetKd(2, 0.3)).add(1, new SoftTargetKd(3, 0.3))
                .build().compute(b, new float[rows * v], 1f);
        assertEquals(java.util.Set.of("ce", "kd", "ce#2", "kd#2", "ce#3"), r.terms().keySet());
        for (String k : new String[]{"ce", "ce#2", "ce#3"}) {
            Tolerances.assertValueClose(ce, r.terms().get(k), "term " + k + " is the batch's cross-entropy");
        }
        assertEquals(kd, r.terms().get("kd"), 1e-12 * kd);
        assertEquals(new SoftTargetKd(3, 0).compute(b, new float[rows * v], 1f).value(), r.terms().get("kd#2"), 1e-12);

        // a term reporting a key that the suffix of a repeated name would produce
        r = WeightedSum.builder().add(1, new SoftTargetKd(2, 0)).add(1, new SoftTargetKd(2, 0))
                .add(1, LogitStandardization.of(new SoftTargetKd(2, 0))).build().compute(b, new float[rows * v], 1f);
        assertEquals(java.util.Set.of("kd", "kd#2", "logit-std", "kd#3"), r.terms().keySet());
        assertEquals(std.terms().get("kd"), r.terms().get("kd#3"), 0.0);
    }

    static Stream<String> registered() {
        return Stream.concat(Losses.names().stream(), Stream.of("weighted-sum"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("registered")
    void aNonFiniteUpstreamFactorIsRejectedNamingTheLoss(String name) {
        Random rng = new Random(15);
        int rows = 3;
        int v = 7;
        float[] s = Inputs.logits(rng, rows, v, 2);
        int[] y = Inputs.labels(rng, rows, v);
        LogitLoss loss = name.equals("weighted-sum")
                ? WeightedSum.builder().add(0.1, new CrossEntropy()).add(0.9, new SoftTargetKd(2, 0)).build()
                : Losses.create(name, Map.of());
        LogitBatch b;
        if (loss.needsTopK()) {
            b = LogitBatch.ofTopK(rows, v, s, new int[]{0, 1, 2, 3, 4, 5}, new float[]{-0.5f, -1.5f, -0.7f, -1.2f, -0.4f, -2f}, 2, y);
        } else {
            b = LogitBatch.of(rows, v, s, Inputs.logits(rng, rows, v, 2), TeacherValues.LOGITS, y);
        }
        float[] g = new float[rows * v];
        assertTrue(Double.isFinite(loss.compute(b, g, 0.73f).value()), name + " on a finite upstream");
        for (float up : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> loss.compute(b, g, up), name + " upstream " + up);
            assertEquals("upstream gradient factor for loss '" + loss.name() + "' is " + up
                    + ", expected a finite number (1 for a loss used alone, the term weight inside a weighted sum)", e.getMessage());
            try (org.distill4j.backend.CpuBackend be = new org.distill4j.backend.CpuBackend(2)) {
                IllegalArgumentException viaBackend = assertThrows(IllegalArgumentException.class, () -> be.logitLoss(loss, b, g, up));
                assertEquals(e.getMessage(), viaBackend.getMessage(), name + " through the CPU backend");
            }
        }
    }

    /** A missing, short or aliased gradient buffer: a clear error naming the loss (and the input it aliases), never an NPE. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("registered")
    void aBadGradientBufferIsRejectedNamingTheLossAndTheAliasedInput(String name) {
        Random rng = new Random(19);
        int rows = 3;
        int v = 5;
        float[] s = Inputs.logits(rng, rows, v, 2);
        int[] y = Inputs.labels(rng, rows, v);
        LogitLoss loss = name.equals("weighted-sum")
                ? WeightedSum.builder().add(0.1, new CrossEntropy()).add(0.9, new SoftTargetKd(2, 0)).build()
                : Losses.create(name, Map.of());
        LogitBatch b;
        if (loss.needsTopK()) { // k = V: the log-probabilities have the gradient's length
            int[] ids = new int[rows * v];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = i % v;
            }
            float[] lps = new float[rows * v];
            for (int r = 0; r < rows; r++) {
                double[] lp = FamilyReference.logSoftmax(FamilyReference.widen(Inputs.logits(rng, 1, v, 2)), 0, v, 1);
                for (int i = 0; i < v; i++) {
                    lps[r * v + i] = (float) lp[i];
                }
            }
            b = LogitBatch.ofTopK(rows, v, s, ids, lps, v, y);
        } else {
            b = LogitBatch.of(rows, v, s, Inputs.logits(rng, rows, v, 2), TeacherValues.LOGITS, y);
        }
        String prefix = "gradient buffer for loss '" + loss.name() + "' ";
        try (org.distill4j.backend.CpuBackend be = new org.distill4j.backend.CpuBackend(2)) {
            for (boolean viaBackend : new boolean[]{false, true}) {
                java.util.function.Function<float[], IllegalArgumentException> run = g -> assertThrows(IllegalArgumentException.class,
                        () -> {
                            if (viaBackend) {
                                be.logitLoss(loss, b, g, 0.73f);
                            } else {
                                loss.compute(b, g, 0.73f);
                            }
                        }, name);
                assertEquals(prefix + "has no array, expected rows x classes = 3 x 5", run.apply(null).getMessage());
                assertEquals(prefix + "has 14 elements, expected rows x classes = 3 x 5", run.apply(new float[14]).getMessage());
                String tail = "; it must not alias an input (the loss reads them while it writes the gradient)";
                assertEquals(prefix + "is the same array as the student logits" + tail, run.apply(b.student()).getMessage());
                if (b.teacher() != null) {
                    assertEquals(prefix + "is the same array as the teacher values" + tail, run.apply(b.teacher()).getMessage());
                } else if (loss.needsTopK()) {
                    assertEquals(prefix + "is the same array as the top-k log-probabilities" + tail, run.apply(b.topkLogProbs()).getMessage());
                }
            }
        }
    }

    @Test
    void inputErrorsNameTheRegisteredLossAndWhatIsExpected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ReverseKl(-1));
        assertEquals("reverse-kl temperature must be a finite number > 0, got -1.0", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new GeneralizedJsd(0.5, 0));
        assertEquals("gjsd temperature must be a finite number > 0, got 0.0", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Dkd(1, 8, Double.NaN, 0));
        assertEquals("dkd temperature must be a finite number > 0, got NaN", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> LogitBatch.ofTopK(1, 3, new float[]{0.3f, -1.1f, 2.4f}, new int[]{0, 2},
                new float[]{-0.5f, 3e-4f}, 2, null));
        assertEquals("top-k log-probability at row 0, entry 1 is 3.0E-4, expected a finite value <= 0 (up to 1e-4 of rounding "
                + "above 0 is accepted), or -Infinity for probability 0", e.getMessage());
        // logit-std with a probability teacher: +Inf is named as the probability it is
        e = assertThrows(IllegalArgumentException.class, () -> LogitStandardization.of(new SoftTargetKd(2, 0)).compute(
                LogitBatch.of(1, 3, new float[]{0.3f, -1.1f, 2.4f}, new float[]{0.2f, Float.POSITIVE_INFINITY, 0.1f},
                        TeacherValues.PROBABILITIES, null), new float[3], 1f));
        assertEquals("teacher probability at row 0, class 1 is Infinity, expected a finite value >= 0", e.getMessage());
    }

    /**
     * The weights of gjsd and dkd: their bounds are accepted and give finite losses (gjsd beta 0 and 1 are the KL
     * divergences, dkd alpha or beta 0 drops a part, warm-up 0 is none); values outside, NaN and infinities are refused
     * naming the loss and the value.
     */
    @Test
    void weightsOutsideTheirRangeAreRefusedAndTheirBoundsAccepted() {
        Random rng = new Random(21);
        int rows = 3;
        int v = 7;
        LogitBatch b = LogitBatch.of(rows, v, Inputs.logits(rng, rows, v, 2), Inputs.logits(rng, rows, v, 2), TeacherValues.LOGITS,
                Inputs.labels(rng, rows, v));
        for (LogitLoss ok : List.<LogitLoss>of(new GeneralizedJsd(0, 2), new GeneralizedJsd(1, 2), new Dkd(0, 8, 4, 0),
                new Dkd(1, 0, 4, 0), new Dkd(0, 0, 4, 3))) {
            assertTrue(Double.isFinite(ok.compute(b, new float[rows * v], UP).value()), ok.settings().toString());
        }
        for (double beta : new double[]{-1e-9, 1 + 1e-9, Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new GeneralizedJsd(beta, 2), "beta " + beta);
            assertEquals("gjsd beta must be in [0, 1], got " + beta, e.getMessage());
        }
        for (double bad : new double[]{-1e-9, Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Dkd(bad, 8, 4, 0), "alpha " + bad);
            assertEquals("dkd alpha and beta must be finite and >= 0, got " + bad + " and 8.0", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new Dkd(1, bad, 4, 0), "beta " + bad);
            assertEquals("dkd alpha and beta must be finite and >= 0, got 1.0 and " + bad, e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Dkd(1, 8, 4, -1));
        assertEquals("dkd warmup must be >= 0 epochs, got -1", e.getMessage());
    }

    /**
     * A temperature so small that 1/T overflows (a subnormal double) was accepted and turned every value and gradient into
     * NaN without an error (0 * Infinity at each row's maximum): refused, naming the loss, for every temperature-scaled
     * loss; the smallest normal temperature still gives finite results.
     */
    @Test
    void aTemperatureWhoseReciprocalOverflowsIsRefused() {
        for (double t : new double[]{Double.MIN_VALUE, 1e-310}) {
            for (java.util.function.DoubleFunction<LogitLoss> make : List.<java.util.function.DoubleFunction<LogitLoss>>of(
                    x -> new SoftTargetKd(x, 0), ReverseKl::new, x -> new GeneralizedJsd(0.5, x), x -> new SkewKl(0.1, x),
                    x -> new SkewReverseKl(0.1, x), x -> new AdaptiveKl(0.5, x), x -> new AlphaBetaDivergence(0.8, 0.3, x),
                    TotalVariation::new,
                    x -> new Dkd(1, 8, x, 0), x -> new TopKKd(x, TopKKd.Tail.RENORMALIZE))) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> make.apply(t), "T = " + t);
                assertTrue(e.getMessage().contains("temperature") && e.getMessage().contains(String.valueOf(t)), e.getMessage());
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Losses.create("kd", Map.of("temperature", t)));
            assertTrue(e.getMessage().startsWith("kd temperature must be"), e.getMessage());
        }
        float[] s = {0.3f, -1.2f, 2.5f, 0.7f};
        float[] te = {1.1f, 0.2f, -0.4f, 0.9f};
        LogitLoss smallest = new SoftTargetKd(Double.MIN_NORMAL, 0);
        float[] g = Inputs.poisoned(4);
        LossResult r = smallest.compute(LogitBatch.of(1, 4, s, te, TeacherValues.LOGITS, null), g, UP);
        assertTrue(Double.isFinite(r.value()), "value at T = MIN_NORMAL: " + r.value());
        for (float x : g) {
            assertTrue(Float.isFinite(x), Arrays.toString(g));
        }
    }

    @Test
    void everyLossIsRegisteredWithItsSettings() {
        assertEquals(List.of("kd", "ce", "reverse-kl", "gjsd", "skew-kl", "skew-rkl", "akl", "abkd", "tvd", "mse", "dkd", "dist",
                "logit-std", "topk-kd"), Losses.names());
        assertTrue(Losses.create("akl", Map.of()) instanceof AdaptiveKl a && a.mu() == 0.5 && a.temperature() == 1.0,
                "the paper's head mass, at T = 1");
        assertTrue(Losses.create("abkd", Map.of()) instanceof AlphaBetaDivergence d && d.alpha() == 0.8 && d.beta() == 0.3
                && d.temperature() == 1.0, "the authors' image-classification pair");
        assertTrue(Losses.create("gjsd", Map.of("beta", 0.2)) instanceof GeneralizedJsd g && g.beta() == 0.2);
        assertTrue(Losses.create("skew-kl", Map.of()) instanceof SkewKl k && k.alpha() == 0.1 && k.temperature() == 1.0,
                "DistiLLM's default skew, at T = 1");
        assertTrue(Losses.create("skew-rkl", Map.of("alpha", 0.25, "temperature", 2, "reduction", "sum")) instanceof SkewReverseKl k
                && k.alpha() == 0.25 && k.temperature() == 2.0 && k.reduction() == Reduction.SUM);
        assertTrue(Losses.create("dkd", Map.of("warmup", 5, "beta", 2)) instanceof Dkd);
        LogitLoss ls = Losses.create("logit-std", Map.of("loss", "dkd", "temperature", 3));
        assertTrue(ls instanceof LogitStandardization l && l.inner() instanceof Dkd d && d.temperature() == 3.0);
        assertTrue(Losses.create("topk-kd", Map.of("tail", "rest")) instanceof TopKKd k && k.tail() == TopKKd.Tail.REST_BUCKET);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Losses.create("logit-std", Map.of("tempo", 3)));
        assertTrue(e.getMessage().contains("loss 'kd' has no setting 'tempo'"), e.getMessage());
        // the inner loss's name, as 'reduction' and 'tail': blanks and case do not matter
        assertTrue(Losses.create("logit-std", Map.of("loss", " DKD ", "temperature", 3)) instanceof LogitStandardization l
                && l.inner() instanceof Dkd);
        e = assertThrows(IllegalArgumentException.class, () -> Losses.create("logit-std", Map.of("loss", "dkdd")));
        assertTrue(e.getMessage().startsWith("unknown loss 'dkdd'; registered losses: kd, ce"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Losses.create("dkd", Map.of("warmup", 2.5)));
        assertTrue(e.getMessage().contains("whole number"), e.getMessage());
    }
}
