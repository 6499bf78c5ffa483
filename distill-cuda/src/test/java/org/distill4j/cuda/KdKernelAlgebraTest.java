package org.distill4j.cuda;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;
import org.distill4j.testing.Float64Reference;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The fused KD kernel's row algebra without a GPU: {@code src/test/cuda/row_math_host_test.cpp} runs the
 * kernel's own {@code row_math.cuh} on the CPU in the kernel's structure (thread striding, butterfly
 * merges, fixed-order block sums), compiled here with the system C++ compiler. Its values and gradients
 * are compared with the float64 reference and with the CPU loss {@code kd}, on fresh random inputs, odd
 * widths, both kernel shapes (warp and block), upstream gradient != 1 and extreme logits. What this does
 * not cover (launches, shuffles, memory) is for the GPU tests on a device.
 */
class KdKernelAlgebraTest {
    private static HostHarness harness;

    @BeforeAll
    static void compile() throws Exception {
        harness = HostHarness.compile("row_math_host_test");
    }

    /** What the harness returns: per-row (T^2 KL, CE, bad) and the gradient. */
    record Out(float[] rowOut, float[] grad) {
    }

    static Out run(int rows, int v, int step, float[] s, float[] t, boolean probs, int[] labels, double temperature, double alpha,
                   double scale) throws IOException, InterruptedException {
        return run(rows, v, step, s, t, probs, labels, temperature, alpha, scale, 0, 0);
    }

    /** mode 0: kd (alpha, labels); mode 1: gjsd (beta; scale = w * upstream * T as in the CPU loss). */
    static Out run(int rows, int v, int step, float[] s, float[] t, boolean probs, int[] labels, double temperature, double alpha,
                   double scale, int mode, double beta) throws IOException, InterruptedException {
        return run(rows, v, step, s, t, probs, labels, temperature, alpha, scale, mode, beta, 0, false, null, null);
    }

    /** mode 2: top-k KD from ids / log-probabilities (k per row), REST tail or not; scale = w * upstream * T. */
    static Out run(int rows, int v, int step, float[] s, float[] t, boolean probs, int[] labels, double temperature, double alpha,
                   double scale, int mode, double beta, int k, boolean rest, int[] ids, float[] lps)
            throws IOException, InterruptedException {
        ByteBuffer b = ByteBuffer.allocate(44 + 4 * (s.length + (t == null ? 0 : t.length) + (labels == null ? 0 : labels.length))
                        + (mode == 2 ? 8 + 8 * ids.length : 0)).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(rows).putInt(v).putInt(step).putInt(t != null ? 1 : 0).putInt(probs ? 1 : 0).putInt(labels != null ? 1 : 0).putInt(mode);
        b.putFloat((float) temperature).putFloat((float) alpha).putFloat((float) scale).putFloat((float) beta);
        for (float x : s) {
            b.putFloat(x);
        }
        if (t != null) {
            for (float x : t) {
                b.putFloat(x);
            }
        }
        if (labels != null) {
            for (int y : labels) {
                b.putInt(y);
            }
        }
        if (mode == 2) {
            b.putInt(k).putInt(rest ? 1 : 0);
            for (int id : ids) {
                b.putInt(id);
            }
            for (float lp : lps) {
                b.putFloat(lp);
            }
        }
        ByteBuffer o = ByteBuffer.wrap(harness.run(b.array())).order(ByteOrder.LITTLE_ENDIAN);
        float[] rowOut = new float[3 * rows];
        float[] grad = new float[rows * v];
        o.asFloatBuffer().get(rowOut);
        o.position(4 * rowOut.length);
        o.asFloatBuffer().get(grad);
        return new Out(rowOut, grad);
    }

