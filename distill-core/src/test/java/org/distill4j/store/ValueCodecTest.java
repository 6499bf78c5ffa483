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
}
