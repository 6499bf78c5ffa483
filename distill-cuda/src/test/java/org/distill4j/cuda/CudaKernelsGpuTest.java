package org.distill4j.cuda;

import org.distill4j.backend.CpuBackend;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;
import org.distill4j.testing.Float64Reference;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused kernels on a real GPU, against the float64 reference and the CPU backend: fresh random inputs,
 * odd widths on both kernel shapes, upstream gradient != 1, extreme logits, probability teachers,
 * ignored rows, half-precision inputs, gradients poisoned before each run (an unwritten element fails),
 * and bit-identical results on a rerun. Skipped, with the probe's reason, where there is no usable device.
 */
class CudaKernelsGpuTest extends GpuTest {
    @ParameterizedTest(name = "rows {0}, V {1}, T {2}, alpha {3}, probs {4}, scale {5}")
    @CsvSource({
            "129, 10, 4.0, 0.1, false, 3.0",
            "33, 37, 2.5, 0.0, true, 2.0",
            "64, 1000, 1.0, 0.5, false, 4.0",
            "17, 2048, 0.5, 0.3, false, 1e4",
            "9, 2049, 4.0, 0.1, false, 5.0",
            "13, 32000, 2.0, 0.2, true, 3.0",
            "5, 152064, 1.5, 0.0, false, 8.0",
            "3, 257, 0.5, 0.7, false, 1e4"})
    void kdMatchesTheReferenceAndTheCpuBackendAndRepeatsItsBits(int rows, int v, double temperature, double alpha, boolean probs,
                                                               double scale) {
        Random rng = new Random(rows * 7919L + v);
        float[] s = Inputs.logits(rng, rows, v, scale);
        float[] t = probs ? Inputs.probabilities(rng, rows, v, scale) : Inputs.logits(rng, rows, v, scale);
        int[] labels = Inputs.labels(rng, rows, v);
        LogitBatch batch = LogitBatch.of(rows, v, s, t, probs ? TeacherValues.PROBABILITIES : TeacherValues.LOGITS, labels);
        SoftTargetKd loss = new SoftTargetKd(temperature, alpha);
        float upstream = 0.7f;
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = backend.logitLoss(loss, batch, grad, upstream);
        double[] refGrad = new double[rows * v];
        double ref = Float64Reference.kd(s, t, probs, alpha > 0 ? labels : null, rows, v, temperature, alpha, upstream, refGrad);
        String what = "kd V " + v + " T " + temperature;
        Tolerances.assertKernelValueClose(ref, r.value(), Tolerances.KERNEL_F32_VALUE_REL, what);
        Tolerances.assertKernelGradClose(refGrad, grad, Tolerances.KERNEL_F32_GRAD, what + " gradient");
        LossResult cpu;
        try (CpuBackend cpuBackend = new CpuBackend()) {
            cpu = cpuBackend.logitLoss(loss, batch, new float[rows * v], upstream);
        }
        Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, what + " vs cpu");
        assertEquals(cpu.terms().keySet(), r.terms().keySet());

