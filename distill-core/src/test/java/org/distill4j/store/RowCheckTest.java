package org.distill4j.store;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * {@link RowCheck} on encoded chunks of several rows, with the bad value anywhere in a row (first class, last class,
 * after -Infinity), every NaN pattern, and the largest finite values of each dtype, whose exponent bits are nearly all set.
 */
class RowCheckTest {
    private static final int V = 7;
    private static final int ROWS = 5;
    private static final long FIRST = 40;

    private static StoreHeader dense(ValueCodec codec) {
        return SoftTargetStoreTest.dense(codec, V, 100, ROWS);
    }

    /** {@code ROWS x V} random finite values of the dtype, encoded. */
    private static ByteBuffer rows(ValueCodec codec, long seed) {
        Random rng = new Random(seed);
        ByteBuffer b = ByteBuffer.allocate(ROWS * V * codec.bytes() + 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < ROWS * V; i++) {
            codec.put(b, i * codec.bytes(), (float) (5 * rng.nextGaussian()));
        }
        return b;
    }

    private static void putBits(ValueCodec codec, ByteBuffer b, int row, int cls, int bits) {
        int at = (row * V + cls) * codec.bytes();
        if (codec == ValueCodec.F32) {
            b.putInt(at, bits);
        } else {
            b.putShort(at, (short) bits);
        }
    }

    @Test
    void denseRowsRefuseEveryNanAndPlusInfinityWhereverTheyAre() {
        // per dtype: +Infinity, NaNs (quiet, lowest payload, negative, negative next to -Infinity's pattern), -Infinity
        int[][] bad = {
                {0x7f800000, 0x7fc00000, 0x7f800001, 0xffc00000, 0xff800001, 0xffffffff},
                {0x7c00, 0x7e00, 0x7c01, 0xfe00, 0xfc01, 0xffff},
                {0x7f80, 0x7fc0, 0x7f81, 0xffc0, 0xff81, 0xffff},
        };
        int[] minusInfinity = {0xff800000, 0xfc00, 0xff80};
        ValueCodec[] codecs = {ValueCodec.F32, ValueCodec.F16, ValueCodec.BF16};
        for (int c = 0; c < codecs.length; c++) {
            ValueCodec codec = codecs[c];
            StoreHeader h = dense(codec);
            assertNull(RowCheck.check(h, rows(codec, c), ROWS, FIRST), codec + ": finite rows");
            for (int pattern : bad[c]) {
                for (int cls : new int[]{0, 3, V - 1}) {
                    ByteBuffer b = rows(codec, c);
                    putBits(codec, b, 1, 0, minusInfinity[c]); // zero mass before it in another row
                    putBits(codec, b, 3, cls, pattern);
                    if (cls > 0) {
                        putBits(codec, b, 3, cls - 1, minusInfinity[c]);
                    }
                    String what = codec + " " + Integer.toHexString(pattern) + " at class " + cls;
                    float value = codec.get(b, (3 * V + cls) * codec.bytes());
                    assertEquals("row 43, class " + cls + " is " + value + ", expected a finite value, or -Infinity for a class of "
                            + "zero probability", RowCheck.check(h, b, ROWS, FIRST), what);
                }
            }
            ByteBuffer b = rows(codec, c);
            for (int cls = 0; cls < V; cls++) {
                putBits(codec, b, 2, cls, minusInfinity[c]);
            }
            assertEquals("row 42: every value is -Infinity (no class has probability); expected at least one finite value",
                    RowCheck.check(h, b, ROWS, FIRST), codec + "");
            putBits(codec, b, 2, V - 1, 0);
            assertNull(RowCheck.check(h, b, ROWS, FIRST), codec + ": one finite value is enough");
        }
    }

    /** The largest finite values of each dtype, positive and negative, and subnormals, are values like any other. */
    @Test
    void denseRowsAcceptTheExtremesOfEachDtype() {
        int[][] extremes = {
                {0x7f7fffff, 0xff7fffff, 0x7f000000, 0x00000001, 0x80000001, 0x80000000},
                {0x7bff, 0xfbff, 0x7800, 0x0001, 0x8001, 0x8000},
                {0x7f7f, 0xff7f, 0x7c00, 0x7e00, 0x0001, 0x8000}, // bf16 0x7c00 = 2^121, 0x7e00 = 2^125: finite
        };
        ValueCodec[] codecs = {ValueCodec.F32, ValueCodec.F16, ValueCodec.BF16};
        for (int c = 0; c < codecs.length; c++) {
            ValueCodec codec = codecs[c];
            ByteBuffer b = rows(codec, 10 + c);
            for (int r = 0; r < ROWS; r++) {
                for (int j = 0; j < extremes[c].length; j++) {
                    putBits(codec, b, r, (r + j) % V, extremes[c][j]);
                }
            }
            for (int r = 0; r < ROWS; r++) {
                for (int j = 0; j < V; j++) {
                    float x = codec.get(b, (r * V + j) * codec.bytes());
                    assertEquals(true, Float.isFinite(x), codec + " row " + r + " class " + j + " = " + x);
                }
            }
            assertNull(RowCheck.check(dense(codec), b, ROWS, FIRST), codec + "");
        }
    }

