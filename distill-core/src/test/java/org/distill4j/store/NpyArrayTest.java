package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The .npy reader against files written by NumPy itself (src/test/resources/npy/make-fixtures.py). */
class NpyArrayTest {
    /** What make-fixtures.py stores, computed the same way (float64, then rounded). */
    static double[] fixture() {
        double[] a = new double[35];
        for (int i = 0; i < a.length; i++) {
            a[i] = i * 0.37 - 5.1;
        }
        a[0] = 1e4;
        a[6] = -1e4;
        return a;
    }

    static Path resource(String name) throws Exception {
        return Path.of(NpyArrayTest.class.getResource("/npy/" + name).toURI());
    }

    @Test
    void readsWhatNumpyWrites() throws Exception {
        double[] expected = fixture();
        float[] f32 = new float[35];
        float[] f16 = new float[35];
        for (int i = 0; i < 35; i++) {
            f32[i] = (float) expected[i];
            f16[i] = ValueCodec.fromHalf(ValueCodec.toHalf(f32[i]));
        }
        for (String name : new String[]{"logits-f4.npy", "logits-be-f4.npy", "logits-v2-f4.npy", "logits-v3-f4.npy", "logits-f8.npy"}) {
            try (NpyArray a = NpyArray.open(resource(name))) {
                assertEquals(7, a.rows(), name);
                assertEquals(5, a.cols(), name);
                assertTrue(a.isFloat(), name);
                assertArrayEquals(f32, a.floats(0, 7), 0f, name);
                // a window in the middle: rows 2..4
                float[] mid = new float[15];
                System.arraycopy(f32, 10, mid, 0, 15);
                assertArrayEquals(mid, a.floats(2, 3), 0f, name);
            }
        }
        for (String name : new String[]{"logits-f2.npy", "logits-be-f2.npy"}) {
            try (NpyArray a = NpyArray.open(resource(name))) {
                assertArrayEquals(f16, a.floats(0, 7), 0f, name + ": float16 decoded exactly");
            }
        }
        try (NpyArray a = NpyArray.open(resource("logits-3d-f4.npy"))) {
            assertEquals(7, a.rows(), "leading axes flatten into rows");
            assertEquals("(1, 7, 5)", a.shapeText());
            assertArrayEquals(f32, a.floats(0, 7), 0f);
        }
        int[] ids = new int[21];
        for (int i = 0; i < 21; i++) {
            ids[i] = (i * 3) % 5;
        }
        for (String name : new String[]{"ids-i8.npy", "ids-u2.npy"}) {
            try (NpyArray a = NpyArray.open(resource(name))) {
                assertEquals(3, a.cols());
                assertArrayEquals(ids, a.ints(0, 7), name);
            }
        }
    }

