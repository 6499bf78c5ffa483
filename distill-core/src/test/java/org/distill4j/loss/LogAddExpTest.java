package org.distill4j.loss;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@link TemperedDivergence#logAddExp}, the mixture log of gjsd, skew-kl and skew-rkl. */
class LogAddExpTest {
    /** The two-exp form it replaced, kept here as the bit-for-bit reference. */
    private static double twoExps(double a, double b) {
        if (a == Double.NEGATIVE_INFINITY) {
            return b;
        }
        if (b == Double.NEGATIVE_INFINITY) {
            return a;
        }
        double m = Math.max(a, b);
        return m + Math.log(LossMath.exp(a - m) + LossMath.exp(b - m));
    }

    @Test
    void sameBitsAsTheTwoExpForm() {
        Random rng = new Random(41);
        for (int k = 0; k < 2_000_000; k++) {
            // log-probabilities of a mixture's two parts: anywhere in [-800, 0], often close together
            double a = -800 * Math.pow(rng.nextDouble(), 3);
            double b = k % 3 == 0 ? a - rng.nextDouble() * 1e-6 : -800 * Math.pow(rng.nextDouble(), 3);
            if (k % 7 == 0) {
                b = a;
            }
            double want = twoExps(a, b);
            assertEquals(Double.doubleToRawLongBits(want), Double.doubleToRawLongBits(TemperedDivergence.logAddExp(a, b)),
                    "a=" + a + " b=" + b);
            assertEquals(Double.doubleToRawLongBits(want), Double.doubleToRawLongBits(TemperedDivergence.logAddExp(b, a)),
                    "b=" + b + " a=" + a);
        }
        double[] specials = {0.0, -0.0, -1e-300, Double.MIN_VALUE, -708, -709, -745, -746, -1e300, Double.NEGATIVE_INFINITY};
        for (double a : specials) {
            for (double b : specials) {
                assertEquals(Double.doubleToRawLongBits(twoExps(a, b)),
                        Double.doubleToRawLongBits(TemperedDivergence.logAddExp(a, b)), "a=" + a + " b=" + b);
            }
        }
    }

    @Test
    void matchesTheDefinitionInDouble() {
        Random rng = new Random(43);
        for (int k = 0; k < 100_000; k++) {
            double a = -30 * rng.nextDouble();
            double b = -30 * rng.nextDouble();
            double want = Math.log(Math.exp(a) + Math.exp(b));
            // log(1 + e) after rounding 1 + e: within 2^-52 absolute of the exact value, on top of a few ulps
            assertEquals(want, TemperedDivergence.logAddExp(a, b), 4 * Math.ulp(want) + 0x1p-52, "a=" + a + " b=" + b);
        }
        assertEquals(Math.log(2) - 3, TemperedDivergence.logAddExp(-3, -3), 1e-15);
        assertEquals(-5.0, TemperedDivergence.logAddExp(Double.NEGATIVE_INFINITY, -5), 0.0);
        assertEquals(Double.NEGATIVE_INFINITY, TemperedDivergence.logAddExp(Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY));
    }
}
