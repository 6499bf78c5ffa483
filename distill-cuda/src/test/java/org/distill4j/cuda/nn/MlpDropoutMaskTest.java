package org.distill4j.cuda.nn;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java mirror of the engine's dropout on its own: the factor a kept unit is scaled by (the reference and the
 * host runner both take it from here, so a wrong one would agree with itself everywhere on the CPU), the keep rate,
 * and the edge of the keep rule.
 */
class MlpDropoutMaskTest {
    /** fp32 against the float64 1 / (1 - p): the kernel's fp32 division, two roundings at most. */
    private static final double SCALE_REL = 2.5e-7;

    /** The scale is the inverted-dropout factor 1 / (1 - p), computed in fp32 as the kernels do ({@code 1.f / (1.f - p)}). */
    @Test
    void aKeptUnitIsScaledByOneOverTheKeepProbability() {
        Random rng = new Random(20261123);
        assertEquals(1f, MlpDropoutMask.scale(0f), "no dropout, no scaling");
        assertEquals(2f, MlpDropoutMask.scale(0.5f));
        for (int t = 0; t < 1000; t++) {
            float p = (float) (rng.nextDouble() * 0.97);
            float s = MlpDropoutMask.scale(p);
            double want = 1 / (1 - (double) p);
            assertEquals(want, s, want * SCALE_REL, "p = " + p);
            assertEquals(Float.floatToIntBits(1f / (1f - p)), Float.floatToIntBits(s), "the kernel's fp32 arithmetic, p = " + p);
        }
    }

    /**
     * Over an odd number of units the keep rate is 1 - p within five standard deviations, and the mean of
     * {@code keep * scale} is 1 (inverted dropout leaves the expected activation as it was), for each layer's stream.
     */
    @Test
    void theMasksKeepOneMinusPOfTheUnitsAndPreserveTheMean() {
        int n = 200_003;
        for (float p : new float[] {0.1f, 0.3f, 0.5f, 0.8f}) {
            for (int layer = 0; layer < 3; layer++) {
                boolean[] m = MlpDropoutMask.mask(977, 4, layer, n, p);
                int kept = 0;
                for (boolean k : m) {
                    kept += k ? 1 : 0;
                }
                double q = 1 - (double) p;
                double sigma = Math.sqrt(n * q * (1 - q));
                assertEquals(n * q, kept, 5 * sigma, "p = " + p + ", layer " + layer + ": units kept");
                double mean = kept * (double) MlpDropoutMask.scale(p) / n;
                assertEquals(1.0, mean, 5 * sigma / (n * q), "p = " + p + ", layer " + layer + ": mean of keep * scale");
            }
        }
    }

    /**
     * Runs seeded s and s + 1 draw unrelated masks: seed s + 1's mask at step k is not seed s's at step k + 1 (with the
     * step seed runSeed + step they were the same), nor at step k, and within a run consecutive steps differ too. Over
     * 4,099 units at p = 0.5 two unrelated masks agree on about half of them; the same mask on all.
     */
    @Test
    void consecutiveRunSeedsDrawUnrelatedMasks() {
        int n = 4099;
        float p = 0.5f;
        for (long s : new long[] {0, 1, 2, 41, -1, Long.MAX_VALUE}) {
            for (long k : new long[] {0, 1, 7, 1000}) {
                boolean[] next = MlpDropoutMask.mask(s + 1, k, 1, n, p);
                for (boolean[] other : new boolean[][] {MlpDropoutMask.mask(s, k + 1, 1, n, p), MlpDropoutMask.mask(s, k, 1, n, p),
                        MlpDropoutMask.mask(s + 1, k + 1, 1, n, p)}) {
                    int same = 0;
                    for (int i = 0; i < n; i++) {
                        same += next[i] == other[i] ? 1 : 0;
                    }
                    double sigma = Math.sqrt(n * 0.25);
                    assertEquals(n / 2.0, same, 6 * sigma, "seed " + (s + 1) + " step " + k + " against another (seed, step): units alike");
                }
            }
        }
    }

    /**
     * A unit is kept when its draw is at least the drop probability: with p = 0 every unit is kept, also one whose 24
     * random bits are all zero (a draw of exactly 0, found by searching the stream: 1 in 2^24).
     */
    @Test
    void aDrawEqualToTheDropProbabilityKeepsItsUnit() {
        long seed = 3;
        long found = -1;
        for (long i = 0; i < (1L << 28) && found < 0; i++) {
            if (!MlpDropoutMask.keep(seed, 0, i, Float.MIN_VALUE)) {
                found = i; // a draw below the smallest positive float: exactly 0
            }
        }
        assertTrue(found >= 0, "a draw of 0 within 2^28 elements of seed " + seed);
        assertTrue(MlpDropoutMask.keep(seed, 0, found, 0f), "element " + found + ": a draw of 0 at p = 0 is kept");
    }
}
