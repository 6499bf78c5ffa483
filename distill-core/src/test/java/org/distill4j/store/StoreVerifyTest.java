package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a store may hold and how its problems are reported: the writer, the reader and {@code verify} accept -Infinity in
 * dense rows (a class of zero probability) and refuse NaN, +Infinity and rows without a finite value, naming the file
 * and row; {@code verify} reports every problem of a file (truncated, a corrupt header, changed since it was opened,
 * bad values) as a message naming the file and chunk, and throws none.
 */
class StoreVerifyTest {
    static final float NEG = Float.NEGATIVE_INFINITY;

    static StoreHeader dense(ValueCodec codec, int vocab, long rows, int chunkRows) {
        return SoftTargetStoreTest.dense(codec, vocab, rows, chunkRows);
    }

    /** A complete store of {@code values} as a writer that checks nothing would write it: encoded, checksummed, footed. */
    static byte[] unchecked(StoreHeader h, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(h.completeSize())).order(ByteOrder.LITTLE_ENDIAN);
        b.put(h.encode());
        ValueCodec codec = h.codec();
        for (long c = 0; c < h.chunks(); c++) {
            int at = (int) h.chunkOffset(c);
            int n = (int) (h.rowsInChunk(c) * h.rowBytes());
            for (int i = 0; i < n / codec.bytes(); i++) {
                codec.put(b, at + i * codec.bytes(), values[(int) (c * h.chunkRows() * h.vocab()) + i]);
            }
            b.putInt(at + n, Crc32c.of(b.array(), at, n));
        }
        b.position((int) (h.completeSize() - StoreFooter.BYTES));
        b.put(StoreFooter.encode(h.rows()));
        return b.array();
    }

    @Test
    void theDenseWriterKeepsMinusInfinityAndRefusesNanPlusInfinityOverflowAndRowsWithoutMass(@TempDir Path tmp) throws IOException {
        for (ValueCodec codec : ValueCodec.values()) {
            Path p = tmp.resolve("d-" + codec + ".d4j");
            try (StoreWriter w = StoreWriter.open(p, dense(codec, 3, 5, 2))) {
                w.writeDense(new float[]{1, NEG, -2, NEG, NEG, 0.5f}, 2); // rows 0, 1: zero mass is a value
                Object[][] bad = {
                        {new float[]{0, Float.NaN, 1}, "dense value of row 3, class 1 is NaN, expected a finite value, or -Infinity for a "
                                + "class of zero probability"},
                        {new float[]{0, 1, Float.POSITIVE_INFINITY}, "dense value of row 3, class 2 is Infinity, expected a finite value"},
                        {new float[]{NEG, NEG, NEG}, "dense values of row 3 are all -Infinity (no class has probability); expected at "
                                + "least one finite value"},
                };
                for (Object[] b : bad) {
                    float[] rows = new float[6];
                    System.arraycopy((float[]) b[0], 0, rows, 3, 3); // row 2 is fine, row 3 is not
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> w.writeDense(rows, 2), codec + "");
                    assertTrue(e.getMessage().startsWith(p + ": ") && e.getMessage().contains((String) b[1]), codec + ": " + e.getMessage());
                    assertEquals(2, w.rowsWritten(), "nothing of a refused call is written");
                }
                if (codec == ValueCodec.F16) { // a finite logit f16 cannot hold would become an infinity: +inf, or zero mass
                    for (float big : new float[]{70_000f, -70_000f}) {
                        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                                () -> w.writeDense(new float[]{0, 1, 2, big, 0, 1}, 2));
                        assertTrue(e.getMessage().contains("dense value of row 3, class 0 is " + big + ", which overflows f16 to "
                                + (big > 0 ? "Infinity" : "-Infinity") + "; store f32 or bf16"), e.getMessage());
                    }
                }
                if (codec == ValueCodec.BF16) { // beyond bf16's largest (3.3895e38) it rounds to an infinity: only f32 holds it
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> w.writeDense(new float[]{0, 1, 2, -3.3998e38f, 0, 1}, 2));
                    assertTrue(e.getMessage().endsWith("dense value of row 3, class 0 is -3.3998E38, which overflows bf16 to -Infinity; "
                            + "store f32"), e.getMessage());
                }
                w.writeDense(new float[]{0, 1, 2, NEG, 3, NEG, 7, NEG, NEG}, 3);
                w.finish();
            }
            try (SoftTargetStore s = SoftTargetStore.open(p)) {
                assertEquals(List.of(), s.verify());
                float[] got = s.dense(new int[]{0, 1, 3, 4});
                float[] want = {1, NEG, -2, NEG, NEG, 0.5f, NEG, 3, NEG, 7, NEG, NEG};
                for (int i = 0; i < want.length; i++) {
                    assertEquals(want[i], got[i], 0f, codec + " value " + i);
                }
            }
        }
    }

    @Test
    void theReaderAndVerifyRefuseStoredValuesTheWriterRefusesNamingTheRowAndClass(@TempDir Path tmp) throws IOException {
        for (ValueCodec codec : ValueCodec.values()) {
            StoreHeader h = dense(codec, 3, 14, 4); // chunks 0-3: rows 0-3, 4-7, 8-11, 12-13
            float[] v = new float[14 * 3];
            for (int i = 0; i < v.length; i++) {
                v[i] = i % 3 == 1 ? NEG : i * 0.25f; // zero mass everywhere: fine
            }
            v[5 * 3 + 2] = Float.NaN;
            v[9 * 3] = Float.POSITIVE_INFINITY;
            Arrays.fill(v, 13 * 3, 14 * 3, NEG);
            Path p = tmp.resolve("bad-" + codec + ".d4j");
            Files.write(p, unchecked(h, v));
            try (SoftTargetStore s = SoftTargetStore.open(p)) {
                assertEquals(NEG, s.dense(new int[]{3})[1], 0f, "chunk 0 reads, -Infinity as it is");
                StoreFormatException e = assertThrows(StoreFormatException.class, () -> s.dense(new int[]{4}));
                String nan = p + ": chunk 1 (rows 4 to 7): row 5, class 2 is NaN, expected a finite value, or -Infinity for a class of "
                        + "zero probability";
                assertTrue(e.getMessage().startsWith(nan), codec + ": " + e.getMessage());
                List<String> problems = s.verify();
                assertEquals(3, problems.size(), codec + ": " + problems);
                assertTrue(problems.get(0).startsWith(nan), problems.get(0));
                assertTrue(problems.get(1).startsWith(p + ": chunk 2 (rows 8 to 11): row 9, class 0 is Infinity"), problems.get(1));
                assertTrue(problems.get(2).startsWith(p + ": chunk 3 (rows 12 to 13): row 13: every value is -Infinity (no class has "
                        + "probability)"), problems.get(2));
                assertEquals(problems, SoftTargetStore.verify(p));
            }
        }
        // top-k: ids in range and distinct, finite log-probabilities <= 0 (-Infinity is stored as log(Float.MIN_VALUE)), the
        // entries' probabilities summing to at most 1 (within 0.01)
        StoreHeader h = SoftTargetStoreTest.topk(100, 2, 5, 1);
        Path p = tmp.resolve("topk.d4j");
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeTopK(new int[]{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, new float[]{-0.1f, -2.5f, -0.1f, -2.5f, -0.1f, -2.5f, -0.1f, -2.5f,
                    -0.1f, -2.5f}, 5);
            w.finish();
        }
        byte[] good = Files.readAllBytes(p);
        ByteBuffer b = ByteBuffer.wrap(good.clone()).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort((int) h.chunkOffset(1), (short) 100);                               // row 1, entry 0: id 100 of 100 classes
        b.putShort((int) h.chunkOffset(2) + 2, (short) 5);                             // row 2 repeats class 5
        ValueCodec.F16.put(b, (int) h.chunkOffset(3) + 2 * 2 + 2, NEG);                // row 3, entry 1: -Infinity
        ValueCodec.F16.put(b, (int) h.chunkOffset(4) + 2 * 2 + 2, -0.5f);              // row 4: 0.905 + 0.607 of mass
        for (long c = 1; c < 5; c++) {
            int at = (int) h.chunkOffset(c);
            b.putInt(at + (int) h.rowBytes(), Crc32c.of(b.array(), at, (int) h.rowBytes()));
        }
        Files.write(p, b.array());
        List<String> problems = SoftTargetStore.verify(p);
        assertEquals(4, problems.size(), problems.toString());
        assertTrue(problems.get(0).startsWith(p + ": chunk 1 (rows 1 to 1): row 1, entry 0: class id 100 is outside [0, 100)"),
                problems.get(0));
        assertTrue(problems.get(1).startsWith(p + ": chunk 2 (rows 2 to 2): row 2 repeats class 5"), problems.get(1));
        assertTrue(problems.get(2).startsWith(p + ": chunk 3 (rows 3 to 3): row 3, entry 1 (class 8) is -Infinity, expected a "
                + "finite log-probability <= 0"), problems.get(2));
        assertEquals(p + ": chunk 4 (rows 4 to 4): row 4: the entries' probabilities sum to 1.5114, expected at most 1 (they are "
                + "not log-probabilities of one distribution) (the chunk's checksum holds: it was written so)", problems.get(3));
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            StoreFormatException e = assertThrows(StoreFormatException.class, () -> s.topK(new int[]{4}));
            assertEquals(problems.get(3), e.getMessage(), "the reader refuses the row as verify reports it");
        }
    }

    /** A resume keeps only chunks the reader accepts: one that holds NaN (an older writer checked nothing) is written again. */
    @Test
    void aResumeWritesAgainAChunkWhoseRowsTheReaderRefuses(@TempDir Path tmp) throws IOException {
        StoreHeader h = dense(ValueCodec.F32, 3, 12, 4);
        float[] v = new float[12 * 3];
        for (int i = 0; i < v.length; i++) {
            v[i] = i;
        }
        v[6 * 3 + 1] = Float.NaN;
        byte[] whole = unchecked(h, v);
        Path p = tmp.resolve("s.d4j");
        // an interrupted run's partial: the header and chunks 0 and 1, each with a valid CRC
        Files.write(StoreWriter.partialPath(p), Arrays.copyOf(whole, (int) h.chunkOffset(2)));
        try (StoreWriter w = StoreWriter.open(p, h)) {
            assertEquals(4, w.rowsWritten(), "chunk 1 holds a NaN: labeling continues at its first row");
            float[] rest = Arrays.copyOfRange(v, 4 * 3, 12 * 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> w.writeDense(rest, 8));
            assertTrue(e.getMessage().contains("dense value of row 6, class 1 is NaN"), e.getMessage());
            rest[2 * 3 + 1] = 1;
            w.writeDense(rest, 8);
            w.finish();
        }
        assertEquals(List.of(), SoftTargetStore.verify(p));
    }

    /** A file that cannot be opened is one message naming it and what is wrong; verify(Path) throws none. */
    @Test
    void verifyOfAPathReportsFilesThatCannotBeOpened(@TempDir Path tmp) throws IOException {
        StoreHeader h = dense(ValueCodec.F32, 6, 9, 4);
        float[] v = new float[9 * 6];
        Arrays.fill(v, 1);
        byte[] good = unchecked(h, v);
        Path p = tmp.resolve("s.d4j");
        Files.write(p, good);
        assertEquals(List.of(), SoftTargetStore.verify(p));

        Files.write(p, Arrays.copyOf(good, good.length - 30));
        assertEquals(List.of(p + ": truncated: " + (good.length - 30) + " bytes, a complete store of 9 rows has " + good.length),
                SoftTargetStore.verify(p));
        Files.write(p, Arrays.copyOf(good, 30));
        assertEquals(List.of(p + ": truncated: 30 bytes, a store header needs at least 52"), SoftTargetStore.verify(p));

        byte[] header = good.clone();
        header[60] ^= 0x20; // a byte of the provenance
        Files.write(p, header);
        assertEquals(List.of(p + ": header checksum mismatch: the header is corrupt"), SoftTargetStore.verify(p));
        header = good.clone();
        header[10] = 1; // the layout byte: dense becomes top-k, caught by the header checksum
        Files.write(p, header);
        assertEquals(List.of(p + ": header checksum mismatch: the header is corrupt"), SoftTargetStore.verify(p));

        byte[] footer = good.clone();
        footer[footer.length - 12] ^= 1; // the row count in the footer
        Files.write(p, footer);
        assertEquals(List.of(p + ": the footer is missing or corrupt: the store is incomplete"), SoftTargetStore.verify(p));

        Files.delete(p);
        assertEquals(List.of(p + ": no soft-target store there"), SoftTargetStore.verify(p));
        Files.write(StoreWriter.partialPath(p), Arrays.copyOf(good, (int) h.chunkOffset(1)));
        List<String> partial = SoftTargetStore.verify(p);
        assertEquals(1, partial.size(), partial.toString());
        assertTrue(partial.get(0).startsWith(p + " is not complete: labeling stopped before the end"), partial.get(0));
    }

    /**
     * A store truncated, rewritten or extended while it is open (cp over it, a second labeling run): verify checks every
     * chunk again, reports each problem with the file and chunk, and throws none. Reading a mapping past the end of its file
     * used to kill the JVM (SIGBUS in the CRC32C intrinsic), so the size is checked before a chunk's checksum.
     */
    @Test
    void verifyReportsAStoreThatChangedAfterItWasOpened(@TempDir Path tmp) throws IOException {
        StoreHeader h = dense(ValueCodec.F32, 2000, 9, 4); // chunks of 32,004 bytes: several pages each
        float[] v = new float[9 * 2000];
        for (int i = 0; i < v.length; i++) {
            v[i] = (i % 17) - 8;
        }
        byte[] good = unchecked(h, v);
        Path p = tmp.resolve("s.d4j");
        // one window a chunk (chunk 1's is mapped after the file shrank), and one window for all (mapped before)
        for (long window : new long[]{40_000, SoftTargetStore.WINDOW_BYTES}) {
            Files.write(p, good);
            try (SoftTargetStore s = SoftTargetStore.open(p, window)) {
                assertEquals(v[0], s.dense(new int[]{0})[0], 0f); // chunk 0 read (and checked) before the file changes
                try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
                    ch.truncate(h.chunkOffset(1) + 10); // chunk 1 cut after 10 bytes, chunk 2 gone
                }
                long size = h.chunkOffset(1) + 10;
                List<String> problems = s.verify();
                assertEquals(2, problems.size(), problems.toString());
                assertTrue(problems.get(0).startsWith(p + ": chunk 1 (rows 4 to 7): the file is now " + size + " bytes, it ends "
                        + "before this chunk does (byte " + h.chunkOffset(2) + "): it was truncated or replaced after it was opened"),
                        problems.get(0));
                assertTrue(problems.get(1).startsWith(p + ": chunk 2 (rows 8 to 8): the file is now " + size + " bytes"),
                        problems.get(1));
                StoreFormatException e = assertThrows(StoreFormatException.class, () -> s.dense(new int[]{8}));
                assertEquals(problems.get(1), e.getMessage(), "reading a cut chunk is an error naming it, not a crash");
                assertEquals(v[2000], s.dense(new int[]{1})[0], 0f, "chunk 0 is still there");
            }
        }

        Files.write(p, good);
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            s.dense(new int[]{0, 4, 8}); // every chunk read and checked once
            byte[] changed = good.clone();
            changed[(int) h.chunkOffset(1) + 100] ^= 0x10; // rewritten in place: chunk 1 no longer matches its checksum
            changed[changed.length - 1] ^= 0x01;           // nor the footer its CRC
            try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(changed), 0);
            }
            List<String> problems = s.verify();
            assertEquals(List.of(p + ": checksum mismatch in chunk 1 (rows 4 to 7): the file is corrupt",
                    p + ": the footer (bytes " + (good.length - 20) + " to " + good.length + ") is corrupt: expected 'D4JEND', the row "
                            + "count 9 and their CRC32C"), problems);
            try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(good), 0);
                ch.write(ByteBuffer.wrap(new byte[]{1, 2, 3}), good.length);
            }
            assertEquals(List.of(p + ": 3 unexpected bytes after the footer (the file is now " + (good.length + 3) + " bytes, a "
                    + "complete store has " + good.length + ")"), s.verify());
        }
        SoftTargetStore closed = SoftTargetStore.open(Files.write(tmp.resolve("again.d4j"), good));
        closed.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, closed::verify);
        assertTrue(e.getMessage().endsWith("again.d4j is closed"), e.getMessage());
    }
}