    private static final int K = 3;

    /** Top-k rows of 3-byte ids (V = 70,000) and f16 values, each row {@code ids[r]} with log-probabilities {@code lps[r]}. */
    private static ByteBuffer topK(StoreHeader h, int[][] ids, float[][] lps) {
        int rowBytes = (int) h.rowBytes();
        ByteBuffer b = ByteBuffer.allocate(ids.length * rowBytes + 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < ids.length; r++) {
            for (int j = 0; j < K; j++) {
                for (int x = 0; x < h.idBytes(); x++) {
                    b.put(r * rowBytes + j * h.idBytes() + x, (byte) (ids[r][j] >>> (8 * x)));
                }
                h.codec().put(b, r * rowBytes + K * h.idBytes() + j * h.codec().bytes(), lps[r][j]);
            }
        }
        return b;
    }

    @Test
    void topKRowsAreCheckedEachAtItsOwnBytes() {
        StoreHeader h = SoftTargetStoreTest.topk(70_000, K, 100, 4);
        assertEquals(3, h.idBytes());
        int[][] ids = {{69_999, 0, 12}, {5, 6, 7}, {300, 65_536, 70}, {8, 9, 10}};
        // each row's probabilities sum to at most 1, row 2's to 1.0092 (within the tolerance)
        float[][] lps = {{-0.1f, -5, -103.27893f}, {-1.2f, -1.2f, -1.2f}, {0, -5, -6}, {-1.2f, -1.5f, -2}};
        assertNull(RowCheck.check(h, topK(h, ids, lps), 4, FIRST));
        record Case(int row, int entry, int id, float lp, String message) {
        }
        for (Case c : new Case[]{
                new Case(2, 1, 70_000, -0.5f, "row 42, entry 1: class id 70000 is outside [0, 70000)"),
                new Case(3, 2, 1 << 23, -0.4f, "row 43, entry 2: class id 8388608 is outside [0, 70000)"),
                new Case(1, 2, 5, -1, "row 41 repeats class 5; the ids of a row must be distinct"),
                new Case(3, 0, 9, -0.2f, "row 43 repeats class 9; the ids of a row must be distinct"),
                new Case(2, 2, 70, 0.5f, "row 42, entry 2 (class 70) is 0.5, expected a finite log-probability <= 0 (a zero "
                        + "probability is stored as log(Float.MIN_VALUE))"),
                new Case(3, 1, 9, 1e-4f, "row 43, entry 1 (class 9) is 1.00016594E-4, expected a finite log-probability <= 0"),
                new Case(1, 0, 5, Float.NaN, "row 41, entry 0 (class 5) is NaN, expected a finite log-probability <= 0"),
                new Case(1, 1, 6, Float.NEGATIVE_INFINITY, "row 41, entry 1 (class 6) is -Infinity, expected a finite log-probability <= 0"),
                new Case(2, 1, 65_536, -0.001f, "row 42: the entries' probabilities sum to 2.0015, expected at most 1 (they are not "
                        + "log-probabilities of one distribution)"),
        }) {
            int[][] i = deepCopy(ids);
            float[][] l = {lps[0].clone(), lps[1].clone(), lps[2].clone(), lps[3].clone()};
            i[c.row()][c.entry()] = c.id();
            l[c.row()][c.entry()] = c.lp();
            String got = RowCheck.check(h, topK(h, i, l), 4, FIRST);
            assertEquals(true, got != null && got.startsWith(c.message()), c.message() + " <- " + got);
        }
        // 5e-5 above 0, as stored in f16, is rounding training accepts
        float[][] l = {lps[0].clone(), lps[1], lps[2], lps[3]};
        l[0][0] = 5e-5f;
        assertNull(RowCheck.check(h, topK(h, ids, l), 4, FIRST));
    }

    private static int[][] deepCopy(int[][] a) {
        int[][] c = new int[a.length][];
        for (int i = 0; i < a.length; i++) {
            c[i] = a[i].clone();
        }
        return c;
    }
}
