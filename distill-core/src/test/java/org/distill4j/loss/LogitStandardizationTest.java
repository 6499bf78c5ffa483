package org.distill4j.loss;

import org.distill4j.testing.Float64Reference;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Logit standardization as in the paper: only the distillation term sees z-scored logits, the hard-label
 * cross-entropy stays on the raw student logits; and the standard-deviation floor that keeps constant and
 * near-constant rows from dividing by eps. Everything against float64 references (FamilyReference) with
 * gradients from central differences, upstream 0.73.
 */
class LogitStandardizationTest {
    static final float UP = 0.73f;

    @ParameterizedTest(name = "V={0} T={1} alpha={2}")
    @CsvSource({"7, 1, 0.3", "7, 4, 0.9", "1001, 2, 0.1", "13, 0.5, 1.0"})
    void hardLabelCrossEntropyRunsOnTheRawLogitsAndTermsAreTheRealOnes(int v, double t, double alpha) {
        Random rng = new Random(31L * v + (long) (t * 10) + (long) (alpha * 100));
        int rows = 3;
        float[] s = Inputs.logits(rng, rows, v, 2.5);
        float[] te = Inputs.logits(rng, rows, v, 2.5);
        int[] y = Inputs.labels(rng, rows, v);
        LogitBatch b = LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = LogitStandardization.of(new SoftTargetKd(t, alpha)).compute(b, grad, UP);

        double[] sd = FamilyReference.widen(s);
        double[] td = FamilyReference.widen(te);
        double ce = Float64Reference.ce(s, y, rows, v, 1, null);
        double kd = FamilyReference.kd(FamilyReference.standardize(sd, rows, v), FamilyReference.standardize(td, rows, v), y, rows, v, t, 0);
        String what = "logit-std(kd T=" + t + " alpha=" + alpha + ") V=" + v;
        // the implementation feeds float32 standardized rows to kd: its kd term carries float rounding
        assertEquals(kd, r.terms().get("kd"), 2e-6 * Math.max(1, kd), what + ": term 'kd' is KD on the standardized rows");
        Tolerances.assertValueClose(ce, r.terms().get("ce"), what + ": term 'ce' is the cross-entropy of the raw student logits");
        double ref = FamilyReference.logitStdKd(sd, td, y, rows, v, t, alpha);
        assertEquals(ref, r.value(), 2e-6 * Math.max(1, ref), what + " value");
        assertEquals(r.value(), r.terms().get("logit-std"), 0.0, what + ": term 'logit-std' is the value");
        assertEquals(alpha * r.terms().get("ce") + (1 - alpha) * r.terms().get("kd"), r.value(), 1e-12 * Math.max(1, r.value()),
                what + ": value = alpha * ce + (1 - alpha) * kd");
        LossFamilyTest.checkGradient(x -> FamilyReference.logitStdKd(x, td, y, rows, v, t, alpha), sd, grad, rng, what);
    }

