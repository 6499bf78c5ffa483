package org.distill4j.store;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

import static org.distill4j.store.NpyArrayTest.write;
import static org.distill4j.store.NpyArrayTest.writeData;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The .npy reader at its edges: byte orders, the rows and positions its errors name, the file CRC, its own limits. */
class NpyArrayEdgesTest {
    private static final String TAIL = "', 'fortran_order': False, 'shape': (3, 5), }";

    private static byte[] encode(ByteOrder order, int itemBytes, boolean isFloat, double[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * itemBytes).order(order);
        for (double x : v) {
            switch (itemBytes) {
                case 1 -> b.put((byte) x);
                case 2 -> b.putShort(isFloat ? ValueCodec.toHalf((float) x) : (short) x);
                case 4 -> {
                    if (isFloat) {
                        b.putFloat((float) x);
                    } else {
                        b.putInt((int) x);
                    }
                }
                default -> {
                    if (isFloat) {
                        b.putDouble(x);
                    } else {
                        b.putLong((long) x);
                    }
                }
            }
        }
        return b.array();
    }

    /** Every byte-order mark NumPy writes ('<', '>', '=' native, '|' for single bytes), for floats and integers. */
    @Test
    void everyByteOrderReadsTheSameValues(@TempDir Path tmp) throws IOException {
        Random rng = new Random(91);
        double[] v = new double[15];
        for (int i = 0; i < v.length; i++) {
            v[i] = rng.nextInt(200) - 100; // integers: exact in every dtype below
        }
        float[] want = new float[15];
        for (int i = 0; i < 15; i++) {
            want[i] = (float) v[i];
        }
        int n = 0;
        for (String descr : new String[]{"<f2", ">f2", "=f2", "<f4", ">f4", "=f4", ">f8", "=f8", "<i2", ">i2", "=i4", ">i8", "|i1"}) {
            ByteOrder order = descr.charAt(0) == '>' ? ByteOrder.BIG_ENDIAN : descr.charAt(0) == '<' ? ByteOrder.LITTLE_ENDIAN
                    : ByteOrder.nativeOrder();
            int bytes = descr.charAt(2) - '0';
            Path p = writeData(tmp.resolve("a" + n++ + ".npy"), "{'descr': '" + descr + TAIL, encode(order, bytes, descr.charAt(1) == 'f', v));
            try (NpyArray a = NpyArray.open(p)) {
                assertArrayEquals(want, a.floats(0, 3), 0f, descr);
                assertEquals(descr.charAt(1) == 'f', a.isFloat(), descr);
                if (descr.charAt(1) == 'i') {
                    int[] ints = a.ints(1, 2);
                    for (int i = 0; i < 10; i++) {
                        assertEquals((int) v[5 + i], ints[i], descr);
                    }
                }
            }
        }
    }

    /** A value that does not fit is named by its row (counting from the first row read) and its position in the row. */
    @Test
    void aValueThatDoesNotFitIsNamedByRowAndPosition(@TempDir Path tmp) throws IOException {
        double[] v = new double[15];
        Arrays.fill(v, 1);
        v[2 * 5 + 3] = 1e300;
        Path f = writeData(tmp.resolve("f.npy"), "{'descr': '<f8" + TAIL, encode(ByteOrder.LITTLE_ENDIAN, 8, true, v));
        v[2 * 5 + 3] = 1L << 40;
        Path i = writeData(tmp.resolve("i.npy"), "{'descr': '<i8" + TAIL, encode(ByteOrder.LITTLE_ENDIAN, 8, false, v));
        try (NpyArray a = NpyArray.open(f); NpyArray b = NpyArray.open(i)) {
            StoreFormatException e = assertThrows(StoreFormatException.class, () -> a.floats(1, 2));
            assertEquals(f + ": row 2, position 3 holds 1.0E300, beyond the float32 range (+-3.4e38)", e.getMessage());
            e = assertThrows(StoreFormatException.class, () -> b.ints(1, 2));
            assertEquals(i + ": row 2, position 3 holds 1099511627776, outside the int range", e.getMessage());
            e = assertThrows(StoreFormatException.class, () -> a.ints(0, 1));
            assertEquals(f + ": dtype '<f8' holds floats; expected integer class ids", e.getMessage());
        }
    }

