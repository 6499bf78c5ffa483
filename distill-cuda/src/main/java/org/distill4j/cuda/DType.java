package org.distill4j.cuda;

import org.distill4j.store.ValueCodec;

/** Element types of kernel inputs (and the gradient, written in the input's type). */
public enum DType {
    /** IEEE float32, 4 bytes per element; kernel name suffix {@code f32}. */
    F32("f32", 4),
    /** IEEE half precision, 2 bytes per element (round to nearest even); kernel name suffix {@code f16}. */
    F16("f16", 2),
    /** bfloat16, 2 bytes per element (round to nearest even); kernel name suffix {@code bf16}. */
    BF16("bf16", 2);

    private final String suffix;
    private final int bytes;

    DType(String suffix, int bytes) {
        this.suffix = suffix;
        this.bytes = bytes;
    }

    /** The kernel name suffix, e.g. {@code kd_block_bf16}. */
    public String suffix() {
        return suffix;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** Encodes floats as this type's little-endian bytes (round to nearest even for the half types). */
    byte[] encode(float[] x) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(x.length * bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float v : x) {
            switch (this) {
                case F32 -> b.putFloat(v);
                case F16 -> b.putShort(ValueCodec.toHalf(v));
                case BF16 -> b.putShort(ValueCodec.toBfloat16(v));
            }
        }
        return b.array();
    }

    /** Decodes this type's little-endian bytes into {@code out}. */
    void decode(byte[] bytesIn, float[] out) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(bytesIn).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (this) {
                case F32 -> b.getFloat();
                case F16 -> ValueCodec.fromHalf(b.getShort());
                case BF16 -> ValueCodec.fromBfloat16(b.getShort());
            };
        }
    }

    /** Each value rounded to this type and back (what a kernel reads from such an input). */
    public float[] round(float[] x) {
        float[] out = new float[x.length];
        decode(encode(x), out);
        return out;
    }
}
