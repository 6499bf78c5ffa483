package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Damaged and hostile {@code .npy} files, from the files NumPy itself wrote (src/test/resources/npy: float16/32/64, both
 * byte orders, format versions 1 to 3, int64 ids, a 3-axis array): truncated at every length, bytes changed at random,
 * the header's text edited (characters inserted, deleted, the shape's numbers set to extremes). Each either opens and
 * reads every row (the same rows, when the change hit no byte the reader reads) or is refused with a
 * {@link StoreFormatException} or an {@link IOException} naming the file; nothing else escapes, and nothing is allocated
 * for data the file does not hold. Seed: {@code -Ddistill.fuzz.seed}; cases: {@code -Ddistill.fuzz.cases}.
 */
class NpyFuzzTest {
    static final long SEED = Long.getLong("distill.fuzz.seed", 20261122L);
    static final int CASES = Integer.getInteger("distill.fuzz.cases", 100);
    static final List<String> FIXTURES = List.of("logits-f2.npy", "logits-f4.npy", "logits-f8.npy", "logits-be-f4.npy",
            "logits-v2-f4.npy", "logits-v3-f4.npy", "logits-3d-f4.npy", "ids-i8.npy");

    enum Outcome { SAME, OTHER, REFUSED }

    /** What an array holds, read whole: its rows as floats (integers converted). */
    static float[] read(NpyArray a) throws IOException {
        return a.isFloat() ? a.floats(0, Math.toIntExact(a.rows())) : toFloats(a.ints(0, Math.toIntExact(a.rows())));
    }

    static float[] toFloats(int[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = v[i];
        }
        return f;
    }

    /** Opens {@code bytes} as {@code file} and reads it whole: the valid rows, other rows, or a refusal naming the file. */
    static Outcome check(float[] valid, byte[] bytes, Path file, String what) throws IOException {
        Files.write(file, bytes);
        try (NpyArray a = NpyArray.open(file)) {
            if (a.rows() * a.cols() > 1 << 20) {
                return Outcome.OTHER; // the size was checked against the header: such a file holds these values
            }
            float[] got = read(a);
            if (Arrays.equals(valid, got)) {
                return Outcome.SAME;
            }
            return Outcome.OTHER;
        } catch (StoreFormatException | IOException e) {
            assertTrue(e.getMessage() != null && e.getMessage().contains(file.toString()),
                    what + ": the message does not name the file: " + e);
            return Outcome.REFUSED;
        } catch (RuntimeException | OutOfMemoryError e) {
            throw new AssertionError(what + ": " + e + " escaped", e);
        }
    }

    @Test
    void everyTruncationIsRefusedNamingTheFile(@TempDir Path tmp) throws Exception {
        for (String name : FIXTURES) {
            byte[] bytes = Files.readAllBytes(NpyArrayTest.resource(name));
            float[] valid;
            try (NpyArray a = NpyArray.open(NpyArrayTest.resource(name))) {
                valid = read(a);
            }
            Path file = tmp.resolve("cut-" + name);
            for (int len = 0; len < bytes.length; len++) {
                assertEquals(Outcome.REFUSED, check(valid, Arrays.copyOf(bytes, len), file, name + " cut to " + len + " bytes"));
            }
            assertEquals(Outcome.REFUSED, check(valid, Arrays.copyOf(bytes, bytes.length + 1), file, name + " with a byte appended"));
        }
    }

    @Test
    void randomByteChangesAreReadOrRefused(@TempDir Path tmp) throws Exception {
        Random rnd = new Random(SEED);
        for (String name : FIXTURES) {
            byte[] bytes = Files.readAllBytes(NpyArrayTest.resource(name));
            float[] valid;
            try (NpyArray a = NpyArray.open(NpyArrayTest.resource(name))) {
                valid = read(a);
            }
            Path file = tmp.resolve("flip-" + name);
            for (int c = 0; c < CASES; c++) {
                byte[] b = bytes.clone();
                StringBuilder what = new StringBuilder(name + ", seed " + SEED + ", case " + c + ":");
                for (int j = 1 + rnd.nextInt(3); j > 0; j--) {
                    int at = rnd.nextBoolean() ? rnd.nextInt(Math.min(b.length, 128)) : rnd.nextInt(b.length); // the header often
                    int x = 1 + rnd.nextInt(255);
                    b[at] ^= (byte) x;
                    what.append(" byte ").append(at).append(" ^= ").append(x);
                }
                check(valid, b, file, what.toString());
            }
        }
    }