    /** uint64 values from 2^63 to 2^64 - 1 are floats of their own size, rounded to nearest, as for any other integer. */
    @Test
    void unsignedSixtyFourBitValuesAboveTwoToTheSixtyThreeAreReadAsThemselves(@TempDir Path tmp) throws IOException {
        long[] v = {0x8000000000000000L, 0xffffffffffffffffL, 0xc000000000000000L, 0x8000008000000001L, 0x8000008000000000L,
                0x7fffffffffffffffL, 12345, 0, 0xfedcba9876543210L, 0x8000018000000000L};
        ByteBuffer b = ByteBuffer.allocate(v.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (long x : v) {
            b.putLong(x);
        }
        Path p = writeData(tmp.resolve("u8.npy"), "{'descr': '<u8', 'fortran_order': False, 'shape': (2, 5), }", b.array());
        try (NpyArray a = NpyArray.open(p)) {
            float[] got = a.floats(0, 2);
            for (int i = 0; i < v.length; i++) {
                float want = new java.math.BigInteger(Long.toUnsignedString(v[i])).floatValue(); // exact, rounded once
                assertEquals(want, got[i], 0f, Long.toUnsignedString(v[i]));
            }
        }
    }

    /** The header's bytes and then every row's, through the CRC arguments, are the CRC32C of the whole file. */
    @Test
    void theCrcOfHeaderAndRowsIsTheFilesCrc(@TempDir Path tmp) throws IOException {
        double[] v = new double[15];
        for (int i = 0; i < 15; i++) {
            v[i] = i * 3 - 7;
        }
        for (String descr : new String[]{"<f4", "<i2"}) {
            Path p = writeData(tmp.resolve(descr.substring(1) + ".npy"), "{'descr': '" + descr + TAIL,
                    encode(ByteOrder.LITTLE_ENDIAN, descr.charAt(2) - '0', descr.charAt(1) == 'f', v));
            CRC32C want = new CRC32C();
            want.update(Files.readAllBytes(p));
            CRC32C got = new CRC32C();
            try (NpyArray a = NpyArray.open(p)) {
                assertEquals(p, a.path());
                a.crcHeader(got);
                if (a.isFloat()) {
                    a.floats(0, 2, got);
                    a.floats(2, 1, got);
                } else {
                    a.ints(0, 1, got);
                    a.ints(1, 2, got);
                }
            }
            assertEquals(want.getValue(), got.getValue(), descr);
        }
    }

    @Test
    void rowsOutsideTheArrayAreNamed(@TempDir Path tmp) throws IOException {
        Path p = write(tmp.resolve("r.npy"), "{'descr': '<f4" + TAIL, 60);
        try (NpyArray a = NpyArray.open(p)) {
            assertEquals(5, a.floats(2, 1).length);
            assertEquals(0, a.floats(3, 0).length);
            for (long[] c : new long[][]{{-1, 1}, {2, 2}, {3, 1}, {0, -1}, {0, 4}}) {
                IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> a.floats(c[0], (int) c[1]));
                assertEquals("rows [" + c[0] + ", " + (c[0] + c[1]) + ") of 3 in " + p, e.getMessage());
            }
        }
    }

