package org.distill4j.store;

import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ValueCodecTest {

    /** The exact value of every half pattern, from its definition. */
    static double halfValue(int bits) {
        int sign = (bits >>> 15) & 1;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        double v = exp == 0 ? mant * Math.pow(2, -24) : (1 + mant / 1024.0) * Math.pow(2, exp - 15);
        return sign == 1 ? -v : v;
    }

    @Test
    void everyFiniteHalfRoundTripsExactly() {
        for (int bits = 0; bits < 0x10000; bits++) {
            int exp = (bits >>> 10) & 0x1f;
            if (exp == 0x1f) {
                continue;
            }
            float f = ValueCodec.fromHalf((short) bits);
            assertEquals(halfValue(bits), f, 0.0, "pattern " + Integer.toHexString(bits));
            if (bits != 0x8000) {
                assertEquals(bits, ValueCodec.toHalf(f) & 0xffff, "re-encode " + Integer.toHexString(bits));
            }
        }
        assertEquals(Float.POSITIVE_INFINITY, ValueCodec.fromHalf(ValueCodec.toHalf(1e6f)));
        assertTrue(Float.isNaN(ValueCodec.fromHalf(ValueCodec.toHalf(Float.NaN))));
        assertEquals(0f, ValueCodec.fromHalf(ValueCodec.toHalf(1e-9f)));
    }

    @Test
    void halfRoundsToTheNearestRepresentableValue() {
        Random rng = new Random(1);
        for (int i = 0; i < 200_000; i++) {
            float f = (float) (rng.nextGaussian() * Math.pow(10, rng.nextInt(9) - 6));
            float h = ValueCodec.fromHalf(ValueCodec.toHalf(f));
            // no half value lies strictly closer to f than h does
            int bits = ValueCodec.toHalf(f) & 0xffff;
            for (int d : new int[]{-1, 1}) {
                int nb = bits + d;
                if ((nb & 0x7c00) == 0x7c00 || nb < 0 || nb > 0xffff || ((nb ^ bits) & 0x8000) != 0) {
                    continue;
                }
                double other = halfValue(nb);
                assertTrue(Math.abs(other - f) >= Math.abs(h - (double) f), f + " -> " + h + " but " + other + " is closer");
            }
        }
    }

    /** The exact value of a bfloat16 pattern, from its definition (8 exponent bits, bias 127, 7 mantissa bits). */
    static double bfloat16Value(int bits) {
        int sign = (bits >>> 15) & 1;
        int exp = (bits >>> 7) & 0xff;
        int mant = bits & 0x7f;
        double v = exp == 0 ? mant * Math.pow(2, -133) : (1 + mant / 128.0) * Math.pow(2, exp - 127);
        return sign == 1 ? -v : v;
    }

    /**
     * Every finite pattern of both 16-bit codecs decodes to its exact value and encodes back (-0 included, subnormals
     * included); infinities and NaN stay what they are; and every midpoint between two neighbours rounds to the even one,
     * a float just off it to the nearer one, the midpoint above the largest finite value to infinity.
     */
    @Test
    void everyPatternAndEveryMidpointOfBothHalfCodecsAgainstTheDefinition() {
        for (boolean bf : new boolean[]{false, true}) {
            int expMask = bf ? 0x7f80 : 0x7c00;
            for (int bits = 0; bits < 0x10000; bits++) {
                short h = (short) bits;
                float f = bf ? ValueCodec.fromBfloat16(h) : ValueCodec.fromHalf(h);
                int back = (bf ? ValueCodec.toBfloat16(f) : ValueCodec.toHalf(f)) & 0xffff;
                String what = (bf ? "bf16 " : "f16 ") + Integer.toHexString(bits);
                if ((bits & expMask) == expMask) {
                    boolean nan = (bits & ~expMask & 0x7fff) != 0;
                    assertEquals(nan, Float.isNaN(f), what);
                    if (nan) {
                        assertTrue((back & expMask) == expMask && (back & ~expMask & 0x7fff) != 0, what + " stays NaN");
                    } else {
                        assertEquals(bits, back, what + " stays infinite");
                        assertEquals((bits & 0x8000) != 0 ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY, f, 0f, what);
                    }
                    continue;
                }
                assertEquals(bf ? bfloat16Value(bits) : halfValue(bits), f, 0.0, what);
                assertEquals(bits, back, what + " encodes back, -0 keeping its sign");
                // the midpoint to the next pattern away from zero (f32 holds it exactly: 16-bit formats have fewer mantissa
                // bits); past the largest finite value, the next is the value one step further, and it rounds to infinity
                int next = bits + 1;
                double a = bf ? bfloat16Value(bits) : halfValue(bits);
                double b;
                if ((next & expMask) == expMask) {
                    double step = Math.abs(a) - Math.abs(bf ? bfloat16Value(bits - 1) : halfValue(bits - 1));
                    b = a + Math.copySign(step, a);
                } else {
                    b = bf ? bfloat16Value(next) : halfValue(next);
                }
                float mid = (float) ((a + b) / 2);
                assertEquals((a + b) / 2, mid, 0.0, what + ": midpoint exact in f32");
                int even = (bits & 1) == 0 ? bits : next;
                int midBits = (bf ? ValueCodec.toBfloat16(mid) : ValueCodec.toHalf(mid)) & 0xffff;
                assertEquals(even, midBits, what + ": midpoint " + mid + " rounds to the even neighbour");
                float towardA = Math.nextDown(Math.abs(mid)) * Math.signum(mid);
                float towardB = Math.nextUp(Math.abs(mid)) * Math.signum(mid);
                assertEquals(bits, (bf ? ValueCodec.toBfloat16(towardA) : ValueCodec.toHalf(towardA)) & 0xffff, what + " below the midpoint");
                assertEquals(next, (bf ? ValueCodec.toBfloat16(towardB) : ValueCodec.toHalf(towardB)) & 0xffff, what + " above the midpoint");
            }
        }
    }

    @Test
    void bfloat16KeepsTheExponentAndRoundsTheMantissa() {
        Random rng = new Random(2);
        for (int i = 0; i < 100_000; i++) {
            float f = (float) (rng.nextGaussian() * Math.pow(10, rng.nextInt(60) - 30));
            float b = ValueCodec.fromBfloat16(ValueCodec.toBfloat16(f));
            assertTrue(Math.abs(b - f) <= Math.abs(f) * 0x1p-8, f + " -> " + b);
        }
        assertEquals(1.0f, ValueCodec.fromBfloat16(ValueCodec.toBfloat16(1.0f)));
        assertEquals(new BigDecimal("1.0078125").floatValue(), ValueCodec.fromBfloat16(ValueCodec.toBfloat16(1.0078125f)));
        assertTrue(Float.isNaN(ValueCodec.fromBfloat16(ValueCodec.toBfloat16(Float.NaN))));
    }

    /**
     * Every NaN stays NaN in bf16, whatever its payload: rounding the float's bits as for a number carries a NaN whose
     * payload is only in the low 16 bits into the exponent (+Infinity), or past the sign bit (+0 from 0xffffffff).
     */
    @Test
    void everyNanPatternStaysNanInBfloat16() {
        for (int bits : new int[]{0x7f800001, 0x7f807fff, 0x7f808000, 0x7fc00000, 0x7fffffff, 0xff800001, 0xffc00000, 0xffffffff}) {
            float nan = Float.intBitsToFloat(bits);
            assertTrue(Float.isNaN(nan), Integer.toHexString(bits));
            assertTrue(Float.isNaN(ValueCodec.fromBfloat16(ValueCodec.toBfloat16(nan))), Integer.toHexString(bits) + " in bf16");
            assertTrue(Float.isNaN(ValueCodec.fromHalf(ValueCodec.toHalf(nan))), Integer.toHexString(bits) + " in f16");
            assertEquals(bits >>> 31, (ValueCodec.toBfloat16(nan) & 0xffff) >>> 15, Integer.toHexString(bits) + ": sign kept");
        }
    }

    /** The dtype names a recipe or a command line may give, and the header codes, both ways; anything else named in the error. */
    @Test
    void dtypeNamesAndHeaderCodes() {
        String[][] names = {{"f32", "float32", "float", " F32 "}, {"f16", "float16", "half", "F16"}, {"bf16", "bfloat16", "BF16\n"}};
        ValueCodec[] codecs = {ValueCodec.F32, ValueCodec.F16, ValueCodec.BF16};
        for (int c = 0; c < codecs.length; c++) {
            for (String name : names[c]) {
                assertEquals(codecs[c], ValueCodec.parse(name), name);
            }
            assertEquals(codecs[c], ValueCodec.fromCode(codecs[c].code(), "x.d4j"));
            assertEquals(c == 0 ? 4 : 2, codecs[c].bytes());
        }
        assertEquals(0, ValueCodec.F32.code());
        assertEquals(1, ValueCodec.F16.code());
        assertEquals(2, ValueCodec.BF16.code());
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> ValueCodec.parse("fp8"));
        assertEquals("value dtype must be f32, f16 or bf16, got 'fp8'", e.getMessage());
        e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> ValueCodec.fromCode(3, "x.d4j"));
        assertEquals("x.d4j: unknown value dtype code 3, expected 0 (f32), 1 (f16) or 2 (bf16)", e.getMessage());
    }
}