    @Test
    void editedHeadersAreReadOrRefused(@TempDir Path tmp) throws Exception {
        Random rnd = new Random(SEED);
        String[] dims = {"0", "1", "-1", "2147483647", "2147483648", "4294967296", "9223372036854775807", "9223372036854775808",
                "99999999999999999999999", "3037000500", "1e3", "0x10", "L", "", " ", ",", "()", "(1,)", "None", "True"};
        String[] descrs = {"<f4", "<f2", "<f8", ">f4", "|f4", "=f4", "<f1", "<f16", "<i8", "<u8", "<i1", "|u1", "<b1", "<c8",
                "<U4", "O", "", "'", "<f4'", "[('a', '<f4')]"};
        String[] inserts = {"{", "}", "(", ")", "'", "\"", ",", ":", " ", "\n", "\0", "\\", "é", "\uFFFF", "True", "descr",
                "'shape': (1, 2), ", "'descr': '<f4', "};
        Path file = tmp.resolve("edit.npy");
        float[] none = new float[0];
        for (int c = 0; c < CASES * 4; c++) {
            String descr = rnd.nextInt(3) == 0 ? descrs[rnd.nextInt(descrs.length)] : "<f4";
            String rows = rnd.nextInt(2) == 0 ? dims[rnd.nextInt(dims.length)] : "3";
            String cols = rnd.nextInt(2) == 0 ? dims[rnd.nextInt(dims.length)] : "5";
            String dict = "{'descr': '" + descr + "', 'fortran_order': " + (rnd.nextInt(8) == 0 ? "True" : "False") + ", 'shape': ("
                    + rows + ", " + cols + "), }";
            if (rnd.nextInt(3) == 0) {
                StringBuilder d = new StringBuilder(dict);
                for (int j = 1 + rnd.nextInt(3); j > 0; j--) {
                    int at = rnd.nextInt(d.length() + 1);
                    if (rnd.nextBoolean() && at < d.length()) {
                        d.delete(at, Math.min(d.length(), at + 1 + rnd.nextInt(4)));
                    } else {
                        d.insert(at, inserts[rnd.nextInt(inserts.length)]);
                    }
                }
                dict = d.toString();
            }
            int dataBytes = rnd.nextInt(4) == 0 ? rnd.nextInt(200) : 3 * 5 * 4;
            Path p = NpyArrayTest.writeData(tmp.resolve("src.npy"), dict.replaceAll("[^\\x00-\\x7f]", "?"), new byte[dataBytes]);
            byte[] b = Files.readAllBytes(p);
            if (!dict.chars().allMatch(ch -> ch < 0x80)) { // the header in UTF-8 (NumPy writes Latin-1 or ASCII)
                byte[] utf8 = dict.getBytes(StandardCharsets.UTF_8);
                b = Files.readAllBytes(NpyArrayTest.writeData(tmp.resolve("src.npy"), new String(utf8, StandardCharsets.ISO_8859_1)
                        .replaceAll("[^\\x00-\\x7f]", "~"), new byte[dataBytes]));
            }
            check(none, b, file, "seed " + SEED + ", case " + c + ": header " + dict + ", " + dataBytes + " data bytes");
        }
    }

    @Test
    void headerLengthFieldsAtExtremesAreRefusedBeforeAllocating(@TempDir Path tmp) throws Exception {
        Path file = tmp.resolve("len.npy");
        float[] none = new float[0];
        for (String name : List.of("logits-f4.npy", "logits-v2-f4.npy", "logits-v3-f4.npy")) {
            byte[] bytes = Files.readAllBytes(NpyArrayTest.resource(name));
            int width = bytes[6] == 1 ? 2 : 4;
            for (long v : new long[]{0, 1, 2, 9, 0x7fff, 0xffff, 0x10000, Integer.MAX_VALUE, 0xffffffffL, 0x80000000L}) {
                byte[] b = bytes.clone();
                for (int i = 0; i < width; i++) {
                    b[8 + i] = (byte) (v >>> (8 * i));
                }
                assertEquals(Outcome.REFUSED, check(none, b, file, name + " header length " + v));
            }
            for (int version : new int[]{0, 4, 255}) {
                byte[] b = bytes.clone();
                b[6] = (byte) version;
                assertEquals(Outcome.REFUSED, check(none, b, file, name + " format version " + version));
            }
        }
        assertArrayEquals(new float[0], none);
    }
}