    /** A read of more than 2 GB at once is refused before anything is allocated (a sparse file of 3 GiB). */
    @Test
    void aReadOfMoreThanTwoGigabytesIsRefused(@TempDir Path tmp) throws IOException {
        Path p = write(tmp.resolve("big.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 268435456), }", 0);
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(f.length() + 3L * (1L << 30));
        }
        try (NpyArray a = NpyArray.open(p)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.floats(0, 2));
            assertEquals("2 rows of 1073741824 bytes exceed 2 GB; read fewer at a time", e.getMessage());
        }
    }

    @Test
    void headersTheReaderRefusesAreNamed(@TempDir Path tmp) throws IOException {
        String[][] cases = {
                {"{'descr': '<f1" + TAIL, "dtype '<f1', expected float16/32/64 or an integer type"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", "shape (3, 0): the last axis must hold 1 to 2147483639 values"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2147483640), }", "shape (1, 2147483640): the last axis must hold"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2147483639), }", "truncated: shape (1, 2147483639) of <f4 needs"},
                {"{'descr': '<f4', 'shape': (3, 5), }", "the .npy header lacks descr, fortran_order or shape"},
                {"{'descr': '<f4', 'fortran_order': False, }", "the .npy header lacks descr, fortran_order or shape"},
                {"{'fortran_order': False, 'shape': (3, 5), }", "the .npy header lacks descr, fortran_order or shape"},
                {"{'descr': '<f4', 'fortran_order': False 'shape': (3, 5)}", "malformed .npy header at character 40: expected ','"},
                {"{descr: '<f4'}", "malformed .npy header at character 1: expected a quoted string"},
                {"{'descr': '<f4', 'shape", "expected a closing quote"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, x), }", "expected a dimension in"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 99999999999999999999), }", "expected a dimension below 2^63"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (3 5), }", "expected ','"},
                {"{'descr':", "expected a quoted string"},
                {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5", "expected ','"},
        };
        for (String[] c : cases) {
            Path p = write(tmp.resolve("h.npy"), c[0], 60);
            StoreFormatException e = assertThrows(StoreFormatException.class, () -> NpyArray.open(p), c[0]);
            assertTrue(e.getMessage().startsWith(p + ": ") && e.getMessage().contains(c[1]), c[0] + " -> " + e.getMessage());
        }
        // no comma before the closing brace, and Python's other quotes: the same header
        for (String dict : new String[]{"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1)}",
                "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3, 1), }"}) {
            Path ok = write(tmp.resolve("ok.npy"), dict, 12);
            try (NpyArray a = NpyArray.open(ok)) {
                assertEquals(1, a.cols(), dict);
                assertEquals(3, a.rows(), dict);
            }
        }
    }

    /** Sizes around the header's own: a version, a header length that exactly fills the file, one byte more or fewer of data. */
    @Test
    void sizesAroundTheHeaderAndTheData(@TempDir Path tmp) throws IOException {
        Path p = write(tmp.resolve("s.npy"), "{'descr': '<f4" + TAIL, 60);
        byte[] good = Files.readAllBytes(p);
        byte[] v4 = good.clone();
        v4[6] = 4;
        v4[7] = 1;
        Files.write(p, v4);
        assertMessage(p, ".npy format version 4.1, expected 1.0, 2.0 or 3.0");
        byte[] v2 = Arrays.copyOf(good, 10);
        v2[6] = 2;
        Files.write(p, v2);
        assertMessage(p, "truncated .npy header (10 bytes)");
        Files.write(p, Arrays.copyOf(good, 9));
        assertMessage(p, "truncated .npy header (9 bytes)");
        Files.write(p, Arrays.copyOf(good, 10)); // version 1: its header length is there, its header not
        assertMessage(p, ".npy header of " + (good.length - 70) + " bytes in a file of 10 bytes: truncated");
        byte[] empty = good.clone();
        empty[8] = 0;
        empty[9] = 0;
        Files.write(p, empty);
        assertMessage(p, "malformed .npy header at character 0: expected '{'");
        // the header fills the file exactly: a header read whole, and no data
        int headerLength = good.length - 60 - 10;
        Files.write(p, Arrays.copyOf(good, good.length - 60));
        assertMessage(p, "truncated: shape (3, 5) of <f4 needs 60 bytes of data, the file holds 0");
        Files.write(p, Arrays.copyOf(good, good.length - 61));
        assertMessage(p, ".npy header of " + headerLength + " bytes in a file of " + (good.length - 61) + " bytes: truncated");
        Files.write(p, Arrays.copyOf(good, good.length - 1));
        assertMessage(p, "truncated: shape (3, 5) of <f4 needs 60 bytes of data, the file holds 59");
        Files.write(p, Arrays.copyOf(good, good.length + 1));
        assertMessage(p, "bytes after the array (several arrays in one file? save one per file): shape (3, 5) of <f4 needs 60 bytes "
                + "of data, the file holds 61");
    }

    /** A version 2 header may take up to 65,536 bytes; one byte more is refused before it is read. */
    @Test
    void theLongestHeaderIsRead(@TempDir Path tmp) throws IOException {
        for (int length : new int[]{1 << 16, (1 << 16) + 1}) {
            String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }";
            byte[] h = (dict + " ".repeat(length - dict.length() - 1) + "\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            ByteBuffer b = ByteBuffer.allocate(12 + h.length + 60).order(ByteOrder.LITTLE_ENDIAN);
            b.put((byte) 0x93).put("NUMPY".getBytes(java.nio.charset.StandardCharsets.US_ASCII)).put((byte) 2).put((byte) 0);
            b.putInt(h.length).put(h);
            Path p = Files.write(tmp.resolve("v2-" + length + ".npy"), b.array());
            if (length == 1 << 16) {
                try (NpyArray a = NpyArray.open(p)) {
                    assertEquals(3, a.rows());
                }
            } else {
                assertMessage(p, ".npy header of 65537 bytes in a file of " + b.capacity() + " bytes: truncated or not a plain array");
            }
        }
    }

    private static void assertMessage(Path p, String message) {
        StoreFormatException e = assertThrows(StoreFormatException.class, () -> NpyArray.open(p), message);
        assertTrue(e.getMessage().startsWith(p + ": " + message), e.getMessage());
    }

    private static long openOn(Path p) throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).equals(p.toAbsolutePath());
                } catch (IOException e) {
                    return false;
                }
            }).count();
        }
    }

    /** A refused file is closed at once, an opened one when it is closed. */
    @Test
    void noFileIsLeftOpen(@TempDir Path tmp) throws IOException {
        Assumptions.assumeTrue(Files.isDirectory(Path.of("/proc/self/fd")), "needs /proc/self/fd");
        Path bad = write(tmp.resolve("bad.npy"), "{'descr': '<f1" + TAIL, 60);
        for (int i = 0; i < 3; i++) {
            assertThrows(StoreFormatException.class, () -> NpyArray.open(bad));
        }
        assertEquals(0, openOn(bad));
        Path good = write(tmp.resolve("good.npy"), "{'descr': '<f4" + TAIL, 60);
        NpyArray a = NpyArray.open(good);
        assertEquals(1, openOn(good));
        a.close();
        assertEquals(0, openOn(good));
        assertFalse(Files.isDirectory(good));
    }
}
