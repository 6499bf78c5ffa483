package org.distill4j.loss;

import org.distill4j.checkpoint.Checkpointable;
import org.distill4j.testing.Inputs;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hint regressor as a trainable thing: its Adam steps against a float64 reference, its checkpoint state, its
 * parameters and the errors for misuse. Odd sizes (7 student values to 5 teacher values, batches of 3), upstream 0.73.
 */
class HintLossTest {
    static final float UP = 0.73f;
    static final int DS = 7;
    static final int DT = 5;
    static final int N = 3;

    static FeatureBatch batch(Random rng) {
        return FeatureBatch.of(N, Inputs.logits(rng, N, DS, 1.5), new int[]{DS}, Inputs.logits(rng, N, DT, 1.5), new int[]{DT});
    }

    /** Adam with bias correction (beta1 0.9, beta2 0.999, eps 1e-8), in double, one parameter array. */
    static void adam(double[] p, double[] g, double[] m, double[] v, int step, double lr) {
        for (int i = 0; i < p.length; i++) {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
            double mHat = m[i] / (1 - Math.pow(0.9, step));
            double vHat = v[i] / (1 - Math.pow(0.999, step));
            p[i] -= lr * mHat / (Math.sqrt(vHat) + 1e-8);
        }
    }

    @Test
    void eachStepIsAnAdamStepOnTheLastComputesGradients() {
        Random rng = new Random(61);
        double lr = 0.03;
        HintLoss hint = new HintLoss(DS, DT, lr, 9);
        double[] bias = new double[DT];
        for (int i = 0; i < DT; i++) {
            bias[i] = 0.2 * rng.nextGaussian();
        }
        hint.setParameters(hint.weights(), bias);
        double[] w = hint.weights();
        double[] b = hint.bias();
        double[] mw = new double[w.length];
        double[] vw = new double[w.length];
        double[] mb = new double[DT];
        double[] vb = new double[DT];
        for (int step = 1; step <= 4; step++) {
            hint.compute(batch(rng), new float[N * DS], UP); // a new batch each step: the moments see different gradients
            double[][] g = hint.lastGradients();
            adam(w, g[0], mw, vw, step, lr);
            adam(b, g[1], mb, vb, step, lr);
            hint.step();
            double[] hw = hint.weights();
            double[] hb = hint.bias();
            for (int i = 0; i < w.length; i++) {
                assertEquals(w[i], hw[i], 1e-12 * Math.max(1, Math.abs(w[i])), "weight " + i + " after step " + step);
            }
            for (int i = 0; i < DT; i++) {
                assertEquals(b[i], hb[i], 1e-12 * Math.max(1, Math.abs(b[i])), "bias " + i + " after step " + step);
            }
        }
    }

    @Test
    void aStepNeedsAComputeBeforeIt() {
        HintLoss hint = new HintLoss(DS, DT, 1e-2, 1);
        IllegalStateException e = assertThrows(IllegalStateException.class, hint::step);
        assertEquals("hint step() needs a preceding compute()", e.getMessage());
        hint.compute(batch(new Random(2)), new float[N * DS], UP);
        hint.step();
        double[] after = hint.weights();
        assertThrows(IllegalStateException.class, hint::step, "one step per compute");
        assertArrayEquals(after, hint.weights(), 0.0, "a refused step changes nothing");
    }

