package org.distill4j.cuda.nn;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine's oracle against a float64 derivation of its own: {@link MlpReference#backward} is the gradient of
 * {@code L = sum(g * logits)} (any upstream {@code g}), checked by central finite differences of
 * {@link MlpReference#forward} in every activation, with dropout masks on hidden inputs, on odd shapes.
 */
class MlpReferenceTest {
    /**
     * Central differences of the float64 forward with h of about 1e-6 (the float parameter moved by that, the actual step
     * taken as the divisor): truncation about h^2, cancellation about 1e-16 |L| / h, both far below this. So small a step
     * also keeps ReLU's kink out of reach: no pre-activation here lies within 1e-5 of zero.
     */
    private static final double FD_TOL = 1e-6;

    private static double loss(MlpSpec spec, MlpWeights w, float[] x, int rows, boolean[][] keep, float[] g) {
        double[] y = new MlpReference(spec, w).forward(x, rows, keep);
        double l = 0;
        for (int i = 0; i < y.length; i++) {
            l += g[i] * y[i];
        }
        return l;
    }

    @Test
    void backwardIsTheGradientOfTheForward() {
        Random rng = new Random(77);
        MlpSpec.Activation[] acts = MlpSpec.Activation.values();
        for (int ai = 0; ai < acts.length; ai++) {
            MlpSpec.Activation a = acts[ai];
            MlpSpec.Activation b = acts[(ai + 2) % acts.length];
            MlpSpec spec = new MlpSpec(7, List.of(new MlpSpec.Layer(7, 11, a, 0), new MlpSpec.Layer(11, 9, b, 0.3),
                    new MlpSpec.Layer(9, 5, MlpSpec.Activation.IDENTITY, 0.2)), MlpSpec.Optimizer.sgd(0.1));
            int rows = 3;
            float[][] ws = new float[3][];
            float[][] bs = new float[3][];
            for (int l = 0; l < 3; l++) {
                MlpSpec.Layer layer = spec.layers().get(l);
                ws[l] = Dl4jMlpTest.random(rng, layer.in() * layer.out());
                bs[l] = Dl4jMlpTest.random(rng, layer.out());
                for (int i = 0; i < ws[l].length; i++) {
                    ws[l][i] *= 0.6f;
                }
            }
            MlpWeights w = new MlpWeights(ws, bs);
            float[] x = Dl4jMlpTest.random(rng, rows * 7);
            boolean[][] keep = {null, MlpDropoutMask.mask(5, ai, 1, rows * 11L, 0.3f), MlpDropoutMask.mask(5, ai, 2, rows * 9L, 0.2f)};
            float[] g = Dl4jMlpTest.random(rng, rows * 5);
            for (int i = 0; i < g.length; i++) {
                g[i] *= 0.37f; // upstream != 1
            }
            MlpReference ref = new MlpReference(spec, w);
            ref.forward(x, rows, keep);
            double[][][] grads = ref.backward(g);
            double max = 0;
            double worst = 0;
            String where = "";
            for (int l = 0; l < 3; l++) {
                for (int kind = 0; kind < 2; kind++) {
                    float[] p = kind == 0 ? ws[l] : bs[l];
                    for (int i = 0; i < p.length; i++) {
                        float p0 = p[i];
                        float up = p0 + 1e-6f;
                        float down = p0 - 1e-6f;
                        p[i] = up;
                        double lu = loss(spec, w, x, rows, keep, g);
                        p[i] = down;
                        double ld = loss(spec, w, x, rows, keep, g);
                        p[i] = p0;
                        double fd = (lu - ld) / ((double) up - down);
                        double an = grads[kind][l][i];
                        max = Math.max(max, Math.abs(fd));
                        if (Math.abs(fd - an) > worst) {
                            worst = Math.abs(fd - an);
                            where = (kind == 0 ? "W" : "b") + l + "[" + i + "]: finite difference " + fd + ", backward " + an;
                        }
                    }
                }
            }
            assertTrue(max > 1e-2, a + "/" + b + ": a gradient that is not all zeros (" + max + ")");
            assertTrue(worst <= FD_TOL * Math.max(1, max), a + "/" + b + ": " + where);
        }
    }

    /** Misuse is named: backward before any forward, and an upstream gradient of the wrong shape. */
    @Test
    void backwardChecksWhatItIsGiven() {
        MlpSpec spec = new MlpSpec(3, List.of(new MlpSpec.Layer(3, 2, MlpSpec.Activation.IDENTITY, 0)), MlpSpec.Optimizer.sgd(0.1));
        MlpReference ref = new MlpReference(spec, new MlpWeights(new float[][] {{1, 2, 3, 4, 5, 6}}, new float[][] {{0.5f, -0.5f}}));
        IllegalStateException s = assertThrows(IllegalStateException.class, () -> ref.backward(new float[2]));
        assertTrue(s.getMessage().contains("forward"), s.getMessage());
        double[] y = ref.forward(new float[] {1, -1, 2, 0.5f, 0.25f, -2}, 2);
        assertEquals(1 * 1 - 1 * 3 + 2 * 5 + 0.5, y[0], 1e-12);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ref.backward(new float[3]));
        assertTrue(e.getMessage().contains("3 values, expected 2 x 2"), e.getMessage());
    }

    /** A batch, a dropout mask or resumed moments of the wrong shape are refused, naming what was expected. */
    @Test
    void forwardAndResumeCheckWhatTheyAreGiven() {
        MlpSpec spec = new MlpSpec(3, List.of(new MlpSpec.Layer(3, 2, MlpSpec.Activation.TANH, 0.25),
                new MlpSpec.Layer(2, 2, MlpSpec.Activation.IDENTITY, 0)), MlpSpec.Optimizer.adam(0.1));
        MlpWeights w = new MlpWeights(new float[][] {{1, 2, 3, 4, 5, 6}, {0.5f, -1, 2, 0.25f}}, new float[][] {{0.5f, -0.5f}, {1, 2}});
        MlpReference ref = new MlpReference(spec, w);
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> ref.forward(new float[5], 2));
        assertEquals("x has 5 values, expected 2 x 3", x.getMessage());
        IllegalArgumentException mask = assertThrows(IllegalArgumentException.class,
                () -> ref.forward(new float[] {1, -1, 2, 0.5f, 0.25f, -2}, 2, new boolean[][] {new boolean[4], null}));
        assertEquals("the mask of layer 0 has 4 entries, its input 6", mask.getMessage());
        MlpWeights other = new MlpWeights(new float[][] {{1, 2, 3, 4, 5, 6}}, new float[][] {{0.5f, -0.5f}});
        IllegalArgumentException moments = assertThrows(IllegalArgumentException.class,
                () -> ref.resume(new MlpOptimizerState(3, 1, other, other)));
        assertTrue(moments.getMessage().contains("weights for 1 layers, the spec has 2"), moments.getMessage());
        IllegalArgumentException v = assertThrows(IllegalArgumentException.class, () -> ref.resume(new MlpOptimizerState(3, 1, w, other)));
        assertTrue(v.getMessage().contains("weights for 1 layers, the spec has 2"), "v is checked too: " + v.getMessage());
        IllegalArgumentException m = assertThrows(IllegalArgumentException.class, () -> ref.resume(new MlpOptimizerState(3, 1, other, w)));
        assertTrue(m.getMessage().contains("weights for 1 layers, the spec has 2"), "m is checked: " + m.getMessage());
        assertEquals(0, ref.steps(), "a refused resume changes nothing");
        IllegalArgumentException weights = assertThrows(IllegalArgumentException.class, () -> new MlpReference(spec, other));
        assertTrue(weights.getMessage().contains("weights for 1 layers, the spec has 2"), weights.getMessage());
    }
}