    /** step 32 is kd_warp (V <= 2048), 512 is kd_block. */
    @ParameterizedTest(name = "rows {0}, V {1}, step {2}, T {3}, alpha {4}, probs {5}, scale {6}")
    @CsvSource({
            "7, 10, 32, 4.0, 0.1, false, 3.0",
            "5, 37, 32, 2.5, 0.0, true, 2.0",
            "9, 1000, 32, 1.0, 0.5, false, 4.0",
            "3, 2048, 32, 0.5, 0.3, false, 1e4",
            "4, 4099, 512, 4.0, 0.1, false, 5.0",
            "2, 32000, 512, 2.0, 0.2, true, 3.0",
            "3, 257, 512, 0.5, 0.7, false, 1e4",
            "2, 131071, 512, 1.5, 0.0, false, 8.0"})
    void valueAndGradientMatchTheFloat64ReferenceAndTheCpuLoss(int rows, int v, int step, double temperature, double alpha,
                                                                boolean probs, double logitScale) throws Exception {
        Random rng = new Random(rows * 31L + v);
        float[] s = Inputs.logits(rng, rows, v, logitScale);
        float[] t = probs ? Inputs.probabilities(rng, rows, v, logitScale) : Inputs.logits(rng, rows, v, logitScale);
        int[] labels = alpha > 0 ? Inputs.labels(rng, rows, v) : null;
        double upstream = 0.7;
        Out out = run(rows, v, step, s, t, probs, labels, temperature, alpha, upstream / rows);
        double[] refGrad = new double[rows * v];
        double ref = Float64Reference.kd(s, t, probs, labels, rows, v, temperature, alpha, upstream, refGrad);
        double value = 0;
        for (int r = 0; r < rows; r++) {
            assertEquals(0f, out.rowOut()[3 * r + 2], "row " + r + " flagged bad");
            value += alpha * out.rowOut()[3 * r + 1] + (1 - alpha) * out.rowOut()[3 * r];
        }
        value /= rows; // the loss value; upstream scales only the gradient
        String what = "V " + v + ", step " + step + ", T " + temperature;
        Tolerances.assertKernelValueClose(ref, value, Tolerances.KERNEL_F32_VALUE_REL, what + " value");
        Tolerances.assertKernelGradClose(refGrad, out.grad(), Tolerances.KERNEL_F32_GRAD, what + " gradient");

        // the CPU loss on the same inputs agrees too
        LogitBatch batch = LogitBatch.of(rows, v, s, t, probs ? TeacherValues.PROBABILITIES : TeacherValues.LOGITS,
                labels != null ? labels : new int[rows]);
        float[] cpuGrad = new float[rows * v];
        LossResult cpu = new SoftTargetKd(temperature, alpha).compute(batch, cpuGrad, (float) upstream);
        Tolerances.assertKernelValueClose(cpu.value(), value, Tolerances.KERNEL_F32_VALUE_REL, what + " vs the CPU loss");
    }

    /** The GJSD kernels' algebra against the CPU loss gjsd (itself checked against a float64 reference and finite differences). */
    @ParameterizedTest(name = "rows {0}, V {1}, step {2}, beta {3}, T {4}, probs {5}, scale {6}")
    @CsvSource({
            "7, 10, 32, 0.5, 1.0, false, 3.0",
            "5, 37, 32, 0.1, 2.0, true, 2.0",
            "6, 2048, 32, 0.9, 0.5, false, 1e3",
            "3, 4099, 512, 0.5, 4.0, false, 5.0",
            "2, 32000, 512, 0.3, 1.5, true, 3.0"})
    void generalizedJsdMatchesTheCpuLoss(int rows, int v, int step, double beta, double temperature, boolean probs,
                                         double logitScale) throws Exception {
        Random rng = new Random(rows * 17L + v);
        float[] s = Inputs.logits(rng, rows, v, logitScale);
        float[] t = probs ? Inputs.probabilities(rng, rows, v, logitScale) : Inputs.logits(rng, rows, v, logitScale);
        float upstream = 1.3f;
        Out out = run(rows, v, step, s, t, probs, null, temperature, 0, upstream * temperature / rows, 1, beta);
        LogitBatch batch = LogitBatch.of(rows, v, s, t, probs ? TeacherValues.PROBABILITIES : TeacherValues.LOGITS, new int[rows]);
        float[] cpuGrad = new float[rows * v];
        LossResult cpu = new org.distill4j.loss.GeneralizedJsd(beta, temperature).compute(batch, cpuGrad, upstream);
        double value = 0;
        for (int r = 0; r < rows; r++) {
            assertEquals(0f, out.rowOut()[3 * r + 2], "row " + r + " flagged bad");
            value += out.rowOut()[3 * r];
        }
        String what = "gjsd V " + v + " beta " + beta + " T " + temperature;
        Tolerances.assertKernelValueClose(cpu.value(), value / rows, Tolerances.KERNEL_F32_VALUE_REL, what);
        double[] ref = KernelInputs.widen(cpuGrad);
        Tolerances.assertKernelGradClose(ref, out.grad(), Tolerances.KERNEL_F32_GRAD, what + " gradient");
    }