    @Test
    void refusesWhatItCannotRead(@TempDir Path tmp) throws Exception {
        StoreFormatException e = assertThrows(StoreFormatException.class, () -> NpyArray.open(resource("logits-fortran-f4.npy")));
        assertTrue(e.getMessage().contains("logits-fortran-f4.npy: a Fortran-order array") && e.getMessage().contains("ascontiguousarray"),
                e.getMessage());
        e = assertThrows(StoreFormatException.class, () -> NpyArray.open(resource("vector-f4.npy")));
        assertTrue(e.getMessage().contains("shape (5,), expected rows x values"), e.getMessage());
        try (NpyArray a = NpyArray.open(resource("logits-f4.npy"))) {
            e = assertThrows(StoreFormatException.class, () -> a.ints(0, 1));
            assertTrue(e.getMessage().contains("dtype '<f4' holds floats; expected integer class ids"), e.getMessage());
        }

        Path text = Files.writeString(tmp.resolve("logits.csv"), "1,2,3\n");
        e = assertThrows(StoreFormatException.class, () -> NpyArray.open(text));
        assertTrue(e.getMessage().contains("logits.csv: not a NumPy .npy file"), e.getMessage());

        byte[] whole = Files.readAllBytes(resource("logits-f4.npy"));
        Path cut = tmp.resolve("cut.npy");
        Files.write(cut, java.util.Arrays.copyOf(whole, whole.length - 4));
        e = assertThrows(StoreFormatException.class, () -> NpyArray.open(cut));
        assertTrue(e.getMessage().contains("cut.npy: truncated: shape (7, 5) of <f4 needs 140 bytes of data, the file holds 136"),
                e.getMessage());

        Path complex = write(tmp.resolve("complex.npy"), "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 2), }", 32);
        e = assertThrows(StoreFormatException.class, () -> NpyArray.open(complex));
        assertTrue(e.getMessage().contains("dtype '<c8', expected float16/32/64 or an integer type"), e.getMessage());

        Path structured = write(tmp.resolve("rec.npy"), "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 2), }", 16);
        e = assertThrows(StoreFormatException.class, () -> NpyArray.open(structured));
        assertTrue(e.getMessage().contains("a structured array"), e.getMessage());

        Path garbled = write(tmp.resolve("garbled.npy"), "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 2), }", 16);
        e = assertThrows(StoreFormatException.class, () -> NpyArray.open(garbled));
        assertTrue(e.getMessage().contains("garbled.npy: malformed .npy header at character") && e.getMessage().contains("True or False"),
                e.getMessage());

        Path longer = tmp.resolve("longer.npy");
        Files.write(longer, java.util.Arrays.copyOf(whole, whole.length + 8));
        e = assertThrows(StoreFormatException.class, () -> NpyArray.open(longer));
        assertTrue(e.getMessage().contains("longer.npy: bytes after the array (several arrays in one file? save one per file): "
                + "shape (7, 5) of <f4 needs 140 bytes of data, the file holds 148"), e.getMessage());

        Path trailing = write(tmp.resolve("trailing.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), } x", 16);
        e = assertThrows(StoreFormatException.class, () -> NpyArray.open(trailing));
        assertTrue(e.getMessage().contains("trailing.npy: text after the .npy header's closing brace"), e.getMessage());

        Path huge = write(tmp.resolve("huge.npy"),
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }", 0);
        e = assertThrows(StoreFormatException.class, () -> NpyArray.open(huge));
        assertTrue(e.getMessage().contains("huge.npy: shape (4294967296, 4294967296, 2) has more than 2^63 rows"), e.getMessage());

        Path empty = write(tmp.resolve("empty.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", 0);
        e = assertThrows(StoreFormatException.class, () -> NpyArray.open(empty));
        assertTrue(e.getMessage().contains("the last axis must hold 1 to"), e.getMessage());
    }

    @Test
    void float64BeyondFloat32IsNamed(@TempDir Path tmp) throws Exception {
        ByteBuffer data = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        data.putDouble(1.5).putDouble(-2).putDouble(1e39).putDouble(Double.NEGATIVE_INFINITY);
        Path p = writeData(tmp.resolve("wide.npy"), "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", data.array());
        try (NpyArray a = NpyArray.open(p)) {
            assertArrayEquals(new float[]{1.5f, -2f}, a.floats(0, 1), 0f);
            StoreFormatException e = assertThrows(StoreFormatException.class, () -> a.floats(1, 1));
            assertTrue(e.getMessage().contains("wide.npy: row 1, position 0 holds 1.0E39, beyond the float32 range"), e.getMessage());
        }
        ByteBuffer u = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        u.putLong(4).putLong(-1L); // 2^64 - 1 as uint64
        Path big = writeData(tmp.resolve("u8.npy"), "{'descr': '<u8', 'fortran_order': False, 'shape': (1, 2), }", u.array());
        try (NpyArray a = NpyArray.open(big)) {
            StoreFormatException e = assertThrows(StoreFormatException.class, () -> a.ints(0, 1));
            assertTrue(e.getMessage().contains("row 0, position 1 holds 18446744073709551615, outside the int range"), e.getMessage());
        }
    }

    @Test
    void integerOutsideTheIntRangeIsNamed(@TempDir Path tmp) throws Exception {
        ByteBuffer data = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        data.putLong(1).putLong(2).putLong(3).putLong(1L << 40);
        Path p = writeData(tmp.resolve("big.npy"), "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", data.array());
        try (NpyArray a = NpyArray.open(p)) {
            assertArrayEquals(new int[]{1, 2}, a.ints(0, 1));
            StoreFormatException e = assertThrows(StoreFormatException.class, () -> a.ints(1, 1));
            assertTrue(e.getMessage().contains("row 1, position 1 holds 1099511627776, outside the int range"), e.getMessage());
        }
    }

    /**
     * Every integer dtype the reader claims (1 to 8 bytes, signed and unsigned, little- and big-endian, '|' for one
     * byte), on random values and each type's extremes, against the values as written: those in the int range read
     * exactly, the first outside it is named. Float64 in either byte order, with NaN, infinities, -0 and subnormals.
     */
    @Test
    void everyIntegerDtypeInEitherByteOrderReadsExactly(@TempDir Path tmp) throws Exception {
        java.util.Random rng = new java.util.Random(17);
        for (char kind : new char[]{'i', 'u'}) {
            for (int bytes : new int[]{1, 2, 4, 8}) {
                for (char endian : bytes == 1 ? new char[]{'|', '<', '>'} : new char[]{'<', '>'}) {
                    java.math.BigInteger lo = kind == 'u' ? java.math.BigInteger.ZERO : java.math.BigInteger.ONE.shiftLeft(8 * bytes - 1).negate();
                    java.math.BigInteger hi = (kind == 'u' ? java.math.BigInteger.ONE.shiftLeft(8 * bytes)
                            : java.math.BigInteger.ONE.shiftLeft(8 * bytes - 1)).subtract(java.math.BigInteger.ONE);
                    int rows = 9;
                    int cols = 3;
                    java.math.BigInteger[] v = new java.math.BigInteger[rows * cols];
                    for (int i = 0; i < v.length; i++) {
                        java.math.BigInteger span = hi.subtract(lo).add(java.math.BigInteger.ONE);
                        v[i] = lo.add(new java.math.BigInteger(8 * bytes + 8, rng).mod(span));
                    }
                    v[0] = lo;
                    v[1] = hi;
                    v[2] = java.math.BigInteger.ZERO;
                    ByteBuffer data = ByteBuffer.allocate(v.length * bytes).order(endian == '>' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN);
                    for (java.math.BigInteger x : v) {
                        long bits = x.longValue(); // two's complement: the low 8 * bytes bits are the stored pattern
                        switch (bytes) {
                            case 1 -> data.put((byte) bits);
                            case 2 -> data.putShort((short) bits);
                            case 4 -> data.putInt((int) bits);
                            default -> data.putLong(bits);
                        }
                    }
                    String descr = "" + endian + kind + bytes;
                    Path p = writeData(tmp.resolve(kind + "" + bytes + (endian == '>' ? "be" : "le") + ".npy"),
                            "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + rows + ", " + cols + "), }", data.array());
                    try (NpyArray a = NpyArray.open(p)) {
                        assertEquals(descr, a.descr());
                        for (int r = 0; r < rows; r++) {
                            int bad = -1;
                            for (int c = 0; c < cols && bad < 0; c++) {
                                bad = v[r * cols + c].bitLength() > 31 ? c : -1;
                            }
                            int row = r;
                            if (bad < 0) {
                                int[] got = a.ints(r, 1);
                                for (int c = 0; c < cols; c++) {
                                    assertEquals(v[r * cols + c].intValueExact(), got[c], descr + " row " + r + ", position " + c);
                                }
                            } else {
                                StoreFormatException e = assertThrows(StoreFormatException.class, () -> a.ints(row, 1), descr);
                                assertTrue(e.getMessage().contains("row " + r + ", position " + bad + " holds " + v[r * cols + bad]
                                        + ", outside the int range"), descr + ": " + e.getMessage());
                            }
                        }
                    }
                }
            }
        }
        double[] wide = {0.1, -0.0, Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 1e-40, -3.4e38, 123456.789};
        for (ByteOrder order : new ByteOrder[]{ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN}) {
            ByteBuffer data = ByteBuffer.allocate(wide.length * 8).order(order);
            for (double d : wide) {
                data.putDouble(d);
            }
            String descr = (order == ByteOrder.BIG_ENDIAN ? ">" : "<") + "f8";
            Path p = writeData(tmp.resolve("f8" + order + ".npy"), "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (2, 4), }",
                    data.array());
            try (NpyArray a = NpyArray.open(p)) {
                float[] got = a.floats(0, 2);
                for (int i = 0; i < wide.length; i++) {
                    assertEquals(Float.floatToIntBits((float) wide[i]), Float.floatToIntBits(got[i]), descr + " " + wide[i]);
                }
            }
        }
    }

    /** A version 1.0 .npy file with {@code dict} as its header and {@code dataBytes} zero bytes of data. */
    static Path write(Path p, String dict, int dataBytes) throws IOException {
        return writeData(p, dict, new byte[dataBytes]);
    }

    static Path writeData(Path p, String dict, byte[] data) throws IOException {
        byte[] h = dict.getBytes(StandardCharsets.US_ASCII);
        int pad = 64 - (10 + h.length + 1) % 64;
        ByteBuffer b = ByteBuffer.allocate(10 + h.length + pad + 1 + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0);
        b.putShort((short) (h.length + pad + 1)).put(h);
        for (int i = 0; i < pad; i++) {
            b.put((byte) ' ');
        }
        b.put((byte) '\n').put(data);
        Files.write(p, b.array());
        return p;
    }

    /** A C-order float32 .npy of {@code rows x cols}. */
    static Path writeF32(Path p, float[] v, long... shape) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            b.putFloat(x);
        }
        return writeData(p, "{'descr': '<f4', 'fortran_order': False, 'shape': " + tuple(shape) + ", }", b.array());
    }

    /** A C-order int64 .npy. */
    static Path writeI64(Path p, int[] v, long... shape) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(v.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (int x : v) {
            b.putLong(x);
        }
        return writeData(p, "{'descr': '<i8', 'fortran_order': False, 'shape': " + tuple(shape) + ", }", b.array());
    }

    private static String tuple(long[] shape) {
        StringBuilder s = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            s.append(i == 0 ? "" : ", ").append(shape[i]);
        }
        return s.append(shape.length == 1 ? ",)" : ")").toString();
    }
}
