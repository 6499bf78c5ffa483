package org.distill4j.data;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Mixup: each row is the float64 mix of itself and its partner, rounded once; mixed rows lose their labels, the others
 * keep input and label; the input batch is not changed; the weights follow Beta(alpha, alpha) (mean, variance, and the
 * uniform case's quartiles over many draws, with a fixed seed); the chance of mixing is the probability; the same
 * generator gives the same batch; bad settings are named.
 */
class MixupTest {
    private static final int ROWS = 37;
    private static final int D = 13;

    static Batch batch(Random rng) {
        float[] x = new float[ROWS * D];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (3 * rng.nextGaussian() + 1);
        }
        int[] y = new int[ROWS];
        int[] idx = new int[ROWS];
        for (int r = 0; r < ROWS; r++) {
            y[r] = rng.nextInt(10);
            idx[r] = 1000 + 7 * r;
        }
        y[4] = Dataset.UNLABELED;
        return new Batch(idx, x, D, y);
    }

    @Test
    void eachRowIsTheMixOfItselfAndItsPartnerAndMixedRowsLoseTheirLabels() {
        Random data = new Random(11);
        for (double p : new double[]{1.0, 0.6}) {
            Mixup m = new Mixup(0.4, p);
            Batch b = batch(data);
            float[] before = b.features().clone();
            int[] labelsBefore = b.labels().clone();
            Batch out = m.apply(b, new Random(99));
            Mixup.Draws draws = m.draw(ROWS, new Random(99)); // the same draws, in the same order
            assertArrayEquals(before, b.features(), "the input batch is not changed");
            assertArrayEquals(labelsBefore, b.labels());
            assertArrayEquals(b.indices(), out.indices(), "indices kept");
            assertEquals(D, out.featureCount());
            int mixed = 0;
            for (int r = 0; r < ROWS; r++) {
                int j = draws.partner()[r];
                double l = draws.lambda()[r];
                assertTrue(l >= 0 && l <= 1, "weight " + l);
                for (int i = 0; i < D; i++) {
                    float expected = j == r ? b.features()[r * D + i]
                            : (float) (l * (double) b.features()[r * D + i] + (1 - l) * (double) b.features()[j * D + i]);
                    assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(out.features()[r * D + i]),
                            "p " + p + ", row " + r + " (partner " + j + ", lambda " + l + "), feature " + i);
                }
                assertEquals(j == r ? b.labels()[r] : Dataset.UNLABELED, out.labels()[r], "row " + r + "'s label");
                mixed += j == r ? 0 : 1;
            }
            assertTrue(mixed > (p == 1 ? ROWS - 4 : 10) && (p == 1 || mixed < ROWS - 4), "p " + p + ": " + mixed + " rows mixed");
        }
    }

    @Test
    void theWeightsFollowBetaAlphaAlpha() {
        for (double alpha : new double[]{0.05, 0.2, 1.0, 4.0}) {
            Random rng = new Random(1234);
            int n = 200_000;
            double sum = 0;
            double sq = 0;
            double[] draws = new double[n];
            for (int i = 0; i < n; i++) {
                double l = Mixup.beta(alpha, rng);
                assertTrue(l >= 0 && l <= 1 && !Double.isNaN(l), "alpha " + alpha + ": " + l);
                draws[i] = l;
                sum += l;
                sq += l * l;
            }
            double mean = sum / n;
            double var = sq / n - mean * mean;
            double expectedVar = 1 / (4 * (2 * alpha + 1)); // Beta(a, a): a^2 / ((2a)^2 (2a + 1))
            // standard errors at n = 200,000: the mean's below 0.0012, the variance's below 0.001
            assertEquals(0.5, mean, 0.005, "alpha " + alpha + " mean");
            assertEquals(expectedVar, var, 0.004, "alpha " + alpha + " variance");
            if (alpha == 1.0) {
                Arrays.sort(draws);
                assertEquals(0.25, draws[n / 4], 0.005, "uniform: first quartile");
                assertEquals(0.75, draws[3 * n / 4], 0.005, "uniform: third quartile");
            }
        }
    }

    @Test
    void theSameGeneratorGivesTheSameBatchAndAnotherAnother() {
        Batch b = batch(new Random(5));
        Mixup m = new Mixup(1.0, 1.0);
        Batch a1 = m.apply(b, new Random(42));
        Batch a2 = m.apply(b, new Random(42));
        assertArrayEquals(a1.features(), a2.features());
        assertArrayEquals(a1.labels(), a2.labels());
        assertNotEquals(Arrays.hashCode(a1.features()), Arrays.hashCode(m.apply(b, new Random(43)).features()));
        assertEquals("mixup(alpha=1.0, probability=1.0)", m.describe());
        assertEquals(m.describe(), Augmentation.mixup(1.0).describe());
    }

    @Test
    void badSettingsAreNamed() {
        for (double a : new double[]{0, -1, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Mixup(a, 1));
            assertTrue(e.getMessage().startsWith("mixup alpha") && e.getMessage().contains(String.valueOf(a)), e.getMessage());
        }
        for (double p : new double[]{0, -0.1, 1.5, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Mixup(0.2, p));
            assertTrue(e.getMessage().startsWith("mixup probability") && e.getMessage().contains(String.valueOf(p)), e.getMessage());
        }
    }
}
