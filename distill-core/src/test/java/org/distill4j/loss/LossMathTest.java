package org.distill4j.loss;

import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link LossMath#exp} against e<sup>x</sup> computed in 60-digit decimal arithmetic and against
 * {@link StrictMath#exp}, over the whole double range and densest where the losses call it (x − max of a row, at most 0).
 */
class LossMathTest {
    /** The bounds the javadoc states: within 0.54 ulp of e^x, and so within 1 ulp of StrictMath.exp (itself within 1 ulp). */
    private static final double MAX_ULPS_EXACT = 0.54;
    private static final double MAX_ULPS_STRICT = 1.0;

    private static final MathContext MC = new MathContext(60, RoundingMode.HALF_EVEN);

    /** e^x to 60 digits: the Taylor series of e^(x / 2^16), squared 16 times. */
    static BigDecimal exactExp(double x) {
        BigDecimal y = new BigDecimal(x).divide(BigDecimal.valueOf(65536), MC);
        BigDecimal term = BigDecimal.ONE;
        BigDecimal sum = BigDecimal.ONE;
        for (int k = 1; k < 40; k++) {
            term = term.multiply(y, MC).divide(BigDecimal.valueOf(k), MC);
            sum = sum.add(term, MC);
        }
        for (int i = 0; i < 16; i++) {
            sum = sum.multiply(sum, MC);
        }
        return sum;
    }

    /** |got − want| in ulps of the double nearest {@code want}. */
    private static double ulpsFromExact(double got, BigDecimal want) {
        double nearest = want.doubleValue();
        return new BigDecimal(got).subtract(want, MC).abs().divide(new BigDecimal(Math.ulp(nearest)), MC).doubleValue();
    }

    private static double ulpsFrom(double got, double want) {
        return got == want ? 0 : Math.abs(got - want) / Math.ulp(want);
    }

    @Test
    void withinOneUlpOfTheExactValue() {
        Random rng = new Random(20261124);
        double worst = 0;
        double worstAt = Double.NaN;
        for (int i = 0; i < 3000; i++) {
            // a third over the whole computed range, the rest where the losses' arguments lie (x - max: at most 0)
            double x = i % 3 == 0 ? LossMath.LOW + (LossMath.HIGH - LossMath.LOW) * rng.nextDouble()
                    : -60 * rng.nextDouble() * rng.nextDouble() + (i % 3 == 1 ? 0 : rng.nextGaussian());
            double u = ulpsFromExact(LossMath.exp(x), exactExp(x));
            if (u > worst) {
                worst = u;
                worstAt = x;
            }
        }
        assertTrue(worst <= MAX_ULPS_EXACT, "exp(" + worstAt + ") is " + worst + " ulp from e^x, expected at most " + MAX_ULPS_EXACT);
    }

    @Test
    void withinOneUlpOfStrictMathEverywhere() {
        Random rng = new Random(7);
        for (int i = 0; i < 2_000_000; i++) {
            double x = i % 2 == 0 ? (rng.nextDouble() * 2 - 1) * 746 : -40 * rng.nextDouble();
            double got = LossMath.exp(x);
            double want = StrictMath.exp(x);
            assertTrue(ulpsFrom(got, want) <= MAX_ULPS_STRICT, () -> "exp(" + x + ") = " + got + ", StrictMath.exp gives " + want);
        }
    }

    /**
     * Where the table and the reduction switch: x a multiple of ln2/32 (r near 0, each table entry and the power of two
     * exact), halfway between two (|r| at its largest, either rounding of x · 32/ln2), and its neighbours.
     */
    @Test
    void reductionBoundariesAreAccurate() {
        double step = Math.log(2) / 32;
        for (int n = -32 * 40; n <= 32 * 40; n++) {
            for (double x : new double[]{n * step, (n + 0.5) * step}) {
                for (double y : new double[]{Math.nextDown(x), x, Math.nextUp(x)}) {
                    double u = ulpsFromExact(LossMath.exp(y), exactExp(y));
                    assertTrue(u <= MAX_ULPS_EXACT, "exp(" + y + ") is " + u + " ulp from e^x");
                }
            }
        }
        // the worst cases a 3e7-point sweep found for the degree-6 polynomial (0.558 and 0.556 ulp): |r| near ln2/64, j 26-31
        for (double x : new double[]{0x1.555bd66fb3ed8p9, 356.2018378345215}) {
            assertTrue(ulpsFromExact(LossMath.exp(x), exactExp(x)) <= MAX_ULPS_EXACT, "exp(" + x + ")");
        }
        // e^(k ln 2) for the double nearest k ln 2, computed path only: 2^k to within the ulp the argument's rounding moves it
        for (int k = -1021; k <= 1022; k += 7) {
            double x = k * Math.log(2);
            if (x >= LossMath.LOW && x <= LossMath.HIGH) {
                assertTrue(ulpsFromExact(LossMath.exp(x), exactExp(x)) <= MAX_ULPS_EXACT, "exp(" + x + ")");
            }
        }
    }

    @Test
    void edgesOfTheComputedRangeAndBeyond() {
        // at and just inside the computed range: the smallest and largest results it builds from exponent bits
        for (double x : new double[]{LossMath.LOW, Math.nextUp(LossMath.LOW), LossMath.HIGH, Math.nextDown(LossMath.HIGH)}) {
            double got = LossMath.exp(x);
            assertTrue(got >= Double.MIN_NORMAL && Double.isFinite(got), "exp(" + x + ") = " + got + ", expected a normal double");
            assertTrue(ulpsFromExact(got, exactExp(x)) <= MAX_ULPS_EXACT, "exp(" + x + ") = " + got);
        }
        // outside it StrictMath's own value, bit for bit: subnormal results, underflow, overflow
        for (double x : new double[]{Math.nextDown(LossMath.LOW), -708.5, -740, -745.13, -745.2, -1e4,
                Math.nextUp(LossMath.HIGH), 709.78, 709.79, 710, 1e4}) {
            assertEquals(Double.doubleToRawLongBits(StrictMath.exp(x)), Double.doubleToRawLongBits(LossMath.exp(x)), "exp(" + x + ")");
        }
        assertEquals(0.0, LossMath.exp(Double.NEGATIVE_INFINITY)); // a class of zero probability
        assertEquals(Double.POSITIVE_INFINITY, LossMath.exp(Double.POSITIVE_INFINITY));
        assertTrue(Double.isNaN(LossMath.exp(Double.NaN)));
        assertEquals(Double.POSITIVE_INFINITY, LossMath.exp(Double.MAX_VALUE));
        assertEquals(0.0, LossMath.exp(-Double.MAX_VALUE));
    }

    @Test
    void exactAtZeroAndOneUlpAroundIt() {
        assertEquals(1.0, LossMath.exp(0.0));
        assertEquals(1.0, LossMath.exp(-0.0));
        assertEquals(1.0, LossMath.exp(Double.MIN_VALUE));
        assertEquals(1.0, LossMath.exp(-Double.MIN_VALUE));
        for (double x : new double[]{1e-300, -1e-300, 1e-17, -1e-17, 0x1p-53, -0x1p-53, 1e-10, -1e-10}) {
            assertTrue(ulpsFromExact(LossMath.exp(x), exactExp(x)) <= MAX_ULPS_EXACT, "exp(" + x + ")");
        }
    }

    /** The reference itself, on values known to many digits, so the accuracy tests above cannot pass on a wrong one. */
    @Test
    void theDecimalReferenceIsRight() {
        assertEquals(0, exactExp(1).round(new MathContext(30)).compareTo(new BigDecimal("2.71828182845904523536028747135")));
        assertEquals(0, exactExp(-1).round(new MathContext(30)).compareTo(new BigDecimal("0.367879441171442321595523770161")));
        assertEquals(0, exactExp(10).round(new MathContext(30)).compareTo(new BigDecimal("22026.4657948067165169579006453")));
        assertEquals(0, exactExp(-700).round(new MathContext(20)).compareTo(new BigDecimal("9.8596765437597708567E-305")));
    }
}
