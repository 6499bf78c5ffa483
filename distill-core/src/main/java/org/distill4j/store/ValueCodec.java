package org.distill4j.store;

/**
 * How stored values are encoded: float32, IEEE half precision (f16) or bfloat16, all little-endian.
 * f16 and bf16 round to nearest, ties to even; f16 overflow gives infinity, tiny values go subnormal
 * then to zero. Used for dense teacher rows and for top-k log-probabilities.
 */
public enum ValueCodec {
    /** IEEE single precision, 4 bytes per value, exact for every float; header code 0. */
    F32(4, 0),
    /**
     * IEEE half precision, 2 bytes per value, 11 significant bits; the largest finite value is 65504, and a finite value
     * that rounds to an infinity here is refused by the store writer. Header code 1.
     */
    F16(2, 1),
    /** bfloat16, 2 bytes per value: about float32's range with 8 significant bits. Header code 2. */
    BF16(2, 2);

    private final int bytes;
    private final int code;

    ValueCodec(int bytes, int code) {
        this.bytes = bytes;
        this.code = code;
    }

    /** Bytes per value. */
    public int bytes() {
        return bytes;
    }

    /** The code written in the store header. */
    public int code() {
        return code;
    }

    /** The codec with the given header code. */
    public static ValueCodec fromCode(int code, String source) {
        for (ValueCodec c : values()) {
            if (c.code == code) {
                return c;
            }
        }
        throw new IllegalArgumentException(source + ": unknown value dtype code " + code + ", expected 0 (f32), 1 (f16) or 2 (bf16)");
    }

    /** Parses {@code f32}, {@code f16} or {@code bf16}. */
    public static ValueCodec parse(String s) {
        return switch (s.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "f32", "float32", "float" -> F32;
            case "f16", "float16", "half" -> F16;
            case "bf16", "bfloat16" -> BF16;
            default -> throw new IllegalArgumentException("value dtype must be f32, f16 or bf16, got '" + s + "'");
        };
    }

    /** The 16-bit pattern of {@code f} as IEEE half, rounded to nearest even. */
    public static short toHalf(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int exp = (bits >>> 23) & 0xff;
        int mant = bits & 0x7fffff;
        if (exp == 0xff) { // inf or NaN
            return (short) (sign | 0x7c00 | (mant != 0 ? 0x200 : 0));
        }
        int e = exp - 127 + 15;
        if (e >= 0x1f) {
            return (short) (sign | 0x7c00); // overflow
        }
        if (e <= 0) { // subnormal or zero
            if (e < -10) {
                return (short) sign;
            }
            mant |= 0x800000;
            int shift = 14 - e;
            int half = mant >>> shift;
            int rem = mant & ((1 << shift) - 1);
            int mid = 1 << (shift - 1);
            if (rem > mid || (rem == mid && (half & 1) != 0)) {
                half++;
            }
            return (short) (sign | half);
        }
        int half = (e << 10) | (mant >>> 13);
        int rem = mant & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) {
            half++; // may carry into the exponent, up to infinity: correct rounding
        }
        return (short) (sign | half);
    }

    /** The float value of an IEEE half bit pattern. */
    public static float fromHalf(short h) {
        int bits = h & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        if (exp == 0) {
            if (mant == 0) {
                return Float.intBitsToFloat(sign);
            }
            return (sign != 0 ? -1 : 1) * mant * 0x1p-24f; // subnormal
        }
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    /** The 16-bit bfloat16 pattern of {@code f}, rounded to nearest even (NaN stays NaN). */
    public static short toBfloat16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounding = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    /** The float value of a bfloat16 pattern. */
    public static float fromBfloat16(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    /** Writes {@code v} at {@code buf[off]} little-endian. */
    public void put(java.nio.ByteBuffer buf, int off, float v) {
        switch (this) {
            case F32 -> buf.putFloat(off, v);
            case F16 -> buf.putShort(off, toHalf(v));
            case BF16 -> buf.putShort(off, toBfloat16(v));
        }
    }

    /** Reads the value at {@code buf[off]}. */
    public float get(java.nio.ByteBuffer buf, int off) {
        return switch (this) {
            case F32 -> buf.getFloat(off);
            case F16 -> fromHalf(buf.getShort(off));
            case BF16 -> fromBfloat16(buf.getShort(off));
        };
    }
}