        float[] again = Inputs.poisoned(rows * v);
        LossResult r2 = backend.logitLoss(loss, batch, again, upstream);
        assertEquals(Double.doubleToRawLongBits(r.value()), Double.doubleToRawLongBits(r2.value()), "deterministic value");
        assertArrayEquals(grad, again, "deterministic gradient");
    }

    @ParameterizedTest(name = "gjsd rows {0}, V {1}, beta {2}, T {3}, probs {4}")
    @CsvSource({"65, 10, 0.5, 1.0, false", "31, 999, 0.1, 2.0, true", "7, 32000, 0.9, 0.5, false", "3, 152064, 0.5, 4.0, false"})
    void gjsdMatchesTheCpuLoss(int rows, int v, double beta, double temperature, boolean probs) {
        Random rng = new Random(rows + 13L * v);
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        float[] t = probs ? Inputs.probabilities(rng, rows, v, 3.0) : Inputs.logits(rng, rows, v, 3.0);
        LogitBatch batch = LogitBatch.of(rows, v, s, t, probs ? TeacherValues.PROBABILITIES : TeacherValues.LOGITS, new int[rows]);
        org.distill4j.loss.GeneralizedJsd loss = new org.distill4j.loss.GeneralizedJsd(beta, temperature);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = backend.logitLoss(loss, batch, grad, 0.6f);
        float[] cpuGrad = new float[rows * v];
        LossResult cpu = loss.compute(batch, cpuGrad, 0.6f);
        Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, "gjsd V " + v);
        double[] ref = KernelInputs.widen(cpuGrad);
        Tolerances.assertKernelGradClose(ref, grad, Tolerances.KERNEL_F32_GRAD, "gjsd V " + v + " gradient");
        assertEquals(cpu.terms().keySet(), r.terms().keySet());
    }

    @ParameterizedTest(name = "topk rows {0}, V {1}, k {2}, rest {3}")
    @CsvSource({"100, 10, 3, true", "40, 2048, 64, false", "9, 32000, 64, true", "4, 152064, 128, true"})
    void topKMatchesTheCpuLoss(int rows, int v, int k, boolean rest) {
        Random rng = new Random(v + 7L * k);
        float[] s = Inputs.logits(rng, rows, v, 4.0);
        float[] teacher = Inputs.logits(rng, rows, v, 4.0);
        KernelInputs.TopK top = KernelInputs.topK(teacher, rows, v, k);
        int[] ids = top.ids();
        float[] lps = top.logProbs();
        LogitBatch batch = LogitBatch.ofTopK(rows, v, s, ids, lps, k, new int[rows]);
        org.distill4j.loss.TopKKd loss = new org.distill4j.loss.TopKKd(2.0,
                rest ? org.distill4j.loss.TopKKd.Tail.REST_BUCKET : org.distill4j.loss.TopKKd.Tail.RENORMALIZE);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = backend.logitLoss(loss, batch, grad, 0.9f);
        float[] cpuGrad = new float[rows * v];
        LossResult cpu = loss.compute(batch, cpuGrad, 0.9f);
        Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, "topk V " + v);
        double[] ref = KernelInputs.widen(cpuGrad);
        Tolerances.assertKernelGradClose(ref, grad, Tolerances.KERNEL_F32_GRAD, "topk V " + v + " gradient");
    }

    /**
     * Under the rest tail, rows whose entries' probabilities sum just above 1 (1.001 to 1.005: a 16-bit store's rounding, within
     * TopKKd.MASS_TOLERANCE) are computed by the kernel itself (no CPU rerun) and agree with the CPU loss; a row at 1.03 is
     * refused on both backends, naming it. Warp (V 37) and block (V 3001) kernels.
     */
    @ParameterizedTest(name = "V {0}")
    @CsvSource({"37", "3001"})
    void topKMassJustAboveOneIsTakenAndFarAboveRefused(int v) {
        int rows = 5;
        int k = 4;
        Random rng = new Random(77L * v);
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        int[] ids = new int[rows * k];
        float[] lps = new float[rows * k];
        for (int r = 0; r < rows; r++) {
            double[] p = {0.6, 0.25, 0.1, 0.055}; // 1.005
            for (int j = 0; j < k; j++) {
                ids[r * k + j] = (r + 5 * j) % v;
                lps[r * k + j] = (float) Math.log(p[j] * (1 - 0.001 * r)); // masses 1.005 down to 1.001
            }
        }
        org.distill4j.loss.TopKKd loss = new org.distill4j.loss.TopKKd(2.0, org.distill4j.loss.TopKKd.Tail.REST_BUCKET);
        LogitBatch batch = LogitBatch.ofTopK(rows, v, s, ids, lps, k, new int[rows]);
        long reruns = backend.cpuReruns();
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = backend.logitLoss(loss, batch, grad, 0.8f);
        assertEquals(reruns, backend.cpuReruns(), "the kernel computed the rows itself");
        float[] cpuGrad = new float[rows * v];
        LossResult cpu = loss.compute(batch, cpuGrad, 0.8f);
        Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, "topk mass 1.005, V " + v);
        Tolerances.assertKernelGradClose(KernelInputs.widen(cpuGrad), grad, Tolerances.KERNEL_F32_GRAD, "topk mass 1.005, V " + v);

        float[] far = lps.clone();
        far[3 * k] = (float) Math.log(0.625); // row 3: 1.03
        LogitBatch bad = LogitBatch.ofTopK(rows, v, s, ids, far, k, new int[rows]);
        IllegalArgumentException gpu = assertThrows(IllegalArgumentException.class, () -> backend.logitLoss(loss, bad, new float[rows * v], 1f));
        IllegalArgumentException c = assertThrows(IllegalArgumentException.class, () -> loss.compute(bad, new float[rows * v], 1f));
        assertTrue(c.getMessage().contains("top-k probabilities of row 3 sum to"), c.getMessage());
        assertEquals(c.getMessage(), gpu.getMessage());
    }

    /**
     * Top-k rows with absent slots (id -1, -inf: entries a vocabulary alignment dropped) are the top-k of their other
     * entries: under the rest tail the absent slots' classes are part of the rest, and a row with fewer entries than
     * classes has a rest bucket even where k = V. The kernel agrees with the CPU loss without flagging such rows (no CPU
     * rerun); warp (V 37, V 12 = k) and block (V 3001) kernels, both tails, absent slots anywhere in a row.
     */
    @ParameterizedTest(name = "V {0}, k {1}, rest {2}")
    @CsvSource({"37, 5, true", "37, 5, false", "12, 12, true", "12, 12, false", "3001, 64, true", "3001, 64, false"})
    void topKRowsWithAbsentSlotsMatchTheCpuLoss(int v, int k, boolean rest) {
        int rows = 7;
        Random rng = new Random(v * 131L + k + (rest ? 1 : 0));
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        KernelInputs.TopK top = KernelInputs.topK(Inputs.logits(rng, rows, v, 3.0), rows, v, k);
        int[] ids = top.ids();
        float[] lps = top.logProbs();
        for (int r = 1; r < rows; r++) { // row 0 whole; row r loses min(r, k - 1) entries at random slots
            for (int a = 0; a < Math.min(r, k - 1); a++) {
                int j;
                do {
                    j = rng.nextInt(k);
                } while (ids[r * k + j] == LogitBatch.ABSENT);
                ids[r * k + j] = LogitBatch.ABSENT;
                lps[r * k + j] = Float.NEGATIVE_INFINITY;
            }
        }
        LogitBatch batch = LogitBatch.ofTopK(rows, v, s, ids, lps, k, new int[rows]);
        org.distill4j.loss.TopKKd loss = new org.distill4j.loss.TopKKd(1.5,
                rest ? org.distill4j.loss.TopKKd.Tail.REST_BUCKET : org.distill4j.loss.TopKKd.Tail.RENORMALIZE);
        long reruns = backend.cpuReruns();
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = backend.logitLoss(loss, batch, grad, 0.8f);
        assertEquals(reruns, backend.cpuReruns(), "the kernel computed the rows itself");
        float[] cpuGrad = new float[rows * v];
        LossResult cpu = loss.compute(batch, cpuGrad, 0.8f);
        Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, "topk V " + v + " with absent slots");
        Tolerances.assertKernelGradClose(KernelInputs.widen(cpuGrad), grad, Tolerances.KERNEL_F32_GRAD,
                "topk V " + v + " with absent slots, gradient");
    }

    /**
     * topk-kd at T = 0.5 with finite teacher log-probabilities below -FLT_MAX * T, whose products with 1/T overflow fp32:
     * the CPU loss (float64) gives them their mass (a class has mass iff its log-probability is finite), so the kernel
     * must neither flag such a row (which sent the batch to the CPU with a warning) nor lose it. Rows with every entry
     * that low (two tied for the largest: p = 1/2 each without the rest bucket), with one entry -inf among them, and
     * ordinary rows beside them; warp (V 37) and block (V 3001) kernels, both tails, against a float64 reference.
     */
    @ParameterizedTest(name = "V {0}, rest {1}")
    @CsvSource({"37, false", "37, true", "3001, false", "3001, true"})
    void topKLogProbabilitiesBelowTheTemperedRangeHaveMass(int v, boolean rest) {
        int rows = 6;
        int k = 4;
        double temperature = 0.5;
        Random rng = new Random(v * 31L + (rest ? 1 : 0));
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        KernelInputs.TopK top = KernelInputs.topK(Inputs.logits(rng, rows, v, 3.0), rows, v, k);
        int[] ids = top.ids();
        float[] lps = top.logProbs();
        for (int r : new int[] {0, 3, 4}) {
            float low = -2e38f - 1e37f * rng.nextInt(5); // times 1/T = 2: beyond -FLT_MAX
            lps[r * k] = low;
            lps[r * k + 1] = low; // a tie for the largest
            lps[r * k + 2] = low - 3e37f;
            lps[r * k + 3] = r == 4 ? Float.NEGATIVE_INFINITY : -Float.MAX_VALUE;
        }
        LogitBatch batch = LogitBatch.ofTopK(rows, v, s, ids, lps, k, new int[rows]);
        org.distill4j.loss.TopKKd loss = new org.distill4j.loss.TopKKd(temperature,
                rest ? org.distill4j.loss.TopKKd.Tail.REST_BUCKET : org.distill4j.loss.TopKKd.Tail.RENORMALIZE);
        float upstream = 0.8f;
        long reruns = backend.cpuReruns();
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = backend.logitLoss(loss, batch, grad, upstream);
        assertEquals(reruns, backend.cpuReruns(), "the kernel flagged none of the rows (the CPU loss accepts them all)");
        double[] refGrad = new double[rows * v];
        double ref = topKReference(s, ids, lps, rows, v, k, temperature, rest, upstream, refGrad);
        String what = "topk-kd T 0.5 V " + v + (rest ? " rest" : " renormalize");
        Tolerances.assertKernelValueClose(ref, r.value(), Tolerances.KERNEL_F32_VALUE_REL, what);
        Tolerances.assertKernelGradClose(refGrad, grad, Tolerances.KERNEL_F32_GRAD, what + " gradient");
        if (rest) {
            // without the rest bucket the CPU loss (TopKKd: log Z = m + log z, then lp / T - log Z) loses log z to rounding at
            // |m| of 4e38 and gives each tied entry p = 1; with it, m is the rest bucket's 0
            Tolerances.assertKernelValueClose(loss.compute(batch, new float[rows * v], upstream).value(), r.value(),
                    Tolerances.KERNEL_F32_VALUE_REL, what + " vs cpu");
        }
    }

    /**
     * Top-k KD in float64, MEAN over all rows: the buckets (the k entries, with {@code rest} the missing mass 1 - sum p as
     * one more) tempered and normalized, q = softmax(s / T); value T^2 sum p (log p - log q_bucket), gradient
     * upstream T / rows (q_i - p_i), a rest bucket's p spread over the classes outside the top-k as q is.
     */
    private static double topKReference(float[] s, int[] ids, float[] lps, int rows, int v, int k, double t, boolean rest, double upstream,
                                        double[] grad) {
        double total = 0;
        boolean withRest = rest && k < v;
        for (int r = 0; r < rows; r++) {
            double[] logQ = Float64Reference.logSoftmax(s, r * v, v, t);
            double[] b = new double[k + 1];
            double known = 0;
            for (int j = 0; j < k; j++) {
                b[j] = lps[r * k + j] / t;
                known += Math.exp(lps[r * k + j]);
            }
            b[k] = withRest ? Math.log(Math.max(0, 1 - known)) / t : Double.NEGATIVE_INFINITY;
            double m = Double.NEGATIVE_INFINITY;
            for (double x : b) {
                m = Math.max(m, x);
            }
            double z = 0;
            for (double x : b) {
                z += Math.exp(x - m);
            }
            // log p = (b - m) - log z: m + log z first would lose log z to rounding where |m| is this large
            double logZ = Math.log(z);
            for (int j = 0; j <= k; j++) {
                b[j] -= m;
            }
            boolean[] in = new boolean[v];
            double[] p = new double[v];
            for (int j = 0; j < k; j++) {
                int id = ids[r * k + j];
                in[id] = true;
                double logP = b[j] - logZ;
                p[id] = Math.exp(logP);
                if (p[id] > 0) {
                    total += p[id] * (logP - logQ[id]);
                }
            }
            double pRest = Math.exp(b[k] - logZ);
            double mo = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < v; i++) {
                if (!in[i]) {
                    mo = Math.max(mo, logQ[i]);
                }
            }
            double so = 0;
            for (int i = 0; i < v; i++) {
                if (!in[i]) {
                    so += Math.exp(logQ[i] - mo);
                }
            }
            double logQRest = mo + Math.log(so);
            if (pRest > 0) {
                total += pRest * (b[k] - logZ - logQRest);
            }
            for (int i = 0; i < v; i++) {
                double pi = in[i] ? p[i] : pRest > 0 ? pRest * Math.exp(logQ[i] - logQRest) : 0;
                grad[r * v + i] = upstream * t / rows * (Math.exp(logQ[i]) - pi);
            }
        }
        return total * t * t / rows;
    }

    /**
     * At T < 1 a finite logit beyond FLT_MAX * T has a product with 1/T that leaves fp32: a student logit of 2.5e38 at
     * T = 0.5 (+inf, which made the row's sums NaN), every student logit of a row that low (-inf: an empty normalizer), a
     * teacher logit of 2.5e38. The CPU losses compute these rows in float64, and the kernels returned NaN without a flag;
     * now they flag such a row as beyond their range (flag 2), and the batch runs on the CPU, logged as such. kd (with
     * its cross-entropy term), gjsd and topk-kd, warp (V 37) and block (V 3001) kernels.
     */
    @ParameterizedTest(name = "V {0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {37, 3001})
    void logitsBeyondFp32AtTheTemperatureRunOnTheCpu(int v) {
        int rows = 5;
        int k = 3;
        Random rng = new Random(71L * v);
        int[] labels = Inputs.labels(rng, rows, v);
        float[] s0 = Inputs.logits(rng, rows, v, 3.0);
        float[] t0 = Inputs.logits(rng, rows, v, 3.0);
        KernelInputs.TopK top = KernelInputs.topK(t0, rows, v, k);
        record Case(String what, float[] s, float[] t) {
        }
        float[] big = s0.clone();
        big[2 * v + v / 3] = 2.5e38f;
        float[] low = s0.clone();
        for (int i = 0; i < v; i++) {
            low[v + i] = -2.0e38f - 1e35f * (i % 1000);
        }
        float[] bigTeacher = t0.clone();
        bigTeacher[3 * v + 1] = 2.5e38f;
        Case[] cases = {new Case("a student logit of 2.5e38", big, t0), new Case("a student row below -FLT_MAX * T", low, t0),
                new Case("a teacher logit of 2.5e38", s0, bigTeacher)};
        long range = backend.rangeReruns();
        long reruns = backend.cpuReruns();
        int expected = 0;
        for (Case c : cases) {
            java.util.List<org.distill4j.loss.LogitLoss> losses = new java.util.ArrayList<>(java.util.List.of(new SoftTargetKd(0.5, 0.3),
                    new org.distill4j.loss.GeneralizedJsd(0.5, 0.5)));
            if (c.t() == t0) {
                losses.add(new org.distill4j.loss.TopKKd(0.5, org.distill4j.loss.TopKKd.Tail.REST_BUCKET));
            }
            for (org.distill4j.loss.LogitLoss loss : losses) {
                LogitBatch batch = loss instanceof org.distill4j.loss.TopKKd
                        ? LogitBatch.ofTopK(rows, v, c.s(), top.ids(), top.logProbs(), k, labels)
                        : LogitBatch.of(rows, v, c.s(), c.t(), TeacherValues.LOGITS, labels);
                float[] grad = Inputs.poisoned(rows * v);
                LossResult r = backend.logitLoss(loss, batch, grad, 0.6f);
                float[] cpuGrad = new float[rows * v];
                LossResult cpu = loss.compute(batch, cpuGrad, 0.6f);
                String what = loss.name() + ", " + c.what() + ", V " + v;
                assertTrue(Double.isFinite(cpu.value()), what + ": the CPU loss computes it: " + cpu.value());
                assertEquals(cpu.value(), r.value(), 0.0, what + ": the CPU's value");
                assertArrayEquals(cpuGrad, grad, what + ": the CPU's gradient");
                expected++;
            }
        }
        assertEquals(range + expected, backend.rangeReruns(), "every batch went to the CPU for its logits' size");
        assertEquals(reruns, backend.cpuReruns(), "none counted as a kernel flagging a valid batch");
    }

    /**
     * Rows labeled UNLABELED (unlabeled transfer data) count, with no cross-entropy term: kd with alpha > 0 through the
     * backend (V 37: warp kernel, 3001: block, 6000: tiled) and ce (the teacherless kernel: zero gradient), against the
     * float64 reference; and launched directly, the warp or block kernel and tiled clusters of 1, 2, 3, 4 and 8 blocks (all
     * share one template), whose CE instance an unlabeled row must not take.
     */
    @ParameterizedTest(name = "V {0}")
    @CsvSource({"37", "3001", "6000"})
    void unlabeledRowsHaveNoCrossEntropyTerm(int v) {
        Random rng = new Random(6007L + v);
        int rows = 19;
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        float[] t = Inputs.logits(rng, rows, v, 3.0);
        int[] labels = Inputs.labels(rng, rows, v);
        int[] unlabeled = {0, 5, 6, 18};
        for (int r : unlabeled) {
            labels[r] = LogitBatch.UNLABELED;
        }
        LogitBatch batch = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, labels);
        double temperature = 2.0;
        double alpha = 0.3;
        float upstream = 0.7f;
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = backend.logitLoss(new SoftTargetKd(temperature, alpha), batch, grad, upstream);
        double[] refGrad = new double[rows * v];
        double ref = Float64Reference.kd(s, t, false, labels, rows, v, temperature, alpha, upstream, refGrad);
        String what = "kd with unlabeled rows, V " + v;
        Tolerances.assertKernelValueClose(ref, r.value(), Tolerances.KERNEL_F32_VALUE_REL, what);
        Tolerances.assertKernelGradClose(refGrad, grad, Tolerances.KERNEL_F32_GRAD, what + " gradient");
        Tolerances.assertKernelValueClose(Float64Reference.ce(s, labels, rows, v, 1, null), r.terms().get(CrossEntropy.NAME),
                Tolerances.KERNEL_F32_VALUE_REL, what + ": the ce term");
        assertEquals(0, backend.cpuReruns(), what + ": ran on the device");

        float[] ceGrad = Inputs.poisoned(rows * v);
        LossResult ce = backend.logitLoss(new CrossEntropy(), LogitBatch.ofLabels(rows, v, s, labels), ceGrad, upstream);
        double[] ceRef = new double[rows * v];
        Tolerances.assertKernelValueClose(Float64Reference.ce(s, labels, rows, v, upstream, ceRef), ce.value(),
                Tolerances.KERNEL_F32_VALUE_REL, "ce with unlabeled rows, V " + v);
        Tolerances.assertKernelGradClose(ceRef, ceGrad, Tolerances.KERNEL_F32_GRAD, "ce gradient with unlabeled rows, V " + v);
        for (int u : unlabeled) {
            for (int i = 0; i < v; i++) {
                assertEquals(0f, ceGrad[u * v + i], "ce: unlabeled row " + u + " has a zero gradient");
            }
        }
        java.util.List<KdPlan> plans = new java.util.ArrayList<>();
        plans.add(KdPlan.twoPass(rows, v, DType.F32)); // the warp (V <= 2048) or block kernel, launched directly
        for (int cluster : new int[] {1, 2, 3, 4, 8}) {
            if (v % 4 == 0 && (cluster == 1 || ctx.limits().clusters())) {
                plans.add(KdPlan.tile(ctx.limits(), rows, v, DType.F32, cluster, Integer.MAX_VALUE, 2));
            }
        }
        for (KdPlan plan : plans) {
            float[][] got = runKd(plan, DType.F32, s, t, labels, null, rows, v, temperature, alpha, upstream / rows, false);
            double value = 0;
            for (int row = 0; row < rows; row++) {
                value += alpha * got[0][3 * row + 1] + (1 - alpha) * got[0][3 * row];
            }
            for (int u : unlabeled) {
                assertEquals(0f, got[0][3 * u + 1], plan + ": an unlabeled row's CE part");
            }
            Tolerances.assertKernelValueClose(ref, value / rows, Tolerances.KERNEL_F32_VALUE_REL, plan + " value");
            Tolerances.assertKernelGradClose(refGrad, got[1], Tolerances.KERNEL_F32_GRAD, plan + " gradient");
        }
    }

    @Test
    void crossEntropyWithIgnoredRows() {
        Random rng = new Random(3);
        int rows = 77;
        int v = 3001;
        float[] s = Inputs.logits(rng, rows, v, 4.0);
        int[] labels = Inputs.labels(rng, rows, v);
        labels[5] = LogitBatch.IGNORE_INDEX;
        labels[40] = LogitBatch.IGNORE_INDEX;
        LogitBatch batch = LogitBatch.ofLabels(rows, v, s, labels);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = backend.logitLoss(new CrossEntropy(), batch, grad, 1.5f);
        float[] cpuGrad = new float[rows * v];
        LossResult cpu = new CrossEntropy().compute(batch, cpuGrad, 1.5f);
        Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, "ce");
        double[] cpuD = KernelInputs.widen(cpuGrad);
        Tolerances.assertKernelGradClose(cpuD, grad, Tolerances.KERNEL_F32_GRAD, "ce gradient");
        for (int i = 5 * v; i < 6 * v; i++) {
            assertEquals(0f, grad[i], "an ignored row's gradient is zero");
        }
    }

    /** fp16 / bf16 inputs through the kernels directly; the reference reads the same rounded values. */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F16", "BF16"})
    void halfInputs(DType dtype) {
        for (int v : new int[] {37, 32000}) {
            int rows = v == 37 ? 50 : 6;
            Random rng = new Random(v + dtype.ordinal());
            float[] s = dtype.round(Inputs.logits(rng, rows, v, 3.0));
            float[] t = dtype.round(Inputs.logits(rng, rows, v, 3.0));
            int[] labels = Inputs.labels(rng, rows, v);
            double temperature = 2.0;
            double alpha = 0.2;
            float upstream = 0.9f;
            KdPlan plan = KdPlan.choose(ctx.limits(), rows, v, dtype);
            assertEquals(v > KernelPlan.WARP_MAX_V, plan.tiled(), plan.toString());
            float[][] got = runKd(plan, dtype, s, t, labels, null, rows, v, temperature, alpha, upstream / rows, false);
            float[] rowOut = got[0];
            float[] grad = got[1];
            double value = 0;
            for (int r = 0; r < rows; r++) {
                value += alpha * rowOut[3 * r + 1] + (1 - alpha) * rowOut[3 * r];
            }
            double[] refGrad = new double[rows * v];
            double ref = Float64Reference.kd(s, t, false, labels, rows, v, temperature, alpha, upstream, refGrad);
            Tolerances.assertKernelValueClose(ref, value / rows, Tolerances.KERNEL_F16_VALUE_REL, dtype + " V " + v);
            Tolerances.assertKernelGradClose(refGrad, grad, Tolerances.KERNEL_F16_GRAD, dtype + " V " + v + " gradient");
        }
    }

    /**
     * The tiled kd kernels in every shape the planner and the benchmarks can pick: clusters of 1 to 8 and 16
     * blocks (those the device launches; 16 is a non-portable size, and 3, 5, 6 and 7 are merged as the next power
     * of two with empty blocks; V = 6000 leaves the last of 7 blocks a shorter chunk), the chunk cached whole, in
     * part and not at all; on two clusters looping over the 11 rows (the KL partials of one row are merged in the next row's
     * exchange), with and without prefetching each next row (during pass 2, or into a second buffer as a row
     * starts), and on one cluster per row. Rows 4 and 9 do not count (zero gradient, zero parts; row 2 does not
     * prefetch row 4, row 4 prefetches row 6), row 6 has extreme logits (|s / T| up to about 2e4, where a
     * normalizer rounded once would cost every p and q a relative error of 1e-3); logit teachers with labels and
     * T = 1.7 (not a power of two: 1 / T and log2(e) / T round), probability teachers with alpha 0.
     * Where a chunk is cached, pass 1 issuing its copies in four groups ({@link KdPlan#withStaging}) gives the same
     * bits as the default. Rows 2 and 8 hold classes of zero mass (teacher logits of -inf, probabilities of 0): a third
     * of row 2's, and all but one of row 8's, the first and last class of each among them.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void tiledKernelsMatchTheReferenceInEveryShape(DType dtype) {
        int rows = 11;
        int v = 6000;
        byte[] counted = new byte[rows];
        java.util.Arrays.fill(counted, (byte) 1);
        counted[4] = 0;
        counted[9] = 0;
        int[] keep = java.util.stream.IntStream.range(0, rows).filter(r -> counted[r] != 0).toArray();
        int shapes = 0;
        for (boolean probs : new boolean[] {false, true}) {
            Random rng = new Random(41 + dtype.ordinal() + (probs ? 100 : 0));
            float[] s = Inputs.logits(rng, rows, v, 3.0);
            float[] t = probs ? Inputs.probabilities(rng, rows, v, 3.0) : Inputs.logits(rng, rows, v, 3.0);
            for (int i = 6 * v; i < 7 * v; i++) {
                s[i] *= 3000f;
                if (!probs) {
                    t[i] *= 3000f;
                }
            }
            zeroMass(rng, t, v, probs, 2, 8);
            s = dtype.round(s);
            t = dtype.round(t);
            assertEquals(probs ? 0f : Float.NEGATIVE_INFINITY, t[8 * v], dtype + " keeps a class of zero mass");
            int[] labels = Inputs.labels(rng, rows, v);
            double temperature = probs ? 0.5 : 1.7;
            double alpha = probs ? 0.0 : 0.2;
            float upstream = 0.9f;
            double[] refGrad = new double[keep.length * v];
            double ref = Float64Reference.kd(KernelInputs.rows(s, keep, v), KernelInputs.rows(t, keep, v), probs,
                    alpha > 0 ? KernelInputs.pick(labels, keep) : null, keep.length, v, temperature, alpha, upstream, refGrad);
            for (int cluster : new int[] {1, 2, 3, 4, 5, 6, 7, 8, 16}) {
                if (cluster > 1 && !ctx.limits().clusters()) {
                    continue;
                }
                int chunk = KdPlan.tile(ctx.limits(), rows, v, dtype, cluster, Integer.MAX_VALUE, 2).chunk();
                for (int shape = 0; shape < 7; shape++) {
                    int capacity = new int[] {chunk, chunk / 2 + 3, 0, chunk, chunk / 2 + 3, chunk, chunk / 2 + 3}[shape];
                    KdPlan.Prefetch prefetch = shape >= 5 ? KdPlan.Prefetch.DOUBLE_BUFFER
                            : shape >= 3 ? KdPlan.Prefetch.DURING_PASS_2 : KdPlan.Prefetch.NONE;
                    KdPlan plan = KdPlan.tile(ctx.limits(), rows, v, dtype, cluster, capacity, capacity == 0 ? rows : 2, prefetch);
                    String what = dtype + " " + plan + (probs ? " probability teacher" : " logit teacher");
                    float[][] got = runKd(plan, dtype, s, t, labels, counted, rows, v, temperature, alpha, upstream / keep.length, probs);
                    float[] rowOut = got[0];
                    float[] grad = got[1];
                    double value = 0;
                    double[] gradKept = new double[keep.length * v];
                    for (int k = 0; k < keep.length; k++) {
                        int r = keep[k];
                        value += alpha * rowOut[3 * r + 1] + (1 - alpha) * rowOut[3 * r];
                        assertEquals(0f, rowOut[3 * r + 2], what + ": row " + r + " flagged bad");
                        for (int i = 0; i < v; i++) {
                            gradKept[k * v + i] = grad[r * v + i];
                        }
                    }
                    for (int r : new int[] {4, 9}) {
                        for (int i = 0; i < v; i++) {
                            assertEquals(0f, grad[r * v + i], what + ": a row that does not count has zero gradient");
                        }
                        assertArrayEquals(new float[3], java.util.Arrays.copyOfRange(rowOut, 3 * r, 3 * r + 3), what + ": its parts");
                    }
                    boolean full = dtype == DType.F32;
                    Tolerances.assertKernelValueClose(ref, value / keep.length,
                            full ? Tolerances.KERNEL_F32_VALUE_REL : Tolerances.KERNEL_F16_VALUE_REL, what);
                    float[] g = new float[gradKept.length];
                    for (int i = 0; i < g.length; i++) {
                        g[i] = (float) gradKept[i];
                    }
                    Tolerances.assertKernelGradClose(refGrad, g, full ? Tolerances.KERNEL_F32_GRAD : Tolerances.KERNEL_F16_GRAD,
                            what + " gradient");
                    float[][] again = runKd(plan, dtype, s, t, labels, counted, rows, v, temperature, alpha, upstream / keep.length, probs);
                    assertArrayEquals(rowOut, again[0], what + ": deterministic row parts");
                    assertArrayEquals(grad, again[1], what + ": deterministic gradient");
                    if (shape != 2) {
                        // pass 1's copies in four groups: the same sums in the same order, so the same bits
                        float[][] staged = runKd(plan.withStaging(true), dtype, s, t, labels, counted, rows, v, temperature, alpha,
                                upstream / keep.length, probs);
                        assertArrayEquals(rowOut, staged[0], what + ": staged row parts equal the one-group ones");
                        assertArrayEquals(grad, staged[1], what + ": staged gradient equals the one-group one");
                    }
                    shapes++;
                }
            }
        }
        assertEquals(2 * 7 * (ctx.limits().clusters() ? 9 : 1), shapes,
                "two teachers x seven shapes x every cluster size the device takes");
    }

    /**
     * The grid of a pipelined plan: as many clusters as the device holds at once, at least one and no more
     * than its multiprocessors' threads allow (2048 per multiprocessor; 512 per block).
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void residentClustersFitTheDevice(DType dtype) {
        for (int v : new int[] {6000, 32000, 152_064}) {
            KdPlan plan = KdPlan.choose(ctx.limits(), 4096, v, dtype);
            int resident = ctx.residentClusters(plan.kernel());
            int cluster = plan.kernel().cluster();
            int most = ctx.limits().multiprocessors() * (2048 / KdPlan.TILE_BLOCK) / cluster;
            assertTrue(resident >= 1 && resident <= most, dtype + " V " + v + " " + plan + ": " + resident + " resident clusters, at most "
                    + most);
            KdPlan piped = KdPlan.pipelined(ctx.limits(), plan, 4096, v, dtype, resident, 1);
            assertEquals(cluster * resident, piped.kernel().grid());
            assertEquals(KdPlan.Prefetch.DURING_PASS_2, piped.prefetch());
        }
        if (ctx.limits().clusters()) {
            for (int cluster : new int[] {3, 5, 6, 7}) {  // the sizes that are not powers of two
                KdPlan plan = KdPlan.tile(ctx.limits(), 4096, 152_064, dtype, cluster, KdPlan.capacity(ctx.limits(), 2, dtype), 4096);
                int resident = ctx.residentClusters(plan.kernel());
                int most = ctx.limits().multiprocessors() * (2048 / KdPlan.TILE_BLOCK) / cluster;
                assertTrue(resident >= 1 && resident <= most, dtype + " " + plan + ": " + resident + " resident clusters, at most " + most);
            }
        }
    }

    /**
     * The default setting (prefetch during pass 2) loops partly cached single-block plans over the rows without
     * copying ahead, on the grid of resident blocks; every other tiled plan prefetches.
     */
    @Test
    void theDefaultPrefetchesAllButPartlyCachedSingleBlocks() {
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            for (int v : new int[] {6000, 32000, 128_256, 152_064}) {
                KdPlan base = KdPlan.choose(ctx.limits(), 4096, v, dtype);
                KdPlan dev = KdPlan.forDevice(ctx, KdPlan.Prefetch.DURING_PASS_2, 4096, v, dtype);
                String what = dtype + " V " + v + ": " + dev;
                assertEquals(base.kernel().function(), dev.kernel().function(), what);
                assertEquals(base.cached(), dev.cached(), what);
                assertEquals(base.staged(), dev.staged(), what);
                assertEquals(base.kernel().cluster() * ctx.residentClusters(base.kernel()), dev.kernel().grid(), what);
                boolean lone = base.kernel().cluster() == 1 && base.cached() < base.chunk();
                assertEquals(lone ? KdPlan.Prefetch.NONE : KdPlan.Prefetch.DURING_PASS_2, dev.prefetch(), what);
            }
        }
    }

    /**
     * A tiled kernel given the whole cache {@link KdPlan#capacity} sizes for {@value KdPlan#TILE_BLOCKS_PER_SM} blocks
     * per multiprocessor runs that many: the shared memory it leaves out covers the kernel's static shared memory
     * and the driver's reserve. (At 130a5d3 it did not: 1104 static bytes + 1 KiB > 2 KiB left out, so an fp32 row
     * of 128256 ran one block per multiprocessor on the H100, at 0.58 of copy bandwidth.) The emulator counts the
     * kernel's static shared memory since 2026-11-24 (before, it answered from dynamic shared memory alone).
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void aWholeCacheLeavesRoomForTheBlocksItIsSizedFor(DType dtype) {
        int capacity = KdPlan.capacity(ctx.limits(), KdPlan.TILE_BLOCKS_PER_SM, dtype);
        int v = 8 * capacity;
        KdPlan plan = KdPlan.tile(ctx.limits(), 4096, v, dtype, 1, capacity, KdPlan.MAX_CLUSTERS);
        assertEquals(capacity, plan.cached(), plan.toString());
        assertEquals(KdPlan.TILE_BLOCKS_PER_SM * ctx.limits().multiprocessors(), ctx.residentClusters(plan.kernel()),
                dtype + " " + plan + ": blocks the device holds at once");
    }

    /**
     * The backend under each {@value KdRows#PREFETCH_PROPERTY} setting: 1000 rows of 2052 (one block holds a
     * row, whole, even at half the cache), more rows than the device holds clusters at once, so the pipelined
     * settings loop clusters over rows and prefetch. Each matches the reference; all give the same bits, as
     * the row's elements are summed in the same order.
     */
    @Test
    void theBackendTakesEachPrefetchSettingWithTheSameBits() {
        int rows = 1000;
        int v = 2052;
        Random rng = new Random(2052);
        float[] s = Inputs.logits(rng, rows, v, 4.0);
        float[] t = Inputs.logits(rng, rows, v, 4.0);
        int[] labels = Inputs.labels(rng, rows, v);
        LogitBatch batch = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, labels);
        SoftTargetKd loss = new SoftTargetKd(2.0, 0.3);
        float upstream = 1.3f;
        double[] refGrad = new double[rows * v];
        double ref = Float64Reference.kd(s, t, false, labels, rows, v, 2.0, 0.3, upstream, refGrad);
        LossResult first = null;
        float[] firstGrad = null;
        String before = System.getProperty(KdRows.PREFETCH_PROPERTY);
        try {
            for (KdPlan.Prefetch prefetch : KdPlan.Prefetch.values()) {
                KdPlan plan = KdPlan.forDevice(ctx, prefetch, rows, v, DType.F32);
                assertEquals(prefetch, plan.prefetch(), plan.toString());
                assertTrue(plan.tiled() && plan.cached() == v, plan + ": the row cached whole");
                if (prefetch != KdPlan.Prefetch.NONE) {
                    assertTrue(plan.kernel().grid() / plan.kernel().cluster() < rows, plan + ": clusters loop over the rows");
                }
                System.setProperty(KdRows.PREFETCH_PROPERTY, prefetch.name().toLowerCase(java.util.Locale.ROOT).replace('_', '-'));
                float[] grad = Inputs.poisoned(rows * v);
                LossResult r = backend.logitLoss(loss, batch, grad, upstream);
                String what = "kd with " + plan;
                assertEquals(plan.kernel(), ctx.lastLaunch(), what + ": the backend launched the setting's plan");
                Tolerances.assertKernelValueClose(ref, r.value(), Tolerances.KERNEL_F32_VALUE_REL, what);
                Tolerances.assertKernelGradClose(refGrad, grad, Tolerances.KERNEL_F32_GRAD, what + " gradient");
                if (first == null) {
                    first = r;
                    firstGrad = grad;
                } else {
                    assertEquals(Double.doubleToRawLongBits(first.value()), Double.doubleToRawLongBits(r.value()), what + ": value bits");
                    assertArrayEquals(firstGrad, grad, what + ": gradient bits");
                }
            }
        } finally {
            if (before == null) {
                System.clearProperty(KdRows.PREFETCH_PROPERTY);
            } else {
                System.setProperty(KdRows.PREFETCH_PROPERTY, before);
            }
        }
    }

    /**
     * A cluster scheduling policy moves clusters between multiprocessors and nothing else: under each one the
     * device holds at least one cluster at once, a tiled kernel on a cluster of 6 (looping over 7 rows, prefetching)
     * gives the bits of the default, and a plan without a cluster is refused with its function's name. (The
     * emulator accepts the policy and ignores it, so there this checks the calls; on a GPU, the placement.)
     */
    @Test
    void aClusterPolicyPlacesClustersAndKeepsTheBits() {
        org.junit.jupiter.api.Assumptions.assumeTrue(ctx.limits().clusters(), ctx.describe() + " has no thread-block clusters");
        DType dtype = DType.BF16;
        int rows = 7;
        int v = 6000;
        Random rng = new Random(59);
        float[] s = dtype.round(Inputs.logits(rng, rows, v, 3.0));
        float[] t = dtype.round(Inputs.logits(rng, rows, v, 3.0));
        int[] labels = Inputs.labels(rng, rows, v);
        KdPlan plan = KdPlan.tile(ctx.limits(), rows, v, dtype, 6, KdPlan.capacity(ctx.limits(), 2, dtype), 2,
                KdPlan.Prefetch.DURING_PASS_2);
        float[][] base = runKd(plan, dtype, s, t, labels, null, rows, v, 1.7, 0.2, 0.9f / rows, false);
        int most = ctx.limits().multiprocessors() * (2048 / KdPlan.TILE_BLOCK) / 6;
        try {
            for (DeviceContext.ClusterPolicy policy : DeviceContext.ClusterPolicy.values()) {
                ctx.clusterPolicy(plan.kernel(), policy);
                int resident = ctx.residentClusters(plan.kernel());
                assertTrue(resident >= 1 && resident <= most, policy + ": " + resident + " resident clusters of 6, at most " + most);
                float[][] got = runKd(plan, dtype, s, t, labels, null, rows, v, 1.7, 0.2, 0.9f / rows, false);
                assertArrayEquals(base[0], got[0], policy + ": the same row parts");
                assertArrayEquals(base[1], got[1], policy + ": the same gradient");
            }
        } finally {
            ctx.clusterPolicy(plan.kernel(), DeviceContext.ClusterPolicy.DEFAULT);
        }
        KernelPlan single = KdPlan.tile(ctx.limits(), rows, v, dtype, 1, 0, 1).kernel();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ctx.clusterPolicy(single, DeviceContext.ClusterPolicy.LOAD_BALANCING));
        assertTrue(e.getMessage().contains("kd_tile_bf16_c1"), e.getMessage());
    }

    /**
     * Gives the classes of rows {@code many} and {@code allButOne} of a teacher zero mass (logit -inf, probability 0): row
     * {@code many}'s first and last class and a third of the others at random; every class of row {@code allButOne} but one
     * picked at random (its last class keeps its mass only if picked).
     */
    static void zeroMass(Random rng, float[] t, int v, boolean probs, int many, int allButOne) {
        float zero = probs ? 0f : Float.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            if (i == 0 || i == v - 1 || rng.nextInt(3) == 0) {
                t[many * v + i] = zero;
            }
        }
        int kept = 1 + rng.nextInt(v - 1);
        for (int i = 0; i < v; i++) {
            if (i != kept) {
                t[allButOne * v + i] = zero;
            }
        }
    }

    /**
     * What the tiled kernels leave to the CPU loss, wherever in a row it sits (block 0's cached part or the rest, or only in
     * a peer block of the cluster; alone in its word or beside a -inf): flag 2 for a teacher logit of NaN or +inf, a row
     * with no class of mass and a logit beyond their range (|logit| / T of 7.4e8 or more), flag 1 for a student logit that
     * is not finite. Rows whose -inf logits, or masks of -3e38 (whose products with log2(e) / T overflow at T = 1), sit
     * next to finite ones are not flagged, and their values and gradients match the float64 reference. On every cluster
     * size the device takes, cached whole, in part and not at all, without and with prefetching.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void tiledKernelsFlagWhatTheCpuDecides(DType dtype) {
        int rows = 9;
        int v = 6000;
        double temperature = 1.0;
        double alpha = 0.2;
        Random rng = new Random(97 + dtype.ordinal());
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        int[] labels = Inputs.labels(rng, rows, v);
        int[] valid = {5, 6};
        int shapes = 0;
        for (int cluster : new int[] {1, 2, 5}) {
            if (cluster > 1 && !ctx.limits().clusters()) {
                continue;
            }
            int chunk = KdPlan.tile(ctx.limits(), rows, v, dtype, cluster, Integer.MAX_VALUE, 2).chunk();
            for (int capacity : new int[] {chunk, chunk / 2 + 3, 0}) {
                for (KdPlan.Prefetch prefetch : new KdPlan.Prefetch[] {KdPlan.Prefetch.NONE, KdPlan.Prefetch.DURING_PASS_2}) {
                    KdPlan plan = KdPlan.tile(ctx.limits(), rows, v, dtype, cluster, capacity, capacity == 0 ? rows : 2, prefetch);
                    int early = 5;                         // in block 0's cached part where there is one
                    int late = Math.min(v - 1, chunk - 2); // in block 0's uncached part when half is cached, else its last words
                    int peer = v - 5;                      // in the last block of the cluster (block 0's last words at C = 1)
                    float[] st = s.clone();
                    float[] t = Inputs.logits(rng, rows, v, 3.0);
                    t[peer] = Float.NaN;                                   // row 0: NaN in a peer block only
                    t[v + late] = Float.POSITIVE_INFINITY;                 // row 1
                    t[2 * v + 4] = Float.NEGATIVE_INFINITY;                // row 2: NaN beside -inf, one word
                    t[2 * v + 5] = Float.NaN;
                    java.util.Arrays.fill(t, 3 * v, 4 * v, Float.NEGATIVE_INFINITY); // row 3: no class of mass
                    t[4 * v + late] = Float.NEGATIVE_INFINITY;             // row 4: +inf after a -inf
                    t[4 * v + v - 1] = Float.POSITIVE_INFINITY;
                    t[5 * v + early] = -3.0e38f;                           // row 5: masks beside finite logits: valid
                    t[5 * v + late] = -3.0e38f;
                    t[5 * v + peer] = Float.NEGATIVE_INFINITY;
                    zeroMass(rng, t, v, false, 7, 6);                      // row 6: one class of mass: valid
                    st[7 * v + peer] = Float.NaN;                          // row 7: a student NaN in a peer block (its teacher has -inf)
                    t[8 * v + early] = 2.0e9f;                             // row 8: beyond the range, in the teacher
                    String what = dtype + " " + plan;
                    float[] sr = dtype.round(st);
                    float[] tr = dtype.round(t);
                    float[][] got = runKd(plan, dtype, sr, tr, labels, null, rows, v, temperature, alpha, 0.5f / valid.length, false);
                    float[] flags = new float[rows];
                    for (int r = 0; r < rows; r++) {
                        flags[r] = got[0][3 * r + 2];
                    }
                    assertArrayEquals(new float[] {2, 2, 2, 2, 2, 0, 0, 1, 2}, flags, what + ": rows flagged");
                    double[] refGrad = new double[valid.length * v];
                    double ref = Float64Reference.kd(KernelInputs.rows(sr, valid, v), KernelInputs.rows(tr, valid, v), false,
                            KernelInputs.pick(labels, valid), valid.length, v, temperature, alpha, 0.5, refGrad);
                    double value = 0;
                    float[] grad = new float[valid.length * v];
                    for (int k = 0; k < valid.length; k++) {
                        int r = valid[k];
                        value += alpha * got[0][3 * r + 1] + (1 - alpha) * got[0][3 * r];
                        System.arraycopy(got[1], r * v, grad, k * v, v);
                    }
                    boolean full = dtype == DType.F32;
                    Tolerances.assertKernelValueClose(ref, value / valid.length,
                            full ? Tolerances.KERNEL_F32_VALUE_REL : Tolerances.KERNEL_F16_VALUE_REL, what + ": the valid rows' value");
                    Tolerances.assertKernelGradClose(refGrad, grad, full ? Tolerances.KERNEL_F32_GRAD : Tolerances.KERNEL_F16_GRAD,
                            what + ": the valid rows' gradient");
                    shapes++;
                }
            }
        }
        assertEquals(6 * (ctx.limits().clusters() ? 3 : 1), shapes, "three caches x two prefetch settings x each cluster size");
    }

    /** One launch of a kd plan on poisoned gradient memory ({@code counted} null: every row counts); returns {rowOut, gradient}. */
    static float[][] runKd(KdPlan plan, DType dtype, float[] s, float[] t, int[] labels, byte[] counted, int rows, int v,
                                   double temperature, double alpha, float scale, boolean probs) {
        long n = (long) rows * v;
        try (DeviceBuffer ds = ctx.alloc(n * dtype.bytes()); DeviceBuffer dt = ctx.alloc(n * dtype.bytes());
             DeviceBuffer dy = ctx.alloc(4L * rows); DeviceBuffer dc = counted != null ? ctx.alloc(rows) : null;
             DeviceBuffer dg = ctx.alloc(n * dtype.bytes());
             DeviceBuffer out = ctx.alloc(12L * rows)) {
            ctx.upload(ds, dtype.encode(s));
            ctx.upload(dt, dtype.encode(t));
            ctx.upload(dg, dtype.encode(Inputs.poisoned((int) n)));
            ctx.upload(out, DType.F32.encode(Inputs.poisoned(3 * rows)));
            ByteBuffer yb = ByteBuffer.allocate(4 * rows).order(ByteOrder.LITTLE_ENDIAN);
            for (int y : labels) {
                yb.putInt(y);
            }
            ctx.upload(dy, yb.array());
            if (dc != null) {
                ctx.upload(dc, counted);
            }
            boolean needS1 = alpha > 0 && temperature != 1.0;
            plan.launch(ctx, ds, dt, alpha > 0 ? dy : null, dc, dg, out, rows, v, (float) (1 / temperature),
                    (float) ((1 - alpha) * temperature), (float) alpha, (float) (temperature * temperature), scale, probs ? 1 : 0,
                    needS1 ? 1 : 0);
            byte[] rb = new byte[12 * rows];
            ctx.download(out, rb);
            float[] rowOut = new float[3 * rows];
            ByteBuffer.wrap(rb).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(rowOut);
            byte[] gb = new byte[(int) (n * dtype.bytes())];
            ctx.download(dg, gb);
            float[] grad = new float[(int) n];
            dtype.decode(gb, grad);
            return new float[][] {rowOut, grad};
        }
    }

    @Test
    void badInputsRaiseTheCpuLossError() {
        Random rng = new Random(8);
        int rows = 4;
        int v = 5000;
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        float[] t = Inputs.logits(rng, rows, v, 2.0);
        s[2 * v + 17] = Float.POSITIVE_INFINITY;
        LogitBatch batch = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, Inputs.labels(rng, rows, v));
        IllegalArgumentException gpu = assertThrows(IllegalArgumentException.class,
                () -> backend.logitLoss(new SoftTargetKd(4, 0.1), batch, new float[rows * v], 1f));
        IllegalArgumentException cpu = assertThrows(IllegalArgumentException.class,
                () -> new SoftTargetKd(4, 0.1).compute(batch, new float[rows * v], 1f));
        assertEquals(cpu.getMessage(), gpu.getMessage());

        // a non-finite upstream factor: refused as the CPU losses refuse it, for the fused kd, ce and gjsd kernels
        LogitBatch ok = LogitBatch.of(rows, v, Inputs.logits(rng, rows, v, 2.0), t, TeacherValues.LOGITS, Inputs.labels(rng, rows, v));
        for (org.distill4j.loss.LogitLoss l : new org.distill4j.loss.LogitLoss[]{new SoftTargetKd(4, 0.1),
                new org.distill4j.loss.CrossEntropy(), new org.distill4j.loss.GeneralizedJsd(0.5, 1)}) {
            for (float up : new float[]{Float.NaN, Float.POSITIVE_INFINITY}) {
                IllegalArgumentException g = assertThrows(IllegalArgumentException.class, () -> backend.logitLoss(l, ok, new float[rows * v], up));
                IllegalArgumentException c = assertThrows(IllegalArgumentException.class, () -> l.compute(ok, new float[rows * v], up));
                assertEquals(c.getMessage(), g.getMessage());
            }
        }
    }

    /**
     * A gradient buffer that is missing, of the wrong length or the same array as an input is refused by the kernels'
     * losses with the CPU loss's own error, before anything runs: the inputs are left as they were (a gradient written
     * into the student logits or the teacher values would destroy the inputs of the caller's next step).
     */
    @Test
    void badGradientBuffersRaiseTheCpuLossError() {
        Random rng = new Random(13);
        int rows = 6;
        int v = 301;
        int k = 4;
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        float[] t = Inputs.logits(rng, rows, v, 2.0);
        int[] labels = Inputs.labels(rng, rows, v);
        KernelInputs.TopK top = KernelInputs.topK(t, rows, v, k);
        LogitBatch dense = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, labels);
        LogitBatch sparse = LogitBatch.ofTopK(rows, v, s, top.ids(), top.logProbs(), k, labels);
        float[] s0 = s.clone();
        float[] t0 = t.clone();
        org.distill4j.loss.LogitLoss[] losses = {new SoftTargetKd(2, 0.3), new CrossEntropy(), new org.distill4j.loss.GeneralizedJsd(0.5, 1),
                new org.distill4j.loss.TopKKd(2.0, org.distill4j.loss.TopKKd.Tail.REST_BUCKET)};
        for (org.distill4j.loss.LogitLoss loss : losses) {
            LogitBatch batch = loss.needsTopK() ? sparse : dense;
            java.util.List<float[]> bad = new java.util.ArrayList<>(java.util.Arrays.asList(null, new float[rows * v - 1], s));
            if (!loss.needsTopK()) {
                bad.add(t);
            }
            for (float[] g : bad) {
                String what = loss.name() + " with a gradient buffer of " + (g == null ? "null" : g == s ? "the student logits"
                        : g == t ? "the teacher values" : g.length + " elements");
                IllegalArgumentException cpu = assertThrows(IllegalArgumentException.class, () -> loss.compute(batch, g, 1f), what);
                IllegalArgumentException gpu = assertThrows(IllegalArgumentException.class, () -> backend.logitLoss(loss, batch, g, 1f), what);
                assertEquals(cpu.getMessage(), gpu.getMessage(), what);
                assertArrayEquals(s0, s, what + ": the student logits are untouched");
                assertArrayEquals(t0, t, what + ": the teacher values are untouched");
            }
            // both the buffer and the upstream factor wrong: the same error as the CPU loss's, which checks the buffer first
            IllegalArgumentException cpu = assertThrows(IllegalArgumentException.class, () -> loss.compute(batch, null, Float.NaN));
            IllegalArgumentException gpu = assertThrows(IllegalArgumentException.class, () -> backend.logitLoss(loss, batch, null, Float.NaN));
            assertEquals(cpu.getMessage(), gpu.getMessage(), loss.name());
        }
    }

    /**
     * The smallest shapes: one row, one or two classes (with V = 1 every distribution is certain: value 0, gradient 0),
     * on every kernel the backend runs, against the CPU loss.
     */
    @ParameterizedTest(name = "rows {0}, V {1}")
    @CsvSource({"1, 1", "3, 1", "1, 2", "5, 2"})
    void theSmallestShapesGiveTheCpuLoss(int rows, int v) {
        Random rng = new Random(rows * 7L + v);
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        float[] t = Inputs.logits(rng, rows, v, 3.0);
        int[] labels = Inputs.labels(rng, rows, v);
        KernelInputs.TopK top = KernelInputs.topK(t, rows, v, 1);
        LogitBatch dense = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, labels);
        LogitBatch sparse = LogitBatch.ofTopK(rows, v, s, top.ids(), top.logProbs(), 1, labels);
        org.distill4j.loss.LogitLoss[] losses = {new SoftTargetKd(2, 0.3), new CrossEntropy(), new org.distill4j.loss.GeneralizedJsd(0.5, 1),
                new org.distill4j.loss.TopKKd(2.0, org.distill4j.loss.TopKKd.Tail.REST_BUCKET),
                new org.distill4j.loss.TopKKd(2.0, org.distill4j.loss.TopKKd.Tail.RENORMALIZE)};
        for (org.distill4j.loss.LogitLoss loss : losses) {
            LogitBatch batch = loss.needsTopK() ? sparse : dense;
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = backend.logitLoss(loss, batch, grad, 0.7f);
            float[] cpuGrad = new float[rows * v];
            LossResult cpu = loss.compute(batch, cpuGrad, 0.7f);
            String what = loss.name() + " rows " + rows + " V " + v;
            Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, what);
            Tolerances.assertKernelGradClose(KernelInputs.widen(cpuGrad), grad, Tolerances.KERNEL_F32_GRAD, what + " gradient");
            assertEquals(cpu.rows(), r.rows(), what);
            assertEquals(cpu.terms().keySet(), r.terms().keySet(), what);
        }
    }

    /**
     * Teacher classes of zero mass (logits of -inf, probabilities of 0: a padded or masked vocabulary) run on the device,
     * not through the CPU, for every kernel family the backend picks (one warp a row at V 37, a block at V 3001, the tiled
     * kernels at V 6000), and match the CPU loss and the float64 reference: kd with a logit and a probability teacher,
     * and a logit teacher masked with -3e38 (whose products with log2(e) / T overflow at T = 0.9; at V 6000 one row's
     * mask covers every word one thread of the tiled kernel reads), gjsd, and topk-kd with top-k entries of -inf (a row
     * whose teacher has fewer finite classes than k).
     */
    @ParameterizedTest(name = "V {0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {37, 3001, 6000})
    void zeroMassTeacherClassesRunOnTheDevice(int v) {
        int rows = 9;
        Random rng = new Random(5L * v + 1);
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        int[] labels = Inputs.labels(rng, rows, v);
        long reruns = backend.cpuReruns();
        for (String teacher : new String[] {"logit", "probability", "masked logit"}) {
            boolean probs = teacher.equals("probability");
            float[] t = probs ? Inputs.probabilities(rng, rows, v, 3.0) : Inputs.logits(rng, rows, v, 3.0);
            zeroMass(rng, t, v, probs, 1, 5);
            zeroMass(rng, t, v, probs, 7, 3);
            if (teacher.equals("masked logit")) {
                for (int i = 0; i < v; i++) {
                    if (i % 2048 < 4 || rng.nextInt(4) == 0) {
                        t[2 * v + i] = -3.0e38f; // thread 0's words of a row at V 6000 (one 512-thread block, 4 floats a word)
                    }
                    if (t[5 * v + i] == Float.NEGATIVE_INFINITY) {
                        t[5 * v + i] = -3.0e38f;
                    }
                }
            }
            LogitBatch batch = LogitBatch.of(rows, v, s, t, probs ? TeacherValues.PROBABILITIES : TeacherValues.LOGITS, labels);
            double temperature = probs ? 0.5 : teacher.equals("masked logit") ? 0.9 : 2.0;
            double alpha = probs ? 0.0 : 0.3;
            String what = "V " + v + " " + teacher + " teacher";
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = backend.logitLoss(new SoftTargetKd(temperature, alpha), batch, grad, 0.7f);
            double[] refGrad = new double[rows * v];
            double ref = Float64Reference.kd(s, t, probs, labels, rows, v, temperature, alpha, 0.7, refGrad);
            Tolerances.assertKernelValueClose(ref, r.value(), Tolerances.KERNEL_F32_VALUE_REL, "kd " + what);
            Tolerances.assertKernelGradClose(refGrad, grad, Tolerances.KERNEL_F32_GRAD, "kd " + what + " gradient");

            org.distill4j.loss.GeneralizedJsd jsd = new org.distill4j.loss.GeneralizedJsd(0.4, 1.5);
            float[] jsdGrad = Inputs.poisoned(rows * v);
            LossResult j = backend.logitLoss(jsd, batch, jsdGrad, 0.7f);
            float[] cpuGrad = new float[rows * v];
            LossResult cpu = jsd.compute(batch, cpuGrad, 0.7f);
            Tolerances.assertKernelValueClose(cpu.value(), j.value(), Tolerances.KERNEL_F32_VALUE_REL, "gjsd " + what);
            Tolerances.assertKernelGradClose(KernelInputs.widen(cpuGrad), jsdGrad, Tolerances.KERNEL_F32_GRAD, "gjsd " + what + " gradient");
        }
        float[] t = Inputs.logits(rng, rows, v, 3.0);
        zeroMass(rng, t, v, false, 1, 5);
        for (int i = 0; i < v - 2; i++) {
            t[7 * v + i] = Float.NEGATIVE_INFINITY; // row 7: two classes of mass, k = 5 takes three of -inf
        }
        int k = 5;
        KernelInputs.TopK top = KernelInputs.topK(t, rows, v, k);
        assertEquals(Float.NEGATIVE_INFINITY, top.logProbs()[7 * k + k - 1], "row 7 has top-k entries of -inf");
        LogitBatch sparse = LogitBatch.ofTopK(rows, v, s, top.ids(), top.logProbs(), k, labels);
        for (org.distill4j.loss.TopKKd.Tail tail : org.distill4j.loss.TopKKd.Tail.values()) {
            org.distill4j.loss.TopKKd loss = new org.distill4j.loss.TopKKd(1.5, tail);
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = backend.logitLoss(loss, sparse, grad, 0.7f);
            float[] cpuGrad = new float[rows * v];
            LossResult cpu = loss.compute(sparse, cpuGrad, 0.7f);
            Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, "topk-kd " + tail + " V " + v);
            Tolerances.assertKernelGradClose(KernelInputs.widen(cpuGrad), grad, Tolerances.KERNEL_F32_GRAD, "topk-kd " + tail + " V " + v
                    + " gradient");
        }
        assertEquals(reruns, backend.cpuReruns(), "no batch went back to the CPU: the kernels took every class of zero mass");
    }

    /**
     * Teachers the CPU loss refuses (a logit of NaN or +inf, a row with no class of mass, a negative probability) raise
     * the CPU loss's error on the device too, for kd and gjsd on every kernel family the backend picks.
     */
    @ParameterizedTest(name = "V {0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {37, 3001, 6000})
    void invalidTeachersRaiseTheCpuLossError(int v) {
        int rows = 4;
        Random rng = new Random(11L * v);
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        int[] labels = Inputs.labels(rng, rows, v);
        long reruns = backend.cpuReruns();
        record Bad(String what, boolean probs, java.util.function.Consumer<float[]> spoil) {
        }
        Bad[] cases = {
                new Bad("NaN logit", false, t -> t[2 * v + v / 2] = Float.NaN),
                new Bad("+inf logit", false, t -> t[2 * v + v - 1] = Float.POSITIVE_INFINITY),
                new Bad("+inf beside -inf", false, t -> {
                    t[v + 4] = Float.NEGATIVE_INFINITY; // one 16-byte word
                    t[v + 5] = Float.POSITIVE_INFINITY;
                }),
                new Bad("no class of mass", false, t -> java.util.Arrays.fill(t, 3 * v, 4 * v, Float.NEGATIVE_INFINITY)),
                new Bad("all probabilities 0", true, t -> java.util.Arrays.fill(t, v, 2 * v, 0f)),
                new Bad("a negative probability", true, t -> t[2 * v + 1] = -0.25f)};
        for (Bad bad : cases) {
            float[] t = bad.probs() ? Inputs.probabilities(rng, rows, v, 2.0) : Inputs.logits(rng, rows, v, 2.0);
            bad.spoil().accept(t);
            LogitBatch batch = LogitBatch.of(rows, v, s, t, bad.probs() ? TeacherValues.PROBABILITIES : TeacherValues.LOGITS, labels);
            for (org.distill4j.loss.LogitLoss loss : new org.distill4j.loss.LogitLoss[] {new SoftTargetKd(2, 0.2),
                    new org.distill4j.loss.GeneralizedJsd(0.5, 1)}) {
                IllegalArgumentException cpu = assertThrows(IllegalArgumentException.class,
                        () -> loss.compute(batch, new float[rows * v], 1f), bad.what() + ": the CPU loss refuses it");
                IllegalArgumentException gpu = assertThrows(IllegalArgumentException.class,
                        () -> backend.logitLoss(loss, batch, new float[rows * v], 1f), bad.what() + " " + loss.name() + " V " + v);
                assertEquals(cpu.getMessage(), gpu.getMessage(), bad.what() + " " + loss.name() + " V " + v);
            }
        }
        assertEquals(reruns, backend.cpuReruns(), "every flagged batch was one the CPU loss refuses");
    }

    /**
     * A batch with a logit beyond the tiled kernels' range (|logit| / T of 7.4e8 or more, where their exponents lose
     * their exactness) runs on the CPU: its result is the CPU loss's, bit for bit, counted apart from the batches a kernel
     * wrongly flags. A batch of the same shape without it stays on the device.
     */
    @Test
    void logitsBeyondTheTiledRangeRunOnTheCpu() {
        int rows = 5;
        int v = 6000;
        Random rng = new Random(61);
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        float[] t = Inputs.logits(rng, rows, v, 3.0);
        int[] labels = Inputs.labels(rng, rows, v);
        SoftTargetKd loss = new SoftTargetKd(1.0, 0.2);
        long range = backend.rangeReruns();
        long reruns = backend.cpuReruns();
        backend.logitLoss(loss, LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, labels), new float[rows * v], 0.7f);
        assertEquals(range, backend.rangeReruns(), "ordinary logits stay on the device");
        for (boolean student : new boolean[] {false, true}) {
            float[] ss = s.clone();
            float[] tt = t.clone();
            (student ? ss : tt)[3 * v + 17] = 2.0e9f;
            LogitBatch batch = LogitBatch.of(rows, v, ss, tt, TeacherValues.LOGITS, labels);
            float[] grad = Inputs.poisoned(rows * v);
            LossResult r = backend.logitLoss(loss, batch, grad, 0.7f);
            float[] cpuGrad = new float[rows * v];
            LossResult cpu = loss.compute(batch, cpuGrad, 0.7f);
            String what = student ? "a student logit of 2e9" : "a teacher logit of 2e9";
            assertEquals(Double.doubleToRawLongBits(cpu.value()), Double.doubleToRawLongBits(r.value()), what + ": the CPU's value");
            assertArrayEquals(cpuGrad, grad, what + ": the CPU's gradient");
            assertTrue(Double.isFinite(r.value()), what + ": " + r.value());
        }
        assertEquals(range + 2, backend.rangeReruns(), "both batches went to the CPU for their logits' size");
        assertEquals(reruns, backend.cpuReruns(), "neither counted as a kernel flagging a valid batch");
    }

    @Test
    void outOfMemorySaysHowMuchWasAskedAndFree() {
        CudaException e = assertThrows(CudaException.class, () -> ctx.alloc(1L << 50));
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", e.errorName());
        assertTrue(e.getMessage().contains("asked 1125899906842624 bytes") && e.getMessage().contains("bytes free on"), e.getMessage());
        long[] info = ctx.memInfo();
        assertTrue(info[0] > 0 && info[1] >= info[0], java.util.Arrays.toString(info));
    }

    /**
     * Freeing the pool's cached buffers is a driver call like any other: where it fails (here because the stream is
     * capturing, which forbids freeing) the failure names the call, and the buffers stay the pool's, freed by a later
     * trim, rather than dropped from the pool unfreed (device memory lost until the context closes).
     */
    @Test
    void aTrimThatFailsSaysWhyAndKeepsThePoolsBuffers() {
        DeviceBuffer b = ctx.alloc(3000);
        long at = b.address();
        b.close();
        CudaException e = assertThrows(CudaException.class, () -> ctx.capture(ctx::trim));
        assertTrue(e.call().startsWith("cuMemFree"), e.getMessage());
        try (DeviceBuffer again = ctx.alloc(3000)) {
            assertEquals(at, again.address(), "the cached buffer is still the pool's");
        }
        ctx.trim();
        try (DeviceBuffer fresh = ctx.alloc(3000)) {
            assertTrue(fresh.capacity() >= 3000);
        }
    }

    /**
     * Two threads calling one backend at once (kd, gjsd and topk-kd host batches, each in chunks of rows through the
     * backend's one staging buffer) get the bits each call gets alone.
     */
    @Test
    void twoThreadsShareABackend() throws Exception {
        int rows = 7;
        int v = 301;
        int k = 5;
        CudaBackend shared = new CudaBackend(ctx, 4L * v * 3); // chunks of 3 rows; shares the class's context, not closed here
        Random rng = new Random(77);
        org.distill4j.loss.LogitLoss[] losses = {new SoftTargetKd(2.0, 0.3), new org.distill4j.loss.GeneralizedJsd(0.4, 1.5),
                new org.distill4j.loss.TopKKd(2.0, org.distill4j.loss.TopKKd.Tail.REST_BUCKET)};
        LogitBatch[] batches = new LogitBatch[2 * losses.length];
        float[][] alone = new float[batches.length][];
        double[] aloneValue = new double[batches.length];
        for (int i = 0; i < batches.length; i++) {
            float[] s = Inputs.logits(rng, rows, v, 3.0);
            float[] t = Inputs.logits(rng, rows, v, 3.0);
            int[] labels = Inputs.labels(rng, rows, v);
            KernelInputs.TopK top = KernelInputs.topK(t, rows, v, k);
            batches[i] = losses[i % losses.length].needsTopK() ? LogitBatch.ofTopK(rows, v, s, top.ids(), top.logProbs(), k, labels)
                    : LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, labels);
            alone[i] = new float[rows * v];
            aloneValue[i] = shared.logitLoss(losses[i % losses.length], batches[i], alone[i], 0.9f).value();
        }
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(2);
        try {
            java.util.List<java.util.concurrent.Future<?>> runs = new java.util.ArrayList<>();
            for (int thread = 0; thread < 2; thread++) {
                int first = thread;
                runs.add(pool.submit(() -> {
                    for (int round = 0; round < 4; round++) {
                        for (int i = first; i < batches.length; i += 2) {
                            float[] g = Inputs.poisoned(rows * v);
                            double value = shared.logitLoss(losses[i % losses.length], batches[i], g, 0.9f).value();
                            assertArrayEquals(alone[i], g, "batch " + i + " round " + round + " gradient");
                            assertEquals(Double.doubleToRawLongBits(aloneValue[i]), Double.doubleToRawLongBits(value), "batch " + i + " value");
                        }
                    }
                    return null;
                }));
            }
            for (java.util.concurrent.Future<?> f : runs) {
                f.get(300, java.util.concurrent.TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * A host batch larger than the backend's chunk goes to the device in chunks of rows, with the same bits as in one
     * piece: each row's parts and gradient are its own. Here chunks of {@code perChunk} rows, the last one short, on
     * the two-pass (V 301) and tiled (V 4000) kernels, with ignored and masked rows.
     */
    @ParameterizedTest(name = "rows {0}, V {1}, chunks of {2} rows")
    @CsvSource({"37, 301, 3", "11, 4000, 2"})
    void hostBatchesGoInChunksOfRowsWithTheSameBits(int rows, int v, int perChunk) {
        Random rng = new Random(rows * 31L + v);
        float[] s = Inputs.logits(rng, rows, v, 4.0);
        float[] t = Inputs.logits(rng, rows, v, 4.0);
        int[] labels = Inputs.labels(rng, rows, v);
        labels[4] = LogitBatch.IGNORE_INDEX;
        boolean[] mask = new boolean[rows];
        java.util.Arrays.fill(mask, true);
        mask[rows - 2] = false;
        LogitBatch dense = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, labels).withRowMask(mask);
        int k = 9;
        KernelInputs.TopK top = KernelInputs.topK(t, rows, v, k);
        LogitBatch sparse = LogitBatch.ofTopK(rows, v, s, top.ids(), top.logProbs(), k, labels).withRowMask(mask);
        // shares the class's context, which the base class closes (closing this backend would close it too)
        CudaBackend chunked = new CudaBackend(ctx, 4L * v * perChunk + 4 * v - 1);
        assertEquals(perChunk, chunked.chunkRows(rows, v));
        org.distill4j.loss.LogitLoss[] losses = {new SoftTargetKd(2.5, 0.3), new CrossEntropy(),
                new org.distill4j.loss.GeneralizedJsd(0.4, 1.5), new org.distill4j.loss.TopKKd(2.0, org.distill4j.loss.TopKKd.Tail.REST_BUCKET)};
        for (org.distill4j.loss.LogitLoss loss : losses) {
            LogitBatch batch = loss.needsTopK() ? sparse : dense;
            float[] whole = Inputs.poisoned(rows * v);
            LossResult one = backend.logitLoss(loss, batch, whole, 0.8f);
            float[] parts = Inputs.poisoned(rows * v);
            LossResult many = chunked.logitLoss(loss, batch, parts, 0.8f);
            assertArrayEquals(whole, parts, loss.name() + " gradient");
            assertEquals(Double.doubleToRawLongBits(one.value()), Double.doubleToRawLongBits(many.value()), loss.name() + " value");
            assertEquals(one.terms(), many.terms(), loss.name() + " terms");
            assertEquals(one.rows(), many.rows());
            float[] cpuGrad = new float[rows * v];
            LossResult cpu = loss.compute(batch, cpuGrad, 0.8f);
            Tolerances.assertKernelValueClose(cpu.value(), many.value(), Tolerances.KERNEL_F32_VALUE_REL, loss.name() + " vs cpu");
            Tolerances.assertKernelGradClose(KernelInputs.widen(cpuGrad), parts, Tolerances.KERNEL_F32_GRAD, loss.name() + " vs cpu");
        }
        int bad = rows - 4; // a counted row of a later chunk: the error names the batch's row
        s[bad * v + 7] = Float.NaN;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> chunked.logitLoss(new SoftTargetKd(2, 0.1), dense, new float[rows * v], 1f));
        assertTrue(e.getMessage().contains("row " + bad), e.getMessage());
    }

    @Test
    void lossesThatNeedLabelsSayWhenTheBatchHasNone() {
        Random rng = new Random(12);
        int rows = 6;
        int v = 700;
        LogitBatch batch = LogitBatch.of(rows, v, Inputs.logits(rng, rows, v, 2.0), Inputs.logits(rng, rows, v, 2.0), TeacherValues.LOGITS,
                null);
        for (org.distill4j.loss.LogitLoss loss : new org.distill4j.loss.LogitLoss[] {new CrossEntropy(), new SoftTargetKd(2, 0.5)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.logitLoss(loss, batch, new float[rows * v], 1f));
            assertTrue(e.getMessage().contains("needs hard labels"), e.getMessage());
        }
    }
}
