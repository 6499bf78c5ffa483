package org.distill4j.loss;

import org.distill4j.testing.Float64Reference;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SoftTargetKdTest {
    private static final float UPSTREAM = 0.73f;

    static Stream<Arguments> shapes() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (int v : new int[]{1, 10, 1000, 32003}) {
            // 2, 3, 4 and 5 take the CE term's exp as a power of the tempered one (16 the last such, 17 and 20 do not)
            for (double t : new double[]{0.5, 1, 2, 2.5, 3, 4, 5, 16, 17, 20}) {
                for (double alpha : new double[]{0.0, 0.3}) {
                    b.add(Arguments.of(v, t, alpha));
                }
            }
        }
        return b.build();
    }

    @ParameterizedTest(name = "V={0} T={1} alpha={2}")
    @MethodSource("shapes")
    void matchesFloat64ReferenceForLogitsAndProbabilities(int v, double t, double alpha) {
        Random rng = new Random(31L * v + (long) (t * 100) + (long) (alpha * 10));
        int rows = v > 10000 ? 3 : 7;
        float[] s = Inputs.logits(rng, rows, v, 2.5);
        int[] y = Inputs.labels(rng, rows, v);
        SoftTargetKd loss = new SoftTargetKd(t, alpha);
        for (boolean probs : new boolean[]{false, true}) {
            float[] teacher = probs ? Inputs.probabilities(rng, rows, v, 2.5) : Inputs.logits(rng, rows, v, 2.5);
            double[] refGrad = new double[rows * v];
            double ref = Float64Reference.kd(s, teacher, probs, y, rows, v, t, alpha, UPSTREAM, refGrad);
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = loss.compute(LogitBatch.of(rows, v, s, teacher,
                    probs ? TeacherValues.PROBABILITIES : TeacherValues.LOGITS, alpha > 0 ? y : null), grad, UPSTREAM);
            String what = "kd V=" + v + " T=" + t + " alpha=" + alpha + (probs ? " (probabilities)" : " (logits)");
            Tolerances.assertValueClose(ref, r.value(), what + " value");
            Tolerances.assertGradClose(refGrad, grad, what + " gradient");
            assertEquals(rows, r.rows());
        }
    }

    @Test
    void referenceGradientMatchesCentralFiniteDifferences() {
        Random rng = new Random(7);
        int rows = 3;
        int v = 37;
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        float[] teacher = Inputs.logits(rng, rows, v, 2.0);
        int[] y = Inputs.labels(rng, rows, v);
        for (double t : new double[]{0.5, 1, 4, 20}) {
            double[] grad = new double[rows * v];
            Float64Reference.kd(s, teacher, false, y, rows, v, t, 0.3, 1.0, grad);
            // central differences in double on a double copy of the inputs
            double h = 1e-3;
            for (int k = 0; k < rows * v; k += 5) {
                double fd = (kdAt(s, k, +h, teacher, y, rows, v, t) - kdAt(s, k, -h, teacher, y, rows, v, t)) / (2 * h);
                assertEquals(fd, grad[k], Tolerances.FD_REL * Math.max(1, Math.abs(fd)) + 1e-8,
                        "d kd / d s[" + k + "] at T=" + t);
            }
        }
    }

    /** The reference value with student element k moved by delta, computed on doubles exactly. */
    private static double kdAt(float[] s, int k, double delta, float[] teacher, int[] y, int rows, int v, double t) {
        // Float64Reference takes float inputs; move the element in a way exact in double by rescaling:
        // evaluate the row-wise formula directly in double instead.
        double total = 0;
        for (int r = 0; r < rows; r++) {
            double[] srow = new double[v];
            double[] trow = new double[v];
            for (int i = 0; i < v; i++) {
                srow[i] = s[r * v + i] + (r * v + i == k ? delta : 0);
                trow[i] = teacher[r * v + i];
            }
            double[] logP = logSoftmax(trow, t);
            double[] logQ = logSoftmax(srow, t);
            double[] logS = logSoftmax(srow, 1);
            double kl = 0;
            for (int i = 0; i < v; i++) {
                kl += Math.exp(logP[i]) * (logP[i] - logQ[i]);
            }
            total += 0.3 * -logS[y[r]] + 0.7 * t * t * kl;
        }
        return total / rows;
    }

    private static double[] logSoftmax(double[] x, double t) {
        return Float64Reference.logSoftmax(x, 0, x.length, t);
    }

    @Test
    void implementationGradientMatchesFiniteDifferencesOfItsOwnValue() {
        Random rng = new Random(11);
        int rows = 2;
        int v = 10;
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        float[] teacher = Inputs.logits(rng, rows, v, 2.0);
        int[] y = Inputs.labels(rng, rows, v);
        SoftTargetKd loss = new SoftTargetKd(4, 0.3);
        float[] grad = new float[rows * v];
        loss.compute(LogitBatch.of(rows, v, s, teacher, TeacherValues.LOGITS, y), grad, 1f);
        float h = 1e-2f;
        for (int k = 0; k < rows * v; k++) {
            float[] plus = s.clone();
            float[] minus = s.clone();
            plus[k] += h;
            minus[k] -= h;
            double dh = (double) plus[k] - minus[k]; // the step actually taken in float
            double fd = (value(loss, plus, teacher, y, rows, v) - value(loss, minus, teacher, y, rows, v)) / dh;
            assertEquals(fd, grad[k], 2e-4 * Math.max(1, Math.abs(fd)), "element " + k);
        }
    }

    private static double value(SoftTargetKd loss, float[] s, float[] t, int[] y, int rows, int v) {
        return loss.compute(LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, y), new float[rows * v], 1f).value();
    }

    @Test
    void extremeLogitsGiveFiniteResultsMatchingTheReference() {
        Random rng = new Random(5);
        int rows = 4;
        int v = 1000;
        float[] s = Inputs.logits(rng, rows, v, 1.0);
        float[] teacher = Inputs.logits(rng, rows, v, 1.0);
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < v - 1; i += 3) {
                s[r * v + i] = (i % 2 == 0 ? 1e4f : -1e4f) * (0.5f + rng.nextFloat());
                teacher[r * v + i + 1] = (i % 2 == 0 ? -1e4f : 1e4f) * (0.5f + rng.nextFloat());
            }
        }
        int[] y = Inputs.labels(rng, rows, v);
        for (double t : new double[]{0.5, 1, 2, 3, 4, 7, 16, 20}) {
            SoftTargetKd loss = new SoftTargetKd(t, 0.2);
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = loss.compute(LogitBatch.of(rows, v, s, teacher, TeacherValues.LOGITS, y), grad, UPSTREAM);
            assertTrue(Double.isFinite(r.value()), "value at T=" + t + " is " + r.value());
            for (float g : grad) {
                assertTrue(Float.isFinite(g), "gradient element not finite at T=" + t);
            }
            double[] refGrad = new double[rows * v];
            double ref = Float64Reference.kd(s, teacher, false, y, rows, v, t, 0.2, UPSTREAM, refGrad);
            Tolerances.assertValueClose(ref, r.value(), "extreme value T=" + t);
            Tolerances.assertGradClose(refGrad, grad, "extreme gradient T=" + t);
        }
    }

    @Test
    void identicalTeacherAndStudentGiveZeroKdAndZeroGradient() {
        Random rng = new Random(3);
        int rows = 5;
        int v = 513;
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        for (double t : new double[]{0.5, 1, 4, 20}) {
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = new SoftTargetKd(t, 0).compute(LogitBatch.of(rows, v, s, s.clone(), TeacherValues.LOGITS, null),
                    grad, 1f);
            assertEquals(0.0, r.value(), 1e-9, "KD of identical rows at T=" + t);
            for (float g : grad) {
                assertEquals(0f, g, 1e-9f);
            }
        }
    }

    @Test
    void teacherProbabilitiesGiveTheSameLossAsTheirLogits() {
        Random rng = new Random(9);
        int rows = 6;
        int v = 97;
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        float[] z = Inputs.logits(rng, rows, v, 2.0);
        float[] p = new float[z.length];
        for (int r = 0; r < rows; r++) {
            double[] lp = Float64Reference.logSoftmax(z, r * v, v, 1.0);
            for (int i = 0; i < v; i++) {
                p[r * v + i] = (float) Math.exp(lp[i]);
            }
        }
        int[] y = Inputs.labels(rng, rows, v);
        SoftTargetKd loss = new SoftTargetKd(4, 0.1);
        float[] g1 = new float[rows * v];
        float[] g2 = new float[rows * v];
        double a = loss.compute(LogitBatch.of(rows, v, s, z, TeacherValues.LOGITS, y), g1, 1f).value();
        double b = loss.compute(LogitBatch.of(rows, v, s, p, TeacherValues.PROBABILITIES, y), g2, 1f).value();
        assertEquals(a, b, 1e-5 * Math.abs(a));
        for (int i = 0; i < g1.length; i++) {
            assertEquals(g1[i], g2[i], 1e-6);
        }
    }

    @Test
    void zeroAndTinyTeacherProbabilitiesMatchTheReference() {
        int v = 6;
        int rows = 3;
        float[] p = {0.7f, 0.3f, 0f, 0f, 0f, 0f,                       // exact zeros: zero targets
                1f, Float.MIN_VALUE, 1e-30f, 0f, 1e-38f, 0f,             // one-hot with subnormal and tiny mass
                0.1f, 0.2f, 0.3f, 0.15f, 0.05f, 0.2f};
        Random rng = new Random(23);
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        s[7] = 1e4f;
        s[8] = -1e4f;
        int[] y = {0, 3, 5};
        for (double t : new double[]{0.5, 1, 4, 20}) {
            double[] refGrad = new double[rows * v];
            double ref = Float64Reference.kd(s, p, true, y, rows, v, t, 0.3, UPSTREAM, refGrad);
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = new SoftTargetKd(t, 0.3).compute(LogitBatch.of(rows, v, s, p, TeacherValues.PROBABILITIES, y),
                    grad, UPSTREAM);
            assertTrue(Double.isFinite(r.value()), "T=" + t);
            Tolerances.assertValueClose(ref, r.value(), "zero probabilities T=" + t);
            Tolerances.assertGradClose(refGrad, grad, "zero probabilities gradient T=" + t);
        }
    }

    /**
     * Teacher probabilities at a temperature below 1/745: the teacher's exponents must be taken relative to the log of
     * the row's largest probability. Relative to anything else (the probability itself, which differs from its log by
     * at least 1) every {@code exp((log p_i - shift) / T)} underflows to 0 and the targets become 0/0.
     */
    @Test
    void teacherProbabilitiesAtASmallTemperatureMatchTheReference() {
        Random rng = new Random(41);
        int rows = 4;
        int v = 37;
        float[] s = Inputs.logits(rng, rows, v, 2.5);
        float[] p = Inputs.probabilities(rng, rows, v, 2.5);
        int[] y = Inputs.labels(rng, rows, v);
        for (double t : new double[]{1e-3, 5e-4}) {
            for (double alpha : new double[]{0.0, 0.3}) {
                double[] refGrad = new double[rows * v];
                double ref = Float64Reference.kd(s, p, true, y, rows, v, t, alpha, UPSTREAM, refGrad);
                float[] grad = Inputs.poisoned(rows * v);
                LossResult r = new SoftTargetKd(t, alpha).compute(LogitBatch.of(rows, v, s, p, TeacherValues.PROBABILITIES,
                        alpha > 0 ? y : null), grad, UPSTREAM);
                String what = "kd T=" + t + " alpha=" + alpha + " (probabilities)";
                assertTrue(Double.isFinite(ref) && ref > 0, what + ": reference " + ref);
                Tolerances.assertValueClose(ref, r.value(), what + " value");
                Tolerances.assertGradClose(refGrad, grad, what + " gradient");
            }
        }
    }

    @Test
    void sumReductionIsRowsTimesMeanAndTermsAreReported() {
        Random rng = new Random(13);
        int rows = 9;
        int v = 33;
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        float[] t = Inputs.logits(rng, rows, v, 2.0);
        int[] y = Inputs.labels(rng, rows, v);
        float[] gm = new float[rows * v];
        float[] gs = new float[rows * v];
        LossResult mean = new SoftTargetKd(2, 0.25).compute(LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, y), gm, 1f);
        LossResult sum = new SoftTargetKd(2, 0.25, Reduction.SUM).compute(LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, y), gs, 1f);
        assertEquals(rows * mean.value(), sum.value(), 1e-9 * sum.value());
        for (int i = 0; i < gm.length; i++) {
            assertEquals(rows * gm[i], gs[i], 1e-6 * Math.abs(gs[i]) + 1e-9);
        }
        assertEquals(0.25 * mean.terms().get("ce") + 0.75 * mean.terms().get("kd"), mean.value(), 1e-12);
    }

    @Test
    void badInputsFailWithClearMessages() {
        float[] s = {1, 2, 3, 4, 5, 6};
        float[] t = {1, 2, 3, 4, 5, 6};
        SoftTargetKd kd = new SoftTargetKd(2, 0.5);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LogitBatch.of(2, 4, s, t, TeacherValues.LOGITS, null));
        assertTrue(e.getMessage().contains("student logits have 6 elements, expected rows x classes = 2 x 4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LogitBatch.of(2, 3, s, new float[5], TeacherValues.LOGITS, null));
        assertTrue(e.getMessage().contains("teacher logits have 5 elements"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LogitBatch.of(2, 3, s, t, TeacherValues.LOGITS, new int[]{0, 3}));
        assertTrue(e.getMessage().contains("label of row 1 is 3, expected a class index in [0, 3)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> kd.compute(LogitBatch.of(2, 3, s, t, TeacherValues.LOGITS, null), new float[6], 1f));
        assertTrue(e.getMessage().contains("needs hard labels"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> kd.compute(LogitBatch.of(2, 3, s, t, TeacherValues.LOGITS, new int[]{0, 1}), new float[5], 1f));
        assertTrue(e.getMessage().contains("gradient buffer"), e.getMessage());
        float[] nan = s.clone();
        nan[4] = Float.NaN;
        e = assertThrows(IllegalArgumentException.class,
                () -> kd.compute(LogitBatch.of(2, 3, nan, t, TeacherValues.LOGITS, new int[]{0, 1}), new float[6], 1f));
        assertTrue(e.getMessage().contains("student logit at row 1, class 1 is NaN"), e.getMessage());
        float[] negative = {0.5f, 0.5f, 0f, 0.2f, -0.1f, 0.9f};
        e = assertThrows(IllegalArgumentException.class,
                () -> kd.compute(LogitBatch.of(2, 3, s, negative, TeacherValues.PROBABILITIES, new int[]{0, 1}), new float[6], 1f));
        assertTrue(e.getMessage().contains("teacher probability at row 1, class 1 is -0.1"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new SoftTargetKd(0, 0.5));
        assertThrows(IllegalArgumentException.class, () -> new SoftTargetKd(1, 1.5));
    }

    @Test
    void integerTemperaturesArePowersUpToSixteen() {
        assertEquals(0, SoftTargetKd.integerPower(0.5));
        assertEquals(0, SoftTargetKd.integerPower(1));
        assertEquals(0, SoftTargetKd.integerPower(2.5));
        assertEquals(0, SoftTargetKd.integerPower(Math.nextUp(4.0)));
        assertEquals(0, SoftTargetKd.integerPower(SoftTargetKd.MAX_POWER + 1));
        assertEquals(0, SoftTargetKd.integerPower(1e300));
        assertEquals(0, SoftTargetKd.integerPower(Double.POSITIVE_INFINITY));
        for (int n = 2; n <= SoftTargetKd.MAX_POWER; n++) {
            assertEquals(n, SoftTargetKd.integerPower(n));
        }
        Random rng = new Random(23);
        for (int n = 1; n <= SoftTargetKd.MAX_POWER; n++) {
            for (int k = 0; k < 200; k++) {
                double x = Math.exp(-rng.nextDouble() * 40); // a tempered exponential: in (e^-40, 1]
                double want = Math.pow(x, n);
                assertEquals(want, SoftTargetKd.pow(x, n), 8 * Math.ulp(want), "x=" + x + " n=" + n);
            }
        }
    }

    /**
     * Rows whose student logits fall 700 to 760 below the maximum: there exp(ds) is subnormal or zero in double, so the
     * CE term's exp(ds / T)^T underflows in its own way; value and gradient still match the float64 reference.
     */
    @Test
    void underflowingCrossEntropyTermsMatchTheReference() {
        Random rng = new Random(29);
        int rows = 5;
        int v = 61;
        float[] s = new float[rows * v];
        float[] teacher = Inputs.logits(rng, rows, v, 2.0);
        for (int r = 0; r < rows; r++) {
            s[r * v] = 3f;
            for (int i = 1; i < v; i++) {
                s[r * v + i] = 3f - 700f - 60f * rng.nextFloat();
            }
        }
        int[] y = Inputs.labels(rng, rows, v);
        for (double t : new double[]{2, 3, 4, 16, 17}) {
            SoftTargetKd loss = new SoftTargetKd(t, 0.5);
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = loss.compute(LogitBatch.of(rows, v, s, teacher, TeacherValues.LOGITS, y), grad, UPSTREAM);
            double[] refGrad = new double[rows * v];
            double ref = Float64Reference.kd(s, teacher, false, y, rows, v, t, 0.5, UPSTREAM, refGrad);
            Tolerances.assertValueClose(ref, r.value(), "underflow value T=" + t);
            Tolerances.assertGradClose(refGrad, grad, "underflow gradient T=" + t);
        }
    }

    @Test
    void registeredUnderItsNameWithSettings() {
        LogitLoss l = Losses.create("kd", Map.of("temperature", 3, "alpha", "0.2"));
        assertTrue(l instanceof SoftTargetKd k && k.temperature() == 3 && k.alpha() == 0.2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Losses.create("kdd", Map.of()));
        assertTrue(e.getMessage().contains("registered losses: kd, ce"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Losses.create("kd", Map.of("temp", 3)));
        assertTrue(e.getMessage().contains("no setting 'temp'"), e.getMessage());
        // a number's text is decimal: not Java's literal forms, which Double.parseDouble would take
        for (String javaLiteral : new String[]{"4f", "4d", "0x1p2", "4.0F"}) {
            e = assertThrows(IllegalArgumentException.class, () -> Losses.create("kd", Map.of("temperature", javaLiteral)));
            assertTrue(e.getMessage().contains("setting 'temperature' must be a number, got '" + javaLiteral + "'"), e.getMessage());
        }
        assertEquals(250.0, ((SoftTargetKd) Losses.create("kd", Map.of("temperature", " +2.5e2 "))).temperature());
        assertEquals(0.5, ((SoftTargetKd) Losses.create("kd", Map.of("temperature", ".5"))).temperature());
    }
}
