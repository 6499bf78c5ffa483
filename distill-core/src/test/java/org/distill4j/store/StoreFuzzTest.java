package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Damaged and hostile soft-target stores: valid stores written by {@link StoreWriter} (dense f32, f16, bf16; top-k with
 * 2-byte ids), then truncated at every length, bytes flipped at random, and header fields set to extremes with the
 * header's (and footer's) checksum recomputed, as a hostile file would have them. For every such file,
 * {@link SoftTargetStore#open} and reading every row either give exactly the rows written (the change hit bytes the
 * reader ignores) or throw a {@link StoreFormatException} naming the file; {@link SoftTargetStore#verify(Path)} throws
 * nothing and reports a problem for every file that cannot be read. Nothing else escapes: no index, buffer or
 * arithmetic exception, no allocation from a field the file does not back.
 *
 * <p>Reproducible: the seed is {@code -Ddistill.fuzz.seed} (default fixed), the random cases per store
 * {@code -Ddistill.fuzz.cases} (default small enough for the suite).
 */
class StoreFuzzTest {
    static final long SEED = Long.getLong("distill.fuzz.seed", 20261122L);
    static final int CASES = Integer.getInteger("distill.fuzz.cases", 200);

    /** A valid store and the rows it holds. */
    record Sample(String name, byte[] bytes, StoreHeader header, float[] dense, SoftTargetStore.TopKRows topK) {
    }

    static List<Sample> samples(Path dir) throws IOException {
        List<Sample> out = new ArrayList<>();
        Random rnd = new Random(7);
        int vocab = 7;
        int rows = 11;
        for (ValueCodec codec : ValueCodec.values()) {
            StoreHeader h = new StoreHeader(StoreHeader.Layout.DENSE, codec, StoreHeader.ValueKind.LOGITS, vocab, 0, rows, 4, 2.5,
                    "{\"teacher\": \"fuzz\", \"é\": \"ü\"}");
            float[] v = new float[rows * vocab];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (rnd.nextGaussian() * 3);
            }
            v[3] = Float.NEGATIVE_INFINITY;
            Path p = dir.resolve("dense-" + codec + ".d4j");
            try (StoreWriter w = StoreWriter.open(p, h)) {
                w.writeDense(v, rows);
                w.finish();
            }
            try (SoftTargetStore s = SoftTargetStore.open(p)) {
                out.add(new Sample("dense " + codec, Files.readAllBytes(p), h, s.dense(all(rows)), null));
            }
        }
        int k = 3;
        StoreHeader h = new StoreHeader(StoreHeader.Layout.TOP_K, ValueCodec.F16, StoreHeader.ValueKind.LOG_PROBS, 300, k, rows, 3, 1.0,
                "{\"teacher\": \"fuzz-topk\"}");
        int[] ids = new int[rows * k];
        float[] lps = new float[rows * k];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < k; j++) {
                ids[r * k + j] = (r * 37 + j * 101) % 300;
                lps[r * k + j] = -0.5f - j - rnd.nextFloat();
            }
        }
        Path p = dir.resolve("topk.d4j");
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeTopK(ids, lps, rows);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            out.add(new Sample("top-k f16", Files.readAllBytes(p), h, null, s.topK(all(rows))));
        }
        return out;
    }

    static int[] all(int rows) {
        int[] idx = new int[rows];
        for (int i = 0; i < rows; i++) {
            idx[i] = i;
        }
        return idx;
    }

    /** What reading a damaged file gave. */
    enum Outcome { SAME, REFUSED }

    /**
     * Writes {@code bytes} to {@code file}, opens and reads it whole, and checks the outcome: the valid rows, or a
     * StoreFormatException naming the file (and verify(path) reporting a problem). Anything else fails the test.
     */
    static Outcome check(Sample s, byte[] bytes, Path file, String what) throws IOException {
        return check(s, bytes, file, what, true);
    }

    /**
     * As {@link #check(Sample, byte[], Path, String)}; with {@code exact} false, a file that opens may hold other rows
     * than {@code s} (a hostile header with a valid checksum describes another valid store: f16 values read as bf16).
     */
    static Outcome check(Sample s, byte[] bytes, Path file, String what, boolean exact) throws IOException {
        Files.write(file, bytes);
        Outcome outcome;
        try (SoftTargetStore st = SoftTargetStore.open(file)) {
            if (!exact) {
                List<String> problems = st.verify(); // every chunk, reporting
                if (problems.isEmpty() && st.rows() <= 1 << 16) { // then every row is read as well
                    int[] idx = all((int) st.rows());
                    if (st.header().layout() == StoreHeader.Layout.DENSE) {
                        st.dense(idx);
                    } else {
                        st.topK(idx);
                    }
                }
                return problems.isEmpty() ? Outcome.SAME : Outcome.REFUSED;
            }
            int rows = Math.toIntExact(st.rows());
            if (rows != s.header.rows()) {
                fail(s.name + ", " + what + ": opened with " + rows + " rows, written with " + s.header.rows());
            }
            if (s.dense != null) {
                float[] got = st.dense(all(rows));
                assertArrayEquals(s.dense, got, 0f, s.name + ", " + what + ": a damaged store read as other values");
            } else {
                SoftTargetStore.TopKRows got = st.topK(all(rows));
                assertArrayEquals(s.topK.ids(), got.ids(), s.name + ", " + what + ": a damaged store read as other ids");
                assertArrayEquals(s.topK.logProbs(), got.logProbs(), 0f, s.name + ", " + what + ": a damaged store read as other values");
            }
            assertEquals(List.of(), st.verify(), s.name + ", " + what + ": rows read as written, but verify reports problems");
            outcome = Outcome.SAME;
        } catch (StoreFormatException e) {
            assertTrue(e.getMessage() != null && e.getMessage().contains(file.toString()),
                    s.name + ", " + what + ": the message does not name the file: " + e.getMessage());
            outcome = Outcome.REFUSED;
        } catch (RuntimeException | OutOfMemoryError e) {
            throw new AssertionError(s.name + ", " + what + ": " + e + " escaped", e);
        }
        List<String> problems;
        try {
            problems = SoftTargetStore.verify(file);
        } catch (RuntimeException | OutOfMemoryError e) {
            throw new AssertionError(s.name + ", " + what + ": verify(path) threw " + e, e);
        }
        if (outcome == Outcome.REFUSED) {
            assertTrue(!problems.isEmpty(), s.name + ", " + what + ": refused when read, but verify(path) finds no problem");
        }
        for (String problem : problems) {
            assertTrue(problem.contains(file.toString()), s.name + ", " + what + ": verify's message names no file: " + problem);
        }
        return outcome;
    }

    @Test
    void everyTruncationIsRefusedNamingTheFile(@TempDir Path tmp) throws IOException {
        for (Sample s : samples(tmp)) {
            Path file = tmp.resolve("cut.d4j");
            long dataOffset = s.header.dataOffset();
            for (int len = 0; len < s.bytes.length; len += len < 128 || len >= dataOffset - 8 ? 1 : 61) {
                // every length in the header and in the data; a sample of those in the zero padding between them
                assertEquals(Outcome.REFUSED, check(s, Arrays.copyOf(s.bytes, len), file, "cut to " + len + " bytes"));
            }
            byte[] longer = Arrays.copyOf(s.bytes, s.bytes.length + 1);
            assertEquals(Outcome.REFUSED, check(s, longer, file, "one byte appended"));
        }
    }

    @Test
    void randomByteChangesAreReadAsWrittenOrRefused(@TempDir Path tmp) throws IOException {
        Random rnd = new Random(SEED);
        for (Sample s : samples(tmp)) {
            Path file = tmp.resolve("flip.d4j");
            int refused = 0;
            for (int c = 0; c < CASES; c++) {
                byte[] b = s.bytes.clone();
                int changes = 1 + rnd.nextInt(4);
                StringBuilder what = new StringBuilder("seed " + SEED + ", case " + c + ":");
                for (int j = 0; j < changes; j++) {
                    // half the changes in the header, where every field is
                    int at = rnd.nextBoolean() ? rnd.nextInt(96) : rnd.nextInt(b.length);
                    int x = 1 + rnd.nextInt(255);
                    b[at] ^= (byte) x;
                    what.append(" byte ").append(at).append(" ^= ").append(x);
                }
                refused += check(s, b, file, what.toString()) == Outcome.REFUSED ? 1 : 0;
            }
            assertTrue(refused > CASES / 2, s.name + ": only " + refused + " of " + CASES + " damaged files refused");
        }
    }

    /** The header of {@code b} with its fields at {@code at} set to {@code value} ({@code width} bytes) and its CRC recomputed. */
    static byte[] withField(byte[] b, int at, int width, long value, boolean fixFooter) {
        byte[] out = b.clone();
        ByteBuffer bb = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        switch (width) {
            case 1 -> bb.put(at, (byte) value);
            case 2 -> bb.putShort(at, (short) value);
            case 4 -> bb.putInt(at, (int) value);
            default -> bb.putLong(at, value);
        }
        int prov = bb.getInt(StoreHeader.PROVENANCE_LENGTH_AT);
        int crcAt = StoreHeader.FIXED + Math.max(0, Math.min(prov, out.length - StoreHeader.FIXED - 4));
        if (crcAt + 4 <= out.length && prov >= 0 && StoreHeader.FIXED + (long) prov + 4 <= out.length) {
            bb.putInt(crcAt, Crc32c.of(out, 0, crcAt));
        }
        if (fixFooter && at == 24) { // the row count is in the footer too: a hostile file keeps them consistent
            int f = out.length - StoreFooter.BYTES;
            bb.put(f, StoreFooter.encode(value).array());
        }
        return out;
    }

    @Test
    void headerFieldsAtExtremesWithAValidChecksumAreRefusedBeforeAllocating(@TempDir Path tmp) throws IOException {
        long[] extremes = {0, -1, 1, 2, 3, 255, 65_535, 65_536, 1 << 24, Integer.MAX_VALUE, Integer.MIN_VALUE, 0xffffffffL,
                Long.MAX_VALUE, Long.MIN_VALUE, 1L << 31, 1L << 32, 1L << 40, (1L << 61) + 1, (1L << 62) + 1, Long.MAX_VALUE / 2};
        // offset, width: version, layout, dtype, value kind, id bytes, reserved, vocab, k, rows, chunk rows, reserved,
        // temperature (as bits), provenance length
        int[][] fields = {{8, 2}, {10, 1}, {11, 1}, {12, 1}, {13, 1}, {14, 2}, {16, 4}, {20, 4}, {24, 8}, {32, 4}, {36, 4},
                {40, 8}, {48, 4}};
        for (Sample s : samples(tmp)) {
            Path file = tmp.resolve("field.d4j");
            for (int[] f : fields) {
                for (long v : extremes) {
                    for (boolean footer : f[0] == 24 ? new boolean[]{false, true} : new boolean[]{false}) {
                        check(s, withField(s.bytes, f[0], f[1], v, footer), file,
                                "header byte " + f[0] + " (" + f[1] + " bytes) set to " + v + (footer ? ", footer too" : ""), false);
                    }
                }
            }
        }
    }

    /**
     * A hostile header whose row count times the chunk stride overflows a long, so that the size it computes wraps around
     * to the file's real size, with a footer of that row count: it is refused as a header no file can back, not opened
     * (the reader would size its tables by the row count: an ArithmeticException, or gigabytes).
     */
    @Test
    void aRowCountWhoseSizeOverflowsIsRefused(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("wrap.d4j");
        // dense f16, V = 2: rows of 4 bytes; chunkRows 1: stride 8; rows + 2^61 gives the same size modulo 2^64
        StoreHeader small = new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F16, StoreHeader.ValueKind.LOGITS, 2, 0, 3, 1, 1.0, "{}");
        Path p = tmp.resolve("small.d4j");
        try (StoreWriter w = StoreWriter.open(p, small)) {
            w.writeDense(new float[]{1, 2, 3, 4, 5, 6}, 3);
            w.finish();
        }
        byte[] valid = Files.readAllBytes(p);
        float[] rows;
        try (SoftTargetStore st = SoftTargetStore.open(p)) {
            rows = st.dense(all(3));
        }
        Sample smallSample = new Sample("dense f16 V=2", valid, small, rows, null);
        byte[] hostile = withField(valid, 24, 8, 3 + (1L << 61), true);
        assertEquals(Outcome.REFUSED, check(smallSample, hostile, file, "rows 2^61 + 3 (the size wraps to the file's)"));
    }

    /**
     * A header whose provenance is not UTF-8 (its checksum valid, as a hostile or foreign writer makes it) is refused: read
     * with replacement characters it would be another provenance than the file holds (a teacher id compared on resume),
     * and its re-encoded length would move the data offset the reader computes.
     */
    @Test
    void aProvenanceThatIsNotUtf8IsRefused(@TempDir Path tmp) throws IOException {
        StoreHeader h = new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F32, StoreHeader.ValueKind.LOGITS, 2, 0, 1, 1, 1.0,
                "{\"teacher\": \"ab\"}");
        Path p = tmp.resolve("prov.d4j");
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeDense(new float[]{1, 2}, 1);
            w.finish();
        }
        byte[] b = Files.readAllBytes(p);
        int at = StoreHeader.FIXED + "{\"teacher\": \"".length();
        b[at] = (byte) 0xff; // 'a' becomes a byte no UTF-8 text holds
        int crcAt = StoreHeader.FIXED + ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getInt(StoreHeader.PROVENANCE_LENGTH_AT);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(crcAt, Crc32c.of(b, 0, crcAt));
        Files.write(p, b);
        StoreFormatException e = org.junit.jupiter.api.Assertions.assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
        assertTrue(e.getMessage().startsWith(p + ": ") && e.getMessage().contains("provenance") && e.getMessage().contains("UTF-8"),
                e.getMessage());
    }
}