    /** The top-k kernels' algebra against the CPU loss topk-kd, both tails, both shapes. */
    @ParameterizedTest(name = "rows {0}, V {1}, k {2}, step {3}, rest {4}, T {5}")
    @CsvSource({
            "9, 10, 3, 32, true, 1.0",
            "5, 1000, 8, 32, false, 2.0",
            "4, 2048, 64, 32, true, 0.5",
            "3, 4099, 20, 512, false, 4.0",
            "2, 32000, 64, 512, true, 2.0",
            "3, 777, 777, 32, true, 1.5"})
    void topKMatchesTheCpuLoss(int rows, int v, int k, int step, boolean rest, double temperature) throws Exception {
        Random rng = new Random(v * 3L + k);
        float[] s = Inputs.logits(rng, rows, v, 4.0);
        float[] teacher = Inputs.logits(rng, rows, v, 4.0);
        KernelInputs.TopK top = KernelInputs.topK(teacher, rows, v, k);
        int[] ids = top.ids();
        float[] lps = top.logProbs();
        float upstream = 0.8f;
        Out out = run(rows, v, step, s, null, false, null, temperature, 0, upstream * temperature / rows, 2, 0, k, rest, ids, lps);
        LogitBatch batch = LogitBatch.ofTopK(rows, v, s, ids, lps, k, new int[rows]);
        float[] cpuGrad = new float[rows * v];
        org.distill4j.loss.TopKKd loss = new org.distill4j.loss.TopKKd(temperature,
                rest ? org.distill4j.loss.TopKKd.Tail.REST_BUCKET : org.distill4j.loss.TopKKd.Tail.RENORMALIZE);
        LossResult cpu = loss.compute(batch, cpuGrad, upstream);
        double value = 0;
        for (int r = 0; r < rows; r++) {
            assertEquals(0f, out.rowOut()[3 * r + 2], "row " + r + " flagged bad");
            value += out.rowOut()[3 * r];
        }
        String what = "topk V " + v + " k " + k + (rest ? " rest" : " renormalize");
        Tolerances.assertKernelValueClose(cpu.value(), value * temperature * temperature / rows, Tolerances.KERNEL_F32_VALUE_REL, what);
        double[] ref = KernelInputs.widen(cpuGrad);
        Tolerances.assertKernelGradClose(ref, out.grad(), Tolerances.KERNEL_F32_GRAD, what + " gradient");
    }

    @Test
    void crossEntropyAloneIsTheNoTeacherCase() throws Exception {
        Random rng = new Random(99);
        int rows = 6;
        int v = 53;
        float[] s = Inputs.logits(rng, rows, v, 6.0);
        int[] labels = Inputs.labels(rng, rows, v);
        Out out = run(rows, v, 32, s, null, false, labels, 1.0, 1.0, 1.3 / rows);
        double[] refGrad = new double[rows * v];
        double ref = Float64Reference.ce(s, labels, rows, v, 1.3, refGrad);
        double value = 0;
        for (int r = 0; r < rows; r++) {
            value += out.rowOut()[3 * r + 1];
        }
        Tolerances.assertKernelValueClose(ref, value / rows, Tolerances.KERNEL_F32_VALUE_REL, "ce value");
        Tolerances.assertKernelGradClose(refGrad, out.grad(), Tolerances.KERNEL_F32_GRAD, "ce gradient");
    }

    @Test
    void badRowsAreFlaggedOneByOne() throws Exception {
        Random rng = new Random(5);
        int rows = 4;
        int v = 700;
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        float[] t = Inputs.probabilities(rng, rows, v, 2.0);
        s[v + 3] = Float.NaN;        // row 1: a NaN student logit
        t[2 * v + 9] = -0.25f;       // row 2: a negative probability
        java.util.Arrays.fill(t, 3 * v, 4 * v, 0f); // row 3: all-zero probabilities
        for (int step : new int[] {32, 512}) {
            Out out = run(rows, v, step, s, t, true, null, 2.0, 0.0, 1.0 / rows);
            assertEquals(0f, out.rowOut()[2], "row 0 is fine");
            assertEquals(1f, out.rowOut()[5], "row 1: NaN logit");
            assertEquals(1f, out.rowOut()[8], "row 2: negative probability");
            assertEquals(1f, out.rowOut()[11], "row 3: no probability mass");
        }
    }
}