    static byte[] state(HintLoss h) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            h.writeState(out);
        }
        return bytes.toByteArray();
    }

    /** A resumed regressor continues bit for bit: parameters, both Adam moments and the step count come back. */
    @Test
    void aRestoredStateResumesBitForBit() throws IOException {
        Random rng = new Random(67);
        HintLoss run = new HintLoss(DS, DT, 0.02, 4);
        for (int i = 0; i < 3; i++) {
            run.compute(batch(rng), new float[N * DS], UP);
            run.step();
        }
        byte[] saved = state(run);
        HintLoss resumed = new HintLoss(DS, DT, 0.02, 5); // another initialization, overwritten by the state
        double[] before = resumed.weights();
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(saved));
        Checkpointable.Restore restore = resumed.readState(in);
        assertEquals(0, in.available(), "the state is read to its end");
        assertArrayEquals(before, resumed.weights(), 0.0, "reading alone changes nothing");
        restore.apply();
        assertArrayEquals(run.weights(), resumed.weights(), 0.0);
        assertArrayEquals(run.bias(), resumed.bias(), 0.0);
        assertThrows(IllegalStateException.class, resumed::step, "a restored regressor has no gradient yet");
        for (int i = 0; i < 2; i++) {
            FeatureBatch b = batch(rng);
            float[] g1 = new float[N * DS];
            float[] g2 = new float[N * DS];
            assertEquals(run.compute(b, g1, UP).value(), resumed.compute(b, g2, UP).value(), 0.0);
            assertArrayEquals(g1, g2, 0f);
            run.step();
            resumed.step();
            assertArrayEquals(run.weights(), resumed.weights(), 0.0, "step " + (4 + i));
            assertArrayEquals(run.bias(), resumed.bias(), 0.0, "step " + (4 + i));
        }
        assertArrayEquals(state(run), state(resumed), "the same state after the same steps");
        for (int[] other : new int[][]{{DS + 1, DT}, {DS, DT - 1}}) {
            HintLoss wrong = new HintLoss(other[0], other[1], 0.02, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> wrong.readState(new DataInputStream(new ByteArrayInputStream(saved))));
            assertEquals("the saved hint regressor maps " + DS + " student values to " + DT + " teacher values; this one maps "
                    + other[0] + " to " + other[1], e.getMessage());
        }
    }

    @Test
    void parametersAreSetAndReadAsCopiesOfTheRightSize() {
        HintLoss hint = new HintLoss(DS, DT, 1e-2, 3);
        Random rng = new Random(71);
        double[] w = new double[DS * DT];
        double[] b = new double[DT];
        for (int i = 0; i < w.length; i++) {
            w[i] = rng.nextGaussian();
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = rng.nextGaussian();
        }
        hint.setParameters(w, b);
        assertArrayEquals(w, hint.weights(), 0.0);
        assertArrayEquals(b, hint.bias(), 0.0);
        hint.bias()[0] = 99;
        hint.weights()[0] = 99;
        assertEquals(b[0], hint.bias()[0], 0.0, "bias() is a copy");
        assertEquals(w[0], hint.weights()[0], 0.0, "weights() is a copy");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> hint.setParameters(new double[DS * DT - 1], b));
        assertEquals("hint parameters have " + (DS * DT - 1) + " weights and " + DT + " biases, expected " + DS * DT + " and " + DT,
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> hint.setParameters(w, new double[DT + 1]));
        assertEquals("hint parameters have " + DS * DT + " weights and " + (DT + 1) + " biases, expected " + DS * DT + " and " + DT,
                e.getMessage());
        assertArrayEquals(w, hint.weights(), 0.0, "a refused setParameters changes nothing");
        assertArrayEquals(b, hint.bias(), 0.0);
    }

    /** Xavier (Glorot) normal initialization: standard deviation sqrt(2 / (Ds + Dt)), zero bias. */
    @Test
    void theRegressorStartsXavierInitialized() {
        int ds = 301;
        int dt = 199;
        HintLoss hint = new HintLoss(ds, dt, 1e-3, 13);
        double[] w = hint.weights();
        double sum = 0;
        double sq = 0;
        for (double x : w) {
            sum += x;
            sq += x * x;
        }
        double mean = sum / w.length;
        double sd = Math.sqrt(sq / w.length - mean * mean);
        double expected = Math.sqrt(2.0 / (ds + dt));
        // 59899 draws: the sample deviation is within 1% of the true one with overwhelming probability (its own sd is 0.3%)
        assertEquals(expected, sd, 0.01 * expected);
        assertEquals(0, mean, 0.02 * expected);
        assertArrayEquals(new double[dt], hint.bias(), 0.0);
    }

    @Test
    void sizesAndBatchesOfOtherSizesAreRefusedNamingThem() {
        for (int[] bad : new int[][]{{0, 3}, {3, 0}, {-1, 3}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new HintLoss(bad[0], bad[1], 1e-3, 0));
            assertEquals("hint sizes must be > 0, got student " + bad[0] + ", teacher " + bad[1], e.getMessage());
        }
        assertEquals(2, new HintLoss(1, 1, 1e-3, 0).parameterCount(), "one value each way: one weight and one bias");
        HintLoss hint = new HintLoss(DS, DT, 1e-3, 0);
        assertEquals("hint", hint.name());
        Random rng = new Random(73);
        FeatureBatch teacherTooWide = FeatureBatch.of(N, Inputs.logits(rng, N, DS, 1), new int[]{DS}, Inputs.logits(rng, N, DT + 1, 1),
                new int[]{DT + 1});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> hint.compute(teacherTooWide, new float[N * DS], UP));
        assertEquals("hint regressor maps 7 student values to 5 teacher values, but the batch has 7 and 6 per sample", e.getMessage());
        FeatureBatch studentTooNarrow = FeatureBatch.of(N, Inputs.logits(rng, N, DS - 1, 1), new int[]{DS - 1}, Inputs.logits(rng, N, DT, 1),
                new int[]{DT});
        e = assertThrows(IllegalArgumentException.class, () -> hint.compute(studentTooNarrow, new float[N * (DS - 1)], UP));
        assertEquals("hint regressor maps 7 student values to 5 teacher values, but the batch has 6 and 5 per sample", e.getMessage());
        assertThrows(IllegalStateException.class, hint::step, "a refused compute leaves no gradient to step on");
        assertTrue(hint.settings().get("seed") instanceof Long);
    }
}