    /**
     * The standardized KD term cannot see a per-row affine map of the student's logits, so only the raw CE
     * does: the gradient's component along the centred logits is exactly alpha times the CE gradient's
     * (before the fix the whole loss was invariant and that component was 0).
     */
    @Test
    void onlyTheCrossEntropyTermSeesTheScaleOfTheRawLogits() {
        Random rng = new Random(17);
        int rows = 4;
        int v = 9;
        double alpha = 0.1;
        float[] s = Inputs.logits(rng, rows, v, 1.5);
        float[] scaled = new float[s.length];
        for (int i = 0; i < s.length; i++) {
            scaled[i] = 10 * s[i] + 7;
        }
        float[] te = Inputs.logits(rng, rows, v, 1.5);
        int[] y = Inputs.labels(rng, rows, v);
        LogitLoss loss = Losses.create("logit-std", Map.of()); // the registry default: kd T 4, alpha 0.1
        LossResult a = loss.compute(LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y), new float[rows * v], UP);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult b = loss.compute(LogitBatch.of(rows, v, scaled, te, TeacherValues.LOGITS, y), grad, UP);
        assertEquals(a.terms().get("kd"), b.terms().get("kd"), 1e-5 * a.terms().get("kd"), "standardized kd ignores s -> 10 s + 7");
        Tolerances.assertValueClose(Float64Reference.ce(scaled, y, rows, v, 1, null), b.terms().get("ce"), "ce of 10 s + 7");
        assertTrue(b.terms().get("ce") < a.terms().get("ce") - 0.1 || b.terms().get("ce") > a.terms().get("ce") + 0.1,
                "ce follows the raw scale: " + a.terms() + " vs " + b.terms());
        double[] ceGrad = new double[rows * v];
        Float64Reference.ce(scaled, y, rows, v, UP, ceGrad);
        for (int r = 0; r < rows; r++) {
            double mean = 0;
            for (int i = 0; i < v; i++) {
                mean += scaled[r * v + i];
            }
            mean /= v;
            double along = 0;
            double alongCe = 0;
            double norm = 0;
            for (int i = 0; i < v; i++) {
                double c = scaled[r * v + i] - mean;
                along += grad[r * v + i] * c;
                alongCe += ceGrad[r * v + i] * c;
                norm += Math.abs(grad[r * v + i] * c);
            }
            assertEquals(alpha * alongCe, along, 1e-5 * norm, "row " + r + ": gradient . (s - mean(s)) is alpha x CE's");
        }
    }

    @Test
    void dkdHasNoHardLabelPartAndIsStandardizedWhole() {
        Random rng = new Random(23);
        int rows = 3;
        int v = 11;
        double t = 3;
        float[] s = Inputs.logits(rng, rows, v, 2);
        float[] te = Inputs.logits(rng, rows, v, 2);
        int[] y = Inputs.labels(rng, rows, v);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = LogitStandardization.of(new Dkd(1, 8, t, 0)).compute(LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y), grad, UP);
        double[] td = FamilyReference.widen(te);
        FamilyReference.Value ref = x -> FamilyReference.dkd(FamilyReference.standardize(x, rows, v), FamilyReference.standardize(td, rows, v),
                y, rows, v, 1, 8, t, 1);
        double[] sd = FamilyReference.widen(s);
        assertEquals(ref.at(sd), r.value(), 2e-6 * Math.max(1, ref.at(sd)), "logit-std(dkd) value");
        assertTrue(!r.terms().containsKey("ce"), r.terms().toString());
        LossFamilyTest.checkGradient(ref, sd, grad, rng, "logit-std(dkd)");
    }

    @Test
    void aLossThatIsOnlyHardLabelsCannotBeWrapped() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LogitStandardization.of(new CrossEntropy()));
        assertTrue(e.getMessage().contains("logit-std cannot wrap 'ce'") && e.getMessage().contains("raw student logits"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Losses.create("logit-std", Map.of("loss", "ce")));
        assertTrue(e.getMessage().contains("logit-std cannot wrap 'ce'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> LogitStandardization.of(
                WeightedSum.builder().add(1, new Dkd(1, 8, 4, 0)).add(0.5, new SoftTargetKd(4, 0.2)).build()));
        assertTrue(e.getMessage().contains("hard-label term 'kd' (alpha 0.2 > 0)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> LogitStandardization.of(
                WeightedSum.builder().add(1, new CrossEntropy()).add(1, new Dkd(1, 8, 4, 0)).build()));
        assertTrue(e.getMessage().contains("hard-label term 'ce'"), e.getMessage());
        // without a hard-label part a weighted sum is fine
        LogitStandardization.of(WeightedSum.builder().add(1, new Dkd(1, 8, 4, 0)).add(0.5, new SoftTargetKd(4, 0)).build());
    }

    /**
     * A logit-std inside a weighted sum inside logit-std would standardize the rows twice and run the inner one's
     * cross-entropy (kd's alpha part) on standardized logits, which logit-std refuses everywhere else: refused, at any
     * depth, as a direct logit-std around logit-std is.
     */
    @Test
    void logitStdInsideAWeightedSumCannotBeWrappedEither() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LogitStandardization.of(
                LogitStandardization.of(new SoftTargetKd(2, 0.5))));
        assertEquals("logit-std cannot wrap itself", e.getMessage());
        for (LogitLoss nested : new LogitLoss[]{LogitStandardization.of(new SoftTargetKd(2, 0.5)), LogitStandardization.of(new ReverseKl(2))}) {
            LogitLoss sum = WeightedSum.builder().add(1, new Dkd(1, 8, 4, 0))
                    .add(0.5, WeightedSum.builder().add(1, nested).build()).build();
            e = assertThrows(IllegalArgumentException.class, () -> LogitStandardization.of(sum));
            assertTrue(e.getMessage().contains("logit-std cannot wrap itself") && e.getMessage().contains("weighted sum"), e.getMessage());
        }
    }

    /**
     * Only a loss that has a temperature claims {@link TemperatureScaled}: a temperature schedule over logit-std(mse),
     * or over a weighted sum without a temperature-scaled term, is refused when the run is configured.
     */
    @Test
    void temperatureScaledExactlyWhenATermHasATemperature() {
        assertTrue(LogitStandardization.of(new SoftTargetKd(2, 0)) instanceof TemperatureScaled);
        assertTrue(LogitStandardization.of(new Dkd(1, 8, 4, 0)) instanceof TemperatureScaled);
        LogitStandardization mse = LogitStandardization.of(new LogitMse());
        assertTrue(!(mse instanceof TemperatureScaled), "logit-std(mse) has no temperature");
        assertTrue(!(Losses.create("logit-std", Map.of("loss", "mse")) instanceof TemperatureScaled));
        assertTrue(Double.isNaN(mse.temperature()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> mse.withTemperature(2));
        assertEquals("logit-std wraps 'mse', which has no temperature", e.getMessage());
        // epoch and temperature copies keep the kind
        assertTrue(LogitStandardization.of(new Dkd(1, 8, 4, 5)).atEpoch(1, 10) instanceof TemperatureScaled);
        assertTrue(LogitStandardization.of(new SoftTargetKd(2, 0)).withTemperature(3) instanceof TemperatureScaled);

        assertTrue(!(WeightedSum.builder().add(1, new CrossEntropy()).add(1, new LogitMse()).build() instanceof TemperatureScaled));
        assertTrue(!(WeightedSum.builder().add(1, new CrossEntropy()).add(1, mse).build() instanceof TemperatureScaled));
        assertTrue(WeightedSum.builder().add(1, new CrossEntropy()).add(1, new ReverseKl(2)).build() instanceof TemperatureScaled);
        // nested: a sum inside logit-std, a sum of sums
        WeightedSum inner = WeightedSum.builder().add(1, new Dkd(1, 8, 4, 0)).add(0.5, new SoftTargetKd(3, 0)).build();
        assertTrue(LogitStandardization.of(inner) instanceof TemperatureScaled);
        assertTrue(!(WeightedSum.builder().add(1, WeightedSum.builder().add(1, new LogitMse()).build()).build() instanceof TemperatureScaled));
        assertTrue(WeightedSum.builder().add(1, WeightedSum.builder().add(1, new TotalVariation(2)).build()).build() instanceof TemperatureScaled);

        // temperature() is the one withTemperature sets: the first term with a temperature, past one without
        WeightedSum sum = WeightedSum.builder().add(1, new CrossEntropy()).add(1, mse).add(1, new SoftTargetKd(3, 0))
                .add(1, new GeneralizedJsd(0.5, 7)).build();
        assertTrue(sum instanceof TemperatureScaled);
        assertEquals(3.0, sum.temperature(), "the first term with a temperature (logit-std(mse) has none)");
        WeightedSum hot = sum.withTemperature(5);
        assertEquals(5.0, hot.temperature());
        assertTrue(hot.terms().get(1).loss() == mse, "logit-std(mse) is left as it is");
        assertEquals(5.0, ((TemperatureScaled) hot.terms().get(2).loss()).temperature());
        assertEquals(5.0, ((TemperatureScaled) hot.terms().get(3).loss()).temperature());
        WeightedSum cold = WeightedSum.builder().add(1, new CrossEntropy()).add(1, mse).build();
        assertTrue(Double.isNaN(cold.temperature()));
        e = assertThrows(IllegalArgumentException.class, () -> cold.withTemperature(2));
        assertEquals("no term of this weighted sum has a temperature", e.getMessage());
    }

    /** The training loop checks the kind when it is configured: logit-std(mse) with a temperature schedule fails there. */
    @Test
    void aTemperatureScheduleOverLogitStdOfMseFailsWhenTheRunIsConfigured() {
        int k = 3;
        org.distill4j.data.Dataset data = new org.distill4j.data.Dataset("tiny", new float[]{0.1f, 0.7f, -0.3f, 0.9f}, 2, new int[]{0, 2}, k);
        org.distill4j.teacher.Teacher teacher = new org.distill4j.teacher.Teacher() {
            public int classes() {
                return k;
            }

            public TeacherValues values() {
                return TeacherValues.LOGITS;
            }

            public float[] outputs(org.distill4j.data.Batch b) {
                return new float[b.size() * k];
            }

            public String describe() {
                return "fixed";
            }
        };
        org.distill4j.student.Student student = new org.distill4j.student.Student() {
            public int classes() {
                return k;
            }

            public float[] forward(org.distill4j.data.Batch b, boolean training) {
                return new float[b.size() * k];
            }

            public void backward(float[] d) {
            }

            public void endEpoch() {
            }

            public long parameterCount() {
                return 0;
            }

            public String describe() {
                return "fixed";
            }
        };
        for (LogitLoss loss : new LogitLoss[]{LogitStandardization.of(new LogitMse()),
                WeightedSum.builder().add(0.5, new CrossEntropy()).add(1, LogitStandardization.of(new LogitMse())).build()}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> org.distill4j.train.Distiller.builder()
                    .teacher(teacher).student(student).loss(loss).trainData(data).epochs(2)
                    .temperature(org.distill4j.train.Schedule.linear(4, 1)).build());
            assertEquals("a temperature schedule needs a temperature-scaled loss; loss '" + loss.name() + "' has no temperature",
                    e.getMessage());
        }
        // with a temperature it is accepted
        org.distill4j.train.Distiller.builder().teacher(teacher).student(student).loss(LogitStandardization.of(new SoftTargetKd(4, 0)))
                .trainData(data).epochs(2).temperature(org.distill4j.train.Schedule.linear(4, 1)).build();
    }

    @Test
    void temperatureAndEpochCopiesKeepTheCrossEntropyOnRawLogits() {
        Random rng = new Random(29);
        int rows = 2;
        int v = 6;
        float[] s = Inputs.logits(rng, rows, v, 2);
        float[] te = Inputs.logits(rng, rows, v, 2);
        int[] y = Inputs.labels(rng, rows, v);
        LogitBatch b = LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y);
        LogitLoss hot = LogitStandardization.of(new SoftTargetKd(2, 0.4)).withTemperature(5);
        double ref = FamilyReference.logitStdKd(FamilyReference.widen(s), FamilyReference.widen(te), y, rows, v, 5, 0.4);
        assertEquals(ref, hot.compute(b, new float[rows * v], 1f).value(), 2e-6 * Math.max(1, ref));
        assertEquals(Map.of("loss", "kd", "temperature", 5.0, "alpha", 0.4, "reduction", "mean"), hot.settings());
    }

    /**
     * Rows of odd spread: exactly constant, near-constant (std ~1e-5), just above the 1e-3 floor (std
     * ~3e-3) and ordinary. Value against the float64 reference with the floor; each row's gradient against
     * central differences of it (per row, so the large rows do not hide the small ones).
     */
    @ParameterizedTest(name = "V={0} T={1}")
    @CsvSource({"11, 2", "5, 0.5", "257, 4"})
    void constantAndNearConstantRowsGetTheExactDerivativeOfTheFlooredStandardization(int v, double t) {
        Random rng = new Random(41L * v + (long) t);
        int rows = 4;
        double alpha = 0.3;
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        double[] spread = {0, 1e-5, 3e-3};
        for (int r = 0; r < 3; r++) {
            float c = (float) (0.2 + rng.nextDouble());
            double[] noise = new double[v];
            for (int i = 0; i < v; i++) {
                noise[i] = rng.nextGaussian();
            }
            double k = r == 0 ? 0 : spread[r] / sampleSd(noise, 0, v); // the row's std is spread[r]
            for (int i = 0; i < v; i++) {
                s[r * v + i] = (float) (c + k * noise[i]);
            }
        }
        double[] sd = FamilyReference.widen(s);
        double rowSd = sampleSd(sd, 2 * v, v);
        assertTrue(rowSd > 2.5e-3, "row 2 stays above the floor under the finite-difference steps: std " + rowSd);
        float[] te = Inputs.logits(rng, rows, v, 2.0);
        int[] y = Inputs.labels(rng, rows, v);
        double[] td = FamilyReference.widen(te);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = LogitStandardization.of(new SoftTargetKd(t, alpha)).compute(LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y), grad, UP);
        FamilyReference.Value ref = x -> FamilyReference.logitStdKd(x, td, y, rows, v, t, alpha);
        String what = "logit-std(kd T=" + t + ") V=" + v;
        assertEquals(ref.at(sd), r.value(), 2e-6 * Math.max(1, ref.at(sd)), what + " value");

        // the constant row in closed form: its standardized row is 0, so q is uniform, mean(g) = 0, and d = 1e-3 + 1e-7
        double[] lp = FamilyReference.logSoftmax(FamilyReference.standardize(td, rows, v), 0, v, t);
        for (int i = 0; i < v; i++) {
            double kd = (1 - alpha) * t * (1.0 / v - Math.exp(lp[i])) / (1e-3 + 1e-7);
            double ce = alpha * (1.0 / v - (i == y[0] ? 1 : 0));
            double expected = UP * (kd + ce) / rows;
            assertEquals(expected, grad[i], 1e-5 * Math.abs(expected) + 1e-6, what + ": constant row, class " + i);
        }
        double maxConstant = 0;
        for (int i = 0; i < v; i++) {
            maxConstant = Math.max(maxConstant, Math.abs(grad[i]));
        }
        assertTrue(maxConstant < UP * t * 1e3 && maxConstant > 0, what + ": constant row gradient bounded by T/floor, got " + maxConstant);

        for (int row = 0; row < rows; row++) {
            double[] fd = new double[v];
            double max = 0;
            for (int i = 0; i < v; i++) {
                // h = 1e-7 keeps the near-constant rows on their side of the floor (a step moves the std by < h)
                fd[i] = UP * FamilyReference.centralDifference(ref, sd, row * v + i, 1e-7);
                max = Math.max(max, Math.abs(fd[i]));
            }
            for (int i = 0; i < v; i++) {
                float g = grad[row * v + i];
                double tol = 1e-4 * max + 1e-4 * Math.abs(fd[i]) + 1e-9;
                if (!Float.isFinite(g) || !(Math.abs(fd[i] - g) <= tol)) {
                    fail(what + ": row " + row + " (std " + sampleSd(sd, row * v, v) + "), class " + i + ": gradient " + g
                            + ", central difference " + fd[i] + " (tol " + tol + ")");
                }
            }
        }
    }

    @Test
    void aConstantTeacherRowIsCentredNotBlownUp() {
        int v = 4;
        float[] s = {0.9f, -1.3f, 0.4f, 2.2f};
        float[] te = {1.7f, 1.7f, 1.7f, 1.7f + 1e-6f};
        float[] grad = Inputs.poisoned(v);
        LossResult r = LogitStandardization.of(new SoftTargetKd(2, 0)).compute(LogitBatch.of(1, v, s, te, TeacherValues.LOGITS, null), grad, UP);
        double ref = FamilyReference.logitStdKd(FamilyReference.widen(s), FamilyReference.widen(te), null, 1, v, 2, 0);
        assertEquals(ref, r.value(), 2e-6 * Math.max(1, ref), "value");
        // a teacher row of std ~5e-7 standardizes to ~5e-4, near uniform, not to unit variance
        double[] lp = FamilyReference.logSoftmax(FamilyReference.standardize(FamilyReference.widen(te), 1, v), 0, v, 2);
        for (double x : lp) {
            assertEquals(Math.log(1.0 / v), x, 1e-3);
        }
        LossFamilyTest.checkGradient(x -> FamilyReference.logitStdKd(x, FamilyReference.widen(te), null, 1, v, 2, 0),
                FamilyReference.widen(s), grad, new Random(1), "constant teacher row");
    }

    /**
     * A whole batch above {@link Scratch#MAX_KEPT_FLOATS} logits per buffer (33 x 131071, 17 MB each): {@code compute}
     * standardizes it in slices of rows of the CPU backend's size, so once the thread's scratch is filled a call
     * allocates nothing batch-sized (it used to allocate three arrays of the batch's size per call: 52 MB here), and
     * its value, terms and gradient are the bits the CPU backend gives (which slices the same way, on any number of
     * threads); a row's gradient is the one it gets computed alone. With a masked row, an ignored label, a -inf
     * teacher class and a normalizer, and kd's alpha part (the raw CE) in play.
     */
    @Test
    void aWholeBatchAboveTheScratchLimitRunsInBoundedMemoryWithTheBackendsBits() throws Exception {
        assertEquals(org.distill4j.backend.CpuBackend.CHUNK_ELEMENTS, Scratch.SLICE_ELEMENTS, "logit-std slices as the backend does");
        int rows = 33;
        int v = 131071;
        assertTrue((long) rows * v > Scratch.MAX_KEPT_FLOATS);
        Random rng = new Random(77);
        float[] s = Inputs.logits(rng, rows, v, 2);
        float[] te = Inputs.logits(rng, rows, v, 2);
        te[5 * v + 17] = Float.NEGATIVE_INFINITY;
        int[] y = Inputs.labels(rng, rows, v);
        y[9] = LogitBatch.IGNORE_INDEX;
        boolean[] mask = new boolean[rows];
        java.util.Arrays.fill(mask, true);
        mask[20] = false;
        LogitBatch b = LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, y).withRowMask(mask).withNormalizer(40);
        LogitLoss loss = LogitStandardization.of(new SoftTargetKd(2, 0.3));
        float[] grad = Inputs.poisoned(rows * v);
        LossResult first = loss.compute(b, grad, UP); // fills the thread's scratch
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        assertTrue(mx instanceof com.sun.management.ThreadMXBean, "this JVM counts a thread's allocations");
        com.sun.management.ThreadMXBean tm = (com.sun.management.ThreadMXBean) mx;
        long id = Thread.currentThread().getId();
        long before = tm.getThreadAllocatedBytes(id);
        LossResult r = loss.compute(b, grad, UP);
        long allocated = tm.getThreadAllocatedBytes(id) - before;
        assertTrue(allocated < 4L << 20, "a call on a batch of 17 MB buffers allocated " + (allocated >> 20)
                + " MB; expected scratch of slice size only (< 4 MB)");
        assertEquals(Double.doubleToRawLongBits(first.value()), Double.doubleToRawLongBits(r.value()), "the same bits on every call");

        float[] viaBackend = Inputs.poisoned(rows * v);
        LossResult br;
        try (org.distill4j.backend.CpuBackend cpu = new org.distill4j.backend.CpuBackend(2)) {
            br = cpu.logitLoss(loss, b, viaBackend, UP);
        }
        assertEquals(Double.doubleToRawLongBits(br.value()), Double.doubleToRawLongBits(r.value()),
                "value: compute " + r.value() + ", backend " + br.value());
        assertEquals(br.terms(), r.terms());
        assertEquals(br.rows(), r.rows());
        assertEquals(31, r.rows());
        assertTrue(java.util.Arrays.equals(viaBackend, grad), "gradient bits of compute and of the backend");
        for (int row : new int[]{0, 5, 9, 20, 32}) {
            float[] alone = Inputs.poisoned(v);
            loss.computeRows(b, row, row + 1, alone, 0, UP);
            assertTrue(java.util.Arrays.equals(alone, 0, v, grad, row * v, (row + 1) * v), "row " + row + " computed alone");
        }
        // a plain reference check on the terms: value = alpha * ce + (1 - alpha) * kd, ce that of the raw logits
        double ce = 0;
        for (int row = 0; row < rows; row++) {
            if (row != 9 && row != 20) {
                double[] lp = FamilyReference.logSoftmax(FamilyReference.widen(java.util.Arrays.copyOfRange(s, row * v, (row + 1) * v)), 0, v, 1);
                ce -= lp[y[row]];
            }
        }
        ce /= 40;
        assertEquals(ce, r.terms().get("ce"), 1e-9 * ce, "raw cross-entropy over the 31 counted rows, normalizer 40");
        assertEquals(0.3 * r.terms().get("ce") + 0.7 * r.terms().get("kd"), r.value(), 1e-12 * r.value());
    }

    /**
     * A batch that {@code compute} standardizes in slices (600 x 1000: slices of 262 rows): an error the inner loss
     * raises on the standardized rows of a later slice still names the batch's row, directly and inside a weighted sum
     * (mse refuses a -inf teacher logit at row 530, which is row 6 of the third slice).
     */
    @Test
    void anInnerLossErrorInALaterSliceNamesTheBatchsRow() {
        int rows = 600;
        int v = 1000;
        assertTrue(rows / (Scratch.SLICE_ELEMENTS / v) >= 2, "more than one slice");
        Random rng = new Random(79);
        float[] s = Inputs.logits(rng, rows, v, 2);
        float[] te = Inputs.logits(rng, rows, v, 2);
        te[530 * v + 3] = Float.NEGATIVE_INFINITY;
        LogitBatch b = LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, null);
        for (LogitLoss loss : new LogitLoss[]{LogitStandardization.of(new LogitMse()),
                WeightedSum.builder().add(1, new SoftTargetKd(2, 0)).add(1, LogitStandardization.of(new LogitMse())).build()}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> loss.compute(b, new float[rows * v], UP));
            assertTrue(e.getMessage().contains("teacher logit at row 530, class 3 is -Infinity"), loss.name() + ": " + e.getMessage());
            try (org.distill4j.backend.CpuBackend cpu = new org.distill4j.backend.CpuBackend(2)) {
                e = assertThrows(IllegalArgumentException.class, () -> cpu.logitLoss(loss, b, new float[rows * v], UP));
            }
            assertTrue(e.getMessage().contains("teacher logit at row 530, class 3 is -Infinity"), loss.name() + ", backend: " + e.getMessage());
        }
    }

    /**
     * computeRows on rows [from, to) of a batch, from > 0: the inner loss sees the standardized rows as a batch of their
     * own, and its error about one of them (mse refuses the -inf teacher logit at batch row from + 2) names the row in
     * the caller's batch, as data and in the text; so does a range large enough to run in slices.
     */
    @Test
    void computeRowsFromAnOffsetNamesTheBatchsRowOfAnInnerLossError() {
        int v = 9;
        int rows = 13;
        int from = 4;
        int bad = from + 2;
        Random rng = new Random(83);
        float[] s = Inputs.logits(rng, rows, v, 2);
        float[] te = Inputs.logits(rng, rows, v, 2);
        te[bad * v + 5] = Float.NEGATIVE_INFINITY;
        LogitBatch b = LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, null);
        for (LogitLoss loss : new LogitLoss[]{LogitStandardization.of(new LogitMse()),
                WeightedSum.builder().add(0.5, new SoftTargetKd(2, 0)).add(1, LogitStandardization.of(new LogitMse())).build()}) {
            float[] g = new float[(rows - from) * v];
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> loss.computeRows(b, from, rows - 1, g, 0, UP));
            BadRowException br = org.junit.jupiter.api.Assertions.assertInstanceOf(BadRowException.class, e, e.getMessage());
            assertEquals(bad, br.row(), loss.name() + ": " + e.getMessage());
            assertTrue(e.getMessage().startsWith("loss 'mse' compares logits, but the teacher logit at row " + bad + ", class 5 is -Infinity"),
                    loss.name() + ": " + e.getMessage());
        }
        // several slices (1000 classes: 262 rows a slice) from row 100 on: the bad row is in the second slice
        int bigV = 1000;
        int bigRows = 700;
        int bigFrom = 100;
        int bigBad = bigFrom + 300;
        float[] bs = Inputs.logits(rng, bigRows, bigV, 2);
        float[] bt = Inputs.logits(rng, bigRows, bigV, 2);
        bt[bigBad * bigV + 7] = Float.NEGATIVE_INFINITY;
        LogitBatch big = LogitBatch.of(bigRows, bigV, bs, bt, TeacherValues.LOGITS, null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LogitStandardization.of(new LogitMse())
                .computeRows(big, bigFrom, bigRows, new float[(bigRows - bigFrom) * bigV], 0, UP));
        assertTrue(e.getMessage().contains("teacher logit at row " + bigBad + ", class 7 is -Infinity"), e.getMessage());
        assertEquals(bigBad, ((BadRowException) e).row());
    }

    private static double sampleSd(double[] x, int off, int v) {
        double mean = 0;
        for (int i = 0; i < v; i++) {
            mean += x[off + i];
        }
        mean /= v;
        double ss = 0;
        for (int i = 0; i < v; i++) {
            ss += (x[off + i] - mean) * (x[off + i] - mean);
        }
        return Math.sqrt(ss / (v - 1));
    }

    /**
     * A wrapped loss of a user's whose gradient rows do not sum to zero (the built-in ones all do over standardized
     * rows, which hides the {@code mean(g)} and centring terms of the chain rule): per row
     * {@code sum_i c_i z_i + (z_i - t_i)^2 / 2} of the standardized rows, mean over rows. Value against the float64
     * reference, gradient against its central differences, V = 11 and 6, upstream 0.73.
     */
    @Test
    void aWrappedLossWhoseGradientDoesNotSumToZeroIsCarriedBackExactly() {
        Random rng = new Random(97);
        for (int v : new int[]{11, 6}) {
            int rows = 4;
            double[] c = new double[v];
            for (int i = 0; i < v; i++) {
                c[i] = rng.nextGaussian();
            }
            float[] s = Inputs.logits(rng, rows, v, 2);
            float[] te = Inputs.logits(rng, rows, v, 2);
            LogitBatch b = LogitBatch.of(rows, v, s, te, TeacherValues.LOGITS, null);
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = LogitStandardization.of(new Tilted(c, true)).compute(b, grad, UP);
            double[] td = FamilyReference.standardize(FamilyReference.widen(te), rows, v);
            FamilyReference.Value ref = x -> {
                double[] z = FamilyReference.standardize(x, rows, v);
                double total = 0;
                for (int i = 0; i < z.length; i++) {
                    total += c[i % v] * z[i] + 0.5 * (z[i] - td[i]) * (z[i] - td[i]);
                }
                return total / rows;
            };
            double[] sd = FamilyReference.widen(s);
            String what = "logit-std(tilted) V=" + v;
            assertEquals(ref.at(sd), r.value(), 2e-6 * Math.max(1, Math.abs(ref.at(sd))), what + " value");
            LossFamilyTest.checkGradient(ref, sd, grad, rng, what);
        }
    }

    /** As the wrapped loss: the backend may split the rows of a batch only when the wrapped loss allows it. */
    @Test
    void rowSeparableExactlyWhenTheWrappedLossIs() {
        double[] c = {0.5, -1.5, 2};
        assertTrue(LogitStandardization.of(new Tilted(c, true)).rowSeparable());
        assertTrue(!LogitStandardization.of(new Tilted(c, false)).rowSeparable());
        assertTrue(!LogitStandardization.of(WeightedSum.builder().add(1, new SoftTargetKd(2, 0)).add(1, new Tilted(c, false)).build())
                .rowSeparable());
    }

    /**
     * A student logit that is not finite is named at its own row and class, as every loss names it; standardizing the
     * row first would spread the NaN over the whole row and blame class 0.
     */
    @Test
    void aNonFiniteStudentLogitIsNamedAtItsRowAndClass() {
        Random rng = new Random(101);
        int rows = 4;
        int v = 9;
        for (float bad : new float[]{Float.NaN, Float.POSITIVE_INFINITY}) {
            float[] s = Inputs.logits(rng, rows, v, 2);
            s[2 * v + 5] = bad;
            LogitBatch b = LogitBatch.of(rows, v, s, Inputs.logits(rng, rows, v, 2), TeacherValues.LOGITS, Inputs.labels(rng, rows, v));
            for (LogitLoss loss : new LogitLoss[]{LogitStandardization.of(new SoftTargetKd(2, 0)),
                    LogitStandardization.of(new SoftTargetKd(2, 0.3)), LogitStandardization.of(new ReverseKl(1.5))}) {
                BadRowException e = assertThrows(BadRowException.class, () -> loss.compute(b, new float[rows * v], UP));
                assertEquals("student logit at row 2, class 5 is " + bad + ", expected a finite value", e.getMessage());
                assertEquals(2, e.row());
            }
        }
    }

    /** A dkd warm-up inside logit-std follows the epochs, as dkd alone does. */
    @Test
    void theWrappedLossFollowsTheEpochs() {
        Random rng = new Random(103);
        int rows = 3;
        int v = 8;
        LogitBatch b = LogitBatch.of(rows, v, Inputs.logits(rng, rows, v, 2), Inputs.logits(rng, rows, v, 2), TeacherValues.LOGITS,
                Inputs.labels(rng, rows, v));
        LogitLoss warming = LogitStandardization.of(new Dkd(1, 8, 3, 20)).atEpoch(4, 30);
        assertTrue(warming instanceof LogitStandardization l && l.inner() instanceof Dkd d && d.warmFactor() == 5.0 / 20,
                warming.settings().toString());
        double full = LogitStandardization.of(new Dkd(1, 8, 3, 0)).compute(b, new float[rows * v], UP).value();
        assertEquals(5.0 / 20 * full, warming.compute(b, new float[rows * v], UP).value(), 1e-12 * full);
        LogitLoss plain = LogitStandardization.of(new SoftTargetKd(2, 0));
        assertTrue(plain == ((EpochAware) plain).atEpoch(4, 30), "a loss without epochs stays as it is");
    }

    @Test
    void aTopKLossCannotBeWrapped() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LogitStandardization.of(new TopKKd(2, TopKKd.Tail.RENORMALIZE)));
        assertEquals("logit-std needs dense teacher logits; it cannot wrap 'topk-kd'", e.getMessage());
    }

    /** See {@link #aWrappedLossWhoseGradientDoesNotSumToZeroIsCarriedBackExactly}; mean over counted rows. */
    record Tilted(double[] c, boolean separable) implements LogitLoss {
        @Override
        public String name() {
            return "tilted";
        }

        @Override
        public Map<String, Object> settings() {
            return Map.of();
        }

        @Override
        public boolean needsTeacher() {
            return true;
        }

        @Override
        public boolean needsLabels() {
            return false;
        }

        @Override
        public boolean rowSeparable() {
            return separable;
        }

        @Override
        public Reduction reduction() {
            return Reduction.MEAN;
        }

        @Override
        public LossResult compute(LogitBatch batch, float[] gradOut, float upstream) {
            checkInputs(batch, gradOut, upstream);
            int v = batch.classes();
            double w = batch.rowWeight(Reduction.MEAN);
            double total = 0;
            for (int r = 0; r < batch.rows(); r++) {
                for (int i = r * v; i < (r + 1) * v; i++) {
                    double z = batch.student()[i];
                    double d = z - batch.teacher()[i];
                    if (batch.counts(r)) {
                        total += c[i - r * v] * z + 0.5 * d * d;
                    }
                    gradOut[i] = batch.counts(r) ? (float) (upstream * w * (c[i - r * v] + d)) : 0f;
                }
            }
            return new LossResult(total * w, batch.countedRows(), Map.of(name(), total * w));
        }
    }
}
