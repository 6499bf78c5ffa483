package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SoftTargetStoreTest {
    static final String PROV = "{\"teacher\":\"test-mlp\",\"sha256\":\"abc123\"}";

    static StoreHeader dense(ValueCodec codec, int vocab, long rows, int chunkRows) {
        return new StoreHeader(StoreHeader.Layout.DENSE, codec, StoreHeader.ValueKind.LOGITS, vocab, 0, rows, chunkRows, 1.0, PROV);
    }

    static StoreHeader topk(int vocab, int k, long rows, int chunkRows) {
        return new StoreHeader(StoreHeader.Layout.TOP_K, ValueCodec.F16, StoreHeader.ValueKind.LOG_PROBS, vocab, k, rows, chunkRows,
                1.0, PROV);
    }

    static float[] values(long seed, int n) {
        Random rng = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (3 * rng.nextGaussian());
        }
        return v;
    }

    /**
     * Valid log-probabilities of {@code rows} top-k rows of {@code k} entries: finite, at most 0, and each entry's
     * probability at most 1 / k, so that a row's sum to at most 1.
     */
    static float[] logProbs(long seed, int rows, int k) {
        float[] v = values(seed, rows * k);
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (-Math.abs(v[i]) - Math.log(k));
        }
        return v;
    }

    /** Random top-k ids, distinct within each row; the first entry of a row is {@code vocab - 1} when {@code maxFirst}. */
    static int[] distinctIds(Random rng, int rows, int k, int vocab, boolean maxFirst) {
        int[] ids = new int[rows * k];
        for (int r = 0; r < rows; r++) {
            java.util.Set<Integer> seen = new java.util.HashSet<>();
            for (int j = 0; j < k; j++) {
                int id;
                do {
                    id = maxFirst && j == 0 ? vocab - 1 : rng.nextInt(vocab);
                } while (!seen.add(id));
                ids[r * k + j] = id;
            }
        }
        return ids;
    }

    static float codec(ValueCodec c, float v) {
        return switch (c) {
            case F32 -> v;
            case F16 -> ValueCodec.fromHalf(ValueCodec.toHalf(v));
            case BF16 -> ValueCodec.fromBfloat16(ValueCodec.toBfloat16(v));
        };
    }

    @ParameterizedTest
    @EnumSource(ValueCodec.class)
    void denseRowsRoundTripThroughEveryCodec(ValueCodec c, @TempDir Path tmp) throws IOException {
        int vocab = 37;
        int rows = 23;
        Path p = tmp.resolve("dense.d4j");
        float[] all = values(1, rows * vocab);
        try (StoreWriter w = StoreWriter.open(p, dense(c, vocab, rows, 5))) {
            w.writeDense(java.util.Arrays.copyOfRange(all, 0, 7 * vocab), 7); // any batching works
            w.writeDense(java.util.Arrays.copyOfRange(all, 7 * vocab, rows * vocab), rows - 7);
            w.finish();
        }
        assertFalse(Files.exists(StoreWriter.partialPath(p)));
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            assertEquals(rows, s.rows());
            int[] idx = {22, 0, 5, 4, 13};
            float[] got = s.dense(idx);
            for (int i = 0; i < idx.length; i++) {
                for (int j = 0; j < vocab; j++) {
                    assertEquals(codec(c, all[idx[i] * vocab + j]), got[i * vocab + j], 0f);
                }
            }
            assertTrue(s.verify().isEmpty());
            assertEquals(PROV, s.header().provenance());
        }
    }

    @Test
    void topKRowsRoundTripWithTwoThreeAndFourByteIds(@TempDir Path tmp) throws IOException {
        for (int vocab : new int[]{1000, 70_000, 20_000_000}) {
            int k = 5;
            int rows = 11;
            Random rng = new Random(vocab);
            int[] ids = distinctIds(rng, rows, k, vocab, true);
            float[] lps = logProbs(vocab, rows, k);
            Path p = tmp.resolve("topk-" + vocab + ".d4j");
            try (StoreWriter w = StoreWriter.open(p, topk(vocab, k, rows, 4))) {
                w.writeTopK(ids, lps, rows);
                w.finish();
            }
            try (SoftTargetStore s = SoftTargetStore.open(p)) {
                SoftTargetStore.TopKRows r = s.topK(new int[]{10, 3});
                assertArrayEquals(java.util.Arrays.copyOfRange(ids, 50, 55), java.util.Arrays.copyOfRange(r.ids(), 0, 5));
                assertArrayEquals(java.util.Arrays.copyOfRange(ids, 15, 20), java.util.Arrays.copyOfRange(r.ids(), 5, 10));
                for (int j = 0; j < 5; j++) {
                    assertEquals(codec(ValueCodec.F16, lps[50 + j]), r.logProbs()[j], 0f);
                }
                assertEquals(vocab <= 65536 ? 2 : vocab <= 1 << 24 ? 3 : 4, s.header().idBytes());
            }
        }
    }

    /**
     * A read of more values than one Java array holds (rows x classes beyond 2^31 - 9) is refused naming the store, the
     * rows and the classes: the count wrapped around, to a NegativeArraySizeException (or a too-small array and an
     * index out of bounds) that named nothing.
     */
    @Test
    void aReadOfMoreValuesThanAnArrayHoldsIsRefusedNamingTheShape(@TempDir Path tmp) throws IOException {
        int vocab = 1 << 16;
        Path d = tmp.resolve("dense.d4j");
        float[] row = values(4, vocab);
        try (StoreWriter w = StoreWriter.open(d, dense(ValueCodec.F16, vocab, 2, 1))) {
            w.writeDense(row, 1);
            w.writeDense(values(5, vocab), 1);
            w.finish();
        }
        Path t = tmp.resolve("topk.d4j");
        int[] ids = new int[vocab];
        float[] lps = new float[vocab];
        for (int j = 0; j < vocab; j++) {
            ids[j] = vocab - 1 - j;
            lps[j] = -0.001f * j - 11.1f;
        }
        try (StoreWriter w = StoreWriter.open(t, topk(vocab, vocab, 1, 1))) {
            w.writeTopK(ids, lps, 1);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(d); SoftTargetStore top = SoftTargetStore.open(t)) {
            for (int n : new int[]{32768, 65537}) { // 2^31 values (wraps negative), 2^32 + 2^16 (wraps to 2^16)
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.dense(new int[n]));
                assertTrue(e.getMessage().contains(d + ": " + n + " rows of " + vocab + " classes are " + (long) n * vocab
                        + " values, more than one array holds"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> top.topK(new int[n]));
                assertTrue(e.getMessage().contains(t + ": " + n + " rows of " + vocab + " entries are " + (long) n * vocab
                        + " values, more than one array holds"), e.getMessage());
            }
            float[] back = s.dense(new int[]{0, 0, 1});
            for (int j = 0; j < vocab; j++) {
                assertEquals(codec(ValueCodec.F16, row[j]), back[j], 0f);
                assertEquals(back[j], back[vocab + j], 0f);
            }
            SoftTargetStore.TopKRows r = top.topK(new int[]{0, 0});
            assertArrayEquals(ids, java.util.Arrays.copyOf(r.ids(), vocab));
            assertArrayEquals(ids, java.util.Arrays.copyOfRange(r.ids(), vocab, 2 * vocab));
            assertEquals(codec(ValueCodec.F16, lps[vocab - 1]), r.logProbs()[2 * vocab - 1], 0f);
        }
    }

    @Test
    void copyRowsGivesTheStoredBytesOfEachRowInOrder(@TempDir Path tmp) throws IOException {
        int vocab = 70_000; // 3-byte ids: rows of 5 x (3 + 2) = 25 bytes, not a multiple of 4
        int k = 5;
        int rows = 13;
        Random rng = new Random(11);
        int[] ids = distinctIds(rng, rows, k, vocab, false);
        float[] lps = logProbs(12, rows, k);
        Path p = tmp.resolve("topk.d4j");
        try (StoreWriter w = StoreWriter.open(p, topk(vocab, k, rows, 4))) {
            w.writeTopK(ids, lps, rows);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            int[] idx = {12, 0, 7, 7, 3};
            ByteBuffer dst = ByteBuffer.allocate(3 + 25 * idx.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            dst.position(3);
            assertEquals(25L * idx.length, s.copyRows(idx, dst));
            assertEquals(dst.capacity(), dst.position());
            SoftTargetStore.TopKRows want = s.topK(idx);
            for (int i = 0; i < idx.length; i++) {
                for (int j = 0; j < k; j++) {
                    int at = 3 + 25 * i + 3 * j;
                    int id = (dst.get(at) & 0xff) | (dst.get(at + 1) & 0xff) << 8 | (dst.get(at + 2) & 0xff) << 16;
                    assertEquals(want.ids()[i * k + j], id, "row " + i + " entry " + j);
                    assertEquals(want.logProbs()[i * k + j], ValueCodec.F16.get(dst, 3 + 25 * i + 15 + 2 * j), 0f);
                }
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> s.copyRows(idx, ByteBuffer.allocate(124)));
            assertTrue(e.getMessage().contains("5 rows need 125 bytes, the buffer has 124 left"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> s.copyRows(new int[] {13}, ByteBuffer.allocate(25)));
        }
    }

    @Test
    void topKEntriesTakeAtMostSixBytes() {
        for (int k : new int[]{8, 32, 64}) {
            StoreHeader h = topk(32000, k, 10, 4);
            assertEquals(4L * k, h.rowBytes(), "V=32000: 2-byte ids + f16 values");
        }
        assertEquals(5L * 64, topk(152064, 64, 10, 4).rowBytes(), "V=152064: 3-byte ids + f16");
    }

    @Test
    void anInterruptedWriteResumesToTheSameBytes(@TempDir Path tmp) throws IOException {
        int vocab = 19;
        int rows = 30;
        float[] all = values(3, rows * vocab);
        Path whole = tmp.resolve("whole.d4j");
        try (StoreWriter w = StoreWriter.open(whole, dense(ValueCodec.F16, vocab, rows, 4))) {
            w.writeDense(all, rows);
            w.finish();
        }
        Path p = tmp.resolve("resumed.d4j");
        StoreWriter w = StoreWriter.open(p, dense(ValueCodec.F16, vocab, rows, 4));
        w.writeDense(java.util.Arrays.copyOfRange(all, 0, 10 * vocab), 10); // chunks 0, 1 on disk; 2 rows buffered
        w.close(); // "crash": the buffered rows are lost
        try (FileChannel ch = FileChannel.open(StoreWriter.partialPath(p), StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[]{1, 2, 3, 4, 5, 6, 7}), ch.size()); // a torn chunk at the end
        }
        StoreFormatException incomplete = assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
        assertTrue(incomplete.getMessage().contains("is not complete"), incomplete.getMessage());
        try (StoreWriter again = StoreWriter.open(p, dense(ValueCodec.F16, vocab, rows, 4))) {
            assertEquals(8, again.rowsWritten(), "two complete chunks of 4 survive");
            again.writeDense(java.util.Arrays.copyOfRange(all, 8 * vocab, rows * vocab), rows - 8);
            again.finish();
        }
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(p));
    }

    /**
     * Resuming reads each chunk on disk to check it; one read call may return fewer bytes than asked (a chunk near
     * 2 GB is more than the kernel reads at once), and the chunk must then be read on, not refused as corrupt and cut
     * (which wiped good chunks, and for chunks of that size every time). Here every read returns at most 7 bytes.
     */
    @Test
    void resumingReadsEachChunkFullyThroughShortReads(@TempDir Path tmp) throws IOException {
        int vocab = 13;
        int rows = 30;
        StoreHeader h = dense(ValueCodec.F32, vocab, rows, 4);
        Path p = tmp.resolve("short.d4j");
        StoreWriter w = StoreWriter.open(p, h);
        w.writeDense(values(21, 22 * vocab), 22); // chunks 0 to 4 on disk, 2 rows buffered and lost
        w.close();
        Path partial = StoreWriter.partialPath(p);
        try (FileChannel real = FileChannel.open(partial, StandardOpenOption.READ);
             ShortReadChannel ch = new ShortReadChannel(FileChannel.open(partial, StandardOpenOption.READ), 7)) {
            assertEquals(5, StoreWriter.goodChunks(real, h, real.size()));
            assertEquals(5, StoreWriter.goodChunks(ch, h, ch.size()), "every complete chunk is good, read 7 bytes at a time");
            assertTrue(ch.reads >= 5 * (4 * vocab * 4 + 4) / 7, "the reads were short: " + ch.reads);
        }
        // a chunk cut short at the end of the file is still not good
        try (FileChannel f = FileChannel.open(partial, StandardOpenOption.WRITE)) {
            f.truncate(h.chunkOffset(4) + 4 * vocab * 4); // chunk 4 without its CRC
        }
        try (ShortReadChannel ch = new ShortReadChannel(FileChannel.open(partial, StandardOpenOption.READ), 7)) {
            assertEquals(4, StoreWriter.goodChunks(ch, h, ch.size()));
        }
    }

    /**
     * A call with more rows than the store has left is refused before any of its rows is taken, as the writer's other
     * refusals are: it used to write the rows that fit (syncing their chunks, up to the last) and then throw, so the store
     * could be finished with the first rows of a batch that was refused.
     */
    @Test
    void moreRowsThanTheStoreHasLeftAreRefusedLeavingTheWriterAsItWas(@TempDir Path tmp) throws IOException {
        int vocab = 7;
        int rows = 10;
        float[] all = values(12, rows * vocab);
        Path whole = tmp.resolve("whole.d4j");
        try (StoreWriter w = StoreWriter.open(whole, dense(ValueCodec.F32, vocab, rows, 4))) {
            w.writeDense(all, rows);
            w.finish();
        }
        int k = 2;
        int[] ids = new int[rows * k];
        for (int r = 0; r < rows; r++) {
            ids[r * k] = r % vocab;
            ids[r * k + 1] = (r + 1) % vocab;
        }
        float[] lps = logProbs(13, rows, k);
        Path p = tmp.resolve("over.d4j");
        Path q = tmp.resolve("overk.d4j");
        try (StoreWriter w = StoreWriter.open(p, dense(ValueCodec.F32, vocab, rows, 4));
             StoreWriter t = StoreWriter.open(q, topk(vocab, k, rows, 4))) {
            w.writeDense(java.util.Arrays.copyOfRange(all, 0, 6 * vocab), 6); // chunk 0 on disk, 2 rows buffered
            t.writeTopK(java.util.Arrays.copyOfRange(ids, 0, 6 * k), java.util.Arrays.copyOfRange(lps, 0, 6 * k), 6);
            float[] six = java.util.Arrays.copyOfRange(all, 4 * vocab, 10 * vocab); // 6 rows, only 4 fit
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> w.writeDense(six, 6));
            assertTrue(e.getMessage().contains("6 rows do not fit: the store has 6 of its 10 rows, room for 4 more"), e.getMessage());
            IllegalStateException et = assertThrows(IllegalStateException.class,
                    () -> t.writeTopK(java.util.Arrays.copyOf(ids, 6 * k), java.util.Arrays.copyOf(lps, 6 * k), 6));
            assertTrue(et.getMessage().contains("6 rows do not fit: the store has 6 of its 10 rows, room for 4 more"), et.getMessage());
            assertEquals(4, w.rowsWritten(), "nothing of the refused call reached the disk");
            assertEquals(StoreWriter.partialPath(p).toFile().length(), dense(ValueCodec.F32, vocab, rows, 4).chunkOffset(1));
            w.writeDense(java.util.Arrays.copyOfRange(all, 6 * vocab, rows * vocab), rows - 6);
            w.finish();
            IllegalStateException full = assertThrows(IllegalStateException.class, () -> t.writeTopK(
                    java.util.Arrays.copyOfRange(ids, 0, 5 * k), java.util.Arrays.copyOfRange(lps, 0, 5 * k), 5));
            assertEquals(4, t.rowsWritten());
            t.writeTopK(java.util.Arrays.copyOfRange(ids, 6 * k, rows * k), java.util.Arrays.copyOfRange(lps, 6 * k, rows * k), 4);
            t.finish();
            IllegalStateException after = assertThrows(IllegalStateException.class,
                    () -> t.writeTopK(java.util.Arrays.copyOf(ids, k), java.util.Arrays.copyOf(lps, k), 1));
            assertTrue(after.getMessage().contains("closed"), after.getMessage());
            assertTrue(full.getMessage().contains("room for 4 more"), full.getMessage());
        }
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(p));
        try (SoftTargetStore s = SoftTargetStore.open(q)) {
            SoftTargetStore.TopKRows r = s.topK(new int[]{0, 5, 9});
            assertEquals(ids[9 * k + 1], r.ids()[2 * k + 1]);
        }
    }

    /**
     * A chunk write that fails (a full disk) leaves the writer with a full chunk buffer it could not write: a retry on the
     * same writer used to run past the buffer (IndexOutOfBoundsException). The writer now refuses every further call
     * naming the file and the first failure, and the store on disk resumes from its last complete chunk.
     */
    @Test
    void aWriterWhoseWriteFailedRefusesFurtherCallsAndTheStoreResumes(@TempDir Path tmp) throws IOException {
        int vocab = 11;
        int rows = 14;
        StoreHeader h = dense(ValueCodec.F16, vocab, rows, 4);
        float[] all = values(31, rows * vocab);
        Path whole = tmp.resolve("whole.d4j");
        try (StoreWriter w = StoreWriter.open(whole, h)) {
            w.writeDense(all, rows);
            w.finish();
        }
        Path p = tmp.resolve("full.d4j");
        FailingWriteChannel[] channel = {null};
        StoreWriter w = StoreWriter.open(p, h, c -> channel[0] = new FailingWriteChannel(c));
        w.writeDense(java.util.Arrays.copyOfRange(all, 0, 6 * vocab), 6); // chunk 0 on disk, 2 rows buffered
        channel[0].failAfter(10); // chunk 1 reaches the disk in part, then the disk is full
        float[] next = java.util.Arrays.copyOfRange(all, 6 * vocab, 10 * vocab);
        IOException full = assertThrows(IOException.class, () -> w.writeDense(next, 4));
        // the failure names the file, and says the .partial is kept and resumes
        assertTrue(full.getMessage().startsWith(StoreWriter.partialPath(p) + ": cannot write chunk 1 (No space left on device)"),
                full.getMessage());
        assertTrue(full.getMessage().contains("it is kept: open the store again with the same settings (rerun the same labeling "
                + "or import) to resume from its last complete chunk"), full.getMessage());
        assertEquals("No space left on device", full.getCause().getMessage());
        assertEquals(4, w.rowsWritten());
        String partial = StoreWriter.partialPath(p).toString();
        for (org.junit.jupiter.api.function.Executable retry : List.<org.junit.jupiter.api.function.Executable>of(
                () -> w.writeDense(next, 4), () -> w.writeDense(java.util.Arrays.copyOf(next, vocab), 1), w::finish)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, retry);
            assertTrue(e.getMessage().startsWith(partial + ": an earlier write failed (java.io.IOException: No space left on device)"),
                    e.getMessage());
            assertTrue(e.getMessage().contains("close this writer and open the store again to resume"), e.getMessage());
            assertEquals(full, e.getCause());
        }
        w.close();
        try (StoreWriter again = StoreWriter.open(p, h)) {
            assertEquals(4, again.rowsWritten(), "the torn chunk 1 is cut; chunk 0 stays");
            again.writeDense(java.util.Arrays.copyOfRange(all, 4 * vocab, rows * vocab), rows - 4);
            again.finish();
        }
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(p));
    }

    /**
     * Rows read from a closed store are refused as such, whether their chunk was read before or not: a chunk not read yet
     * used to fail as a corrupt store ("cannot read the file's size: ClosedChannelException", a StoreFormatException),
     * while a chunk read before was still served from its mapping.
     */
    @Test
    void readingAClosedStoreSaysItIsClosed(@TempDir Path tmp) throws IOException {
        int vocab = 5;
        int rows = 12;
        Path p = tmp.resolve("closed.d4j");
        try (StoreWriter w = StoreWriter.open(p, dense(ValueCodec.F32, vocab, rows, 4))) {
            w.writeDense(values(4, rows * vocab), rows);
            w.finish();
        }
        SoftTargetStore s = SoftTargetStore.open(p, 4 * vocab * 4 + 4); // one chunk a window
        assertEquals(vocab, s.dense(new int[]{1}).length); // chunk 0 read and mapped
        s.close();
        for (int row : new int[]{2, 9}) { // a chunk read before, and one not
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.dense(new int[]{row}));
            assertEquals(p + " is closed", e.getMessage());
            e = assertThrows(IllegalStateException.class, () -> s.copyRows(new int[]{row}, ByteBuffer.allocate(vocab * 4)));
            assertEquals(p + " is closed", e.getMessage());
        }
    }

    /**
     * A second writer of a store that is being written (the same job started twice) is refused and leaves the first's
     * file alone: it used to "resume" it, cut the chunks written since, and write beside the first writer, so a crash of
     * either could leave a finished store with a hole, and the second's finish found no .partial to rename.
     */
    @Test
    void aSecondWriterOfAStoreBeingWrittenIsRefused(@TempDir Path tmp) throws IOException {
        int vocab = 5;
        int rows = 24;
        float[] all = values(8, rows * vocab);
        Path whole = tmp.resolve("whole.d4j");
        try (StoreWriter w = StoreWriter.open(whole, dense(ValueCodec.F32, vocab, rows, 4))) {
            w.writeDense(all, rows);
            w.finish();
        }
        Path p = tmp.resolve("s.d4j");
        Path partial = StoreWriter.partialPath(p);
        try (StoreWriter first = StoreWriter.open(p, dense(ValueCodec.F32, vocab, rows, 4))) {
            IllegalStateException fresh = assertThrows(IllegalStateException.class,
                    () -> StoreWriter.open(p, dense(ValueCodec.F32, vocab, rows, 4)));
            assertTrue(fresh.getMessage().contains(partial + " is being written by another writer"), fresh.getMessage());
            first.writeDense(java.util.Arrays.copyOfRange(all, 0, 10 * vocab), 10); // chunks 0, 1 on disk
            byte[] before = Files.readAllBytes(partial);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> StoreWriter.open(p, dense(ValueCodec.F32, vocab, rows, 4)));
            assertTrue(e.getMessage().contains(partial + " is being written by another writer"), e.getMessage());
            assertArrayEquals(before, Files.readAllBytes(partial), "the first writer's file is left as it was");
            first.writeDense(java.util.Arrays.copyOfRange(all, 10 * vocab, rows * vocab), rows - 10);
            first.finish();
        }
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(p));

        // once the first writer is closed (a crash), the store resumes as before
        Path q = tmp.resolve("q.d4j");
        StoreWriter crashed = StoreWriter.open(q, dense(ValueCodec.F32, vocab, rows, 4));
        crashed.writeDense(java.util.Arrays.copyOfRange(all, 0, 9 * vocab), 9);
        crashed.close();
        try (StoreWriter again = StoreWriter.open(q, dense(ValueCodec.F32, vocab, rows, 4))) {
            assertEquals(8, again.rowsWritten());
            again.writeDense(java.util.Arrays.copyOfRange(all, 8 * vocab, rows * vocab), rows - 8);
            again.finish();
        }
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(q));
    }

    @Test
    void resumingWithAnotherTeacherIsRefused(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("s.d4j");
        StoreWriter w = StoreWriter.open(p, dense(ValueCodec.F32, 4, 10, 2));
        w.writeDense(values(1, 8), 2);
        w.close();
        StoreHeader other = new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F32, StoreHeader.ValueKind.LOGITS, 4, 0, 10, 2, 1.0,
                "{\"teacher\":\"another\"}");
        StoreMismatchException e = assertThrows(StoreMismatchException.class, () -> StoreWriter.open(p, other));
        assertTrue(e.getMessage().contains("made by a different teacher"), e.getMessage());
        StoreMismatchException v = assertThrows(StoreMismatchException.class,
                () -> StoreWriter.open(p, dense(ValueCodec.F32, 5, 10, 2)));
        assertTrue(v.getMessage().contains("vocab 4 vs 5"), v.getMessage());
    }

    /** A .partial with two complete chunks of 4 rows, started with {@code h} (6 classes, f32). */
    private static byte[] interrupted(Path p, StoreHeader h) throws IOException {
        StoreWriter w = StoreWriter.open(p, h);
        w.writeDense(values(5, 6 * 9), 9); // chunks 0, 1 on disk; row 8 buffered and lost
        w.close();
        return Files.readAllBytes(StoreWriter.partialPath(p));
    }

    private static StoreHeader dense6(String provenance) {
        return new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F32, StoreHeader.ValueKind.LOGITS, 6, 0, 20, 4, 1.0, provenance);
    }

    /** A partial whose header this run cannot use is refused with what is wrong, never silently wiped. */
    @Test
    void aPartialThatCannotBeResumedIsRefusedAndKept(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("s.d4j");
        Path partial = StoreWriter.partialPath(p);
        // started by a teacher with a 5 KB provenance (a header longer than the new one)
        String longProv = "{\"teacher\":\"a\",\"description\":\"" + "x".repeat(5000) + "\"}";
        byte[] orig = interrupted(p, dense6(longProv));
        StoreMismatchException other = assertThrows(StoreMismatchException.class, () -> StoreWriter.open(p, dense6(PROV)));
        assertTrue(other.getMessage().contains(partial + " was started with different settings; it was made by a different teacher"),
                other.getMessage());
        assertArrayEquals(orig, Files.readAllBytes(partial), "the other teacher's partial is kept");
        try (StoreWriter same = StoreWriter.open(p, dense6(longProv))) {
            assertEquals(8, same.rowsWritten(), "its own teacher resumes it");
        }

        Files.delete(partial);
        orig = interrupted(p, dense6(PROV));
        record Case(String what, long at, byte[] bytes, String message) {
        }
        List<Case> cases = List.of(
                new Case("wrong magic", 0, "NOTASTORE".getBytes(), partial + ": not a Distill4J soft-target store (it starts with 'NOTASTOR'"),
                new Case("newer version", 8, new byte[]{2, 0}, partial + ": store format version 2, but this Distill4J writes version 1"),
                new Case("corrupt provenance", 60, new byte[]{'#'}, partial + ": header checksum mismatch"),
                new Case("absurd provenance length", 48, new byte[]{(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x7f},
                        partial + ": corrupt header: it declares a provenance of 2147483647 bytes"),
                new Case("negative provenance length", 48, new byte[]{0, 0, 0, (byte) 0x80},
                        partial + ": corrupt header: it declares a provenance of -2147483648 bytes"));
        for (Case c : cases) {
            Files.write(partial, orig);
            try (FileChannel ch = FileChannel.open(partial, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(c.bytes()), c.at());
            }
            byte[] broken = Files.readAllBytes(partial);
            StoreFormatException e = assertThrows(StoreFormatException.class, () -> StoreWriter.open(p, dense6(PROV)), c.what());
            assertTrue(e.getMessage().contains(c.message()) && e.getMessage().contains("it cannot be resumed: delete it"),
                    c.what() + ": " + e.getMessage());
            assertArrayEquals(broken, Files.readAllBytes(partial), c.what() + ": the file is left as it was");
        }
        // another file with the name, however short, is not ours to wipe
        for (String text : new String[]{"hello", "D4JSTORF", "a text file that happens to end in .partial, and is long enough"}) {
            Files.writeString(partial, text);
            StoreFormatException e = assertThrows(StoreFormatException.class, () -> StoreWriter.open(p, dense6(PROV)), text);
            assertTrue(e.getMessage().contains(partial + ": not a Distill4J soft-target store"), e.getMessage());
            assertEquals(text, Files.readString(partial));
        }
    }

    /** Only a partial shorter than its own complete header (a crash while the header was written) starts over. */
    @Test
    void aPartialWithATornHeaderStartsOver(@TempDir Path tmp) throws IOException {
        Path whole = tmp.resolve("whole.d4j");
        float[] all = values(5, 6 * 20);
        try (StoreWriter w = StoreWriter.open(whole, dense6(PROV))) {
            w.writeDense(all, 20);
            w.finish();
        }
        byte[] want = Files.readAllBytes(whole);
        long headerBytes = 52 + PROV.length() + 4;
        Path p = tmp.resolve("s.d4j");
        for (long cut : new long[]{0, 5, 30, 51, 52, 60, headerBytes - 1, headerBytes, headerBytes + 100}) {
            Files.write(StoreWriter.partialPath(p), java.util.Arrays.copyOf(want, (int) cut));
            try (StoreWriter w = StoreWriter.open(p, dense6(PROV))) {
                assertEquals(0, w.rowsWritten(), "cut at " + cut);
                w.writeDense(all, 20);
                w.finish();
            }
            assertArrayEquals(want, Files.readAllBytes(p), "cut at " + cut);
            Files.delete(p);
        }
    }

    private static Path complete(Path tmp) throws IOException {
        Path p = tmp.resolve("s.d4j");
        try (StoreWriter w = StoreWriter.open(p, dense(ValueCodec.F32, 6, 9, 4))) {
            w.writeDense(values(4, 54), 9);
            w.finish();
        }
        return p;
    }

    private static void patch(Path p, long offset, byte value) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[]{value}), offset);
        }
    }

    @Test
    void badFilesFailWithWhatIsWrong(@TempDir Path tmp) throws IOException {
        Path p = complete(tmp);
        StoreHeader h;
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            h = s.header();
            IllegalArgumentException range = assertThrows(IllegalArgumentException.class, () -> s.dense(new int[]{9}));
            assertTrue(range.getMessage().contains("row 9 is out of range; the store has 9 rows"), range.getMessage());
        }
        // a flipped byte inside chunk 1 (rows 4-7)
        byte[] orig = Files.readAllBytes(p);
        long inChunk1 = h.chunkOffset(1) + 10;
        patch(p, inChunk1, (byte) (orig[(int) inChunk1] ^ 0x40));
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            assertEquals(6 * 4, s.dense(new int[]{0, 1, 2, 3}).length, "other chunks still read");
            StoreFormatException e = assertThrows(StoreFormatException.class, () -> s.dense(new int[]{5}));
            assertTrue(e.getMessage().contains("checksum mismatch in chunk 1 (rows 4 to 7)"), e.getMessage());
            List<String> problems = s.verify();
            assertEquals(1, problems.size(), problems.toString());
        }
        Files.write(p, orig);
        patch(p, 0, (byte) 'X');
        StoreFormatException magic = assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
        assertTrue(magic.getMessage().contains("not a Distill4J soft-target store (magic 'X4JSTORE'"), magic.getMessage());
        Files.write(p, orig);
        patch(p, 8, (byte) 7);
        StoreFormatException version = assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
        assertTrue(version.getMessage().contains("format version 7 is not supported"), version.getMessage());
        Files.write(p, orig);
        patch(p, 20, (byte) 3); // k of a dense store: caught by the header checksum
        StoreFormatException header = assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
        assertTrue(header.getMessage().contains("header checksum mismatch"), header.getMessage());
        Files.write(p, java.util.Arrays.copyOf(orig, orig.length - 30));
        StoreFormatException cut = assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
        assertTrue(cut.getMessage().contains("truncated: " + (orig.length - 30) + " bytes, a complete store of 9 rows has "
                + orig.length), cut.getMessage());
        Files.write(p, java.util.Arrays.copyOf(orig, 30));
        StoreFormatException tiny = assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
        assertTrue(tiny.getMessage().contains("truncated"), tiny.getMessage());
    }

    /** What the writer accepts the reader reads: a provenance up to the cap, whatever its length; longer is refused when written. */
    @Test
    void everyProvenanceTheWriterAcceptsTheReaderReads(@TempDir Path tmp) throws IOException {
        for (int length : new int[]{100_000, StoreHeader.MAX_PROVENANCE_BYTES}) {
            int fill = length - "{\"teacher\":\"t\",\"description\":\"\"}".length(); // two-byte characters, then one odd byte
            String prov = "{\"teacher\":\"t\",\"description\":\"" + "é".repeat(fill / 2) + "x".repeat(fill % 2) + "\"}";
            assertEquals(length, prov.getBytes(java.nio.charset.StandardCharsets.UTF_8).length);
            Path p = tmp.resolve("prov-" + length + ".d4j");
            float[] all = values(6, 6 * 20);
            try (StoreWriter w = StoreWriter.open(p, dense6(prov))) {
                w.writeDense(all, 20);
                w.finish();
            }
            try (SoftTargetStore s = SoftTargetStore.open(p)) {
                assertEquals(prov, s.header().provenance(), "a provenance of " + length + " bytes reads back");
                assertEquals(all[6 * 19 + 5], s.dense(new int[]{19})[5], 0f);
                assertTrue(s.verify().isEmpty());
            }
        }
        String tooLong = "x".repeat(StoreHeader.MAX_PROVENANCE_BYTES + 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> dense6(tooLong));
        assertTrue(e.getMessage().contains("store provenance is 1048577 bytes (UTF-8), more than the 1048576 a store can hold"),
                e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> dense6("é".repeat(StoreHeader.MAX_PROVENANCE_BYTES / 2 + 1)),
                "the cap counts UTF-8 bytes, not characters");
    }

    /** The reader takes the header's declared length, within the cap and the file, or says what is wrong. */
    @Test
    void aDeclaredProvenanceLengthOutsideTheFileOrTheCapIsNamed(@TempDir Path tmp) throws IOException {
        Path p = complete(tmp);
        byte[] orig = Files.readAllBytes(p);
        record Case(int length, String message) {
        }
        for (Case c : List.of(new Case(-1, "corrupt header: it declares a provenance of -1 bytes, expected 0 to 1048576"),
                new Case(StoreHeader.MAX_PROVENANCE_BYTES + 1, "declares a provenance of 1048577 bytes, expected 0 to 1048576"),
                new Case(orig.length, "truncated: " + orig.length + " bytes, its header alone (with a provenance of " + orig.length
                        + " bytes) has " + (orig.length + 56)),
                new Case(PROV.length() + 1, "header checksum mismatch"))) {
            Files.write(p, orig);
            try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(0, c.length()), 48);
            }
            StoreFormatException e = assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p), "length " + c.length());
            assertTrue(e.getMessage().startsWith(p + ": ") && e.getMessage().contains(c.message()), e.getMessage());
        }
    }

    /**
     * The bytes of a complete dense f32 store, built in memory as store-format.md lays it out (the writer
     * syncs each chunk, which for tens of thousands of chunks takes minutes): row r holds r, -r, ....
     */
    static byte[] denseStoreBytes(StoreHeader h) {
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(h.completeSize())).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.put(h.encode());
        for (long c = 0; c < h.chunks(); c++) {
            int at = (int) h.chunkOffset(c);
            b.position(at);
            for (long r = c * h.chunkRows(); r < c * h.chunkRows() + h.rowsInChunk(c); r++) {
                for (int j = 0; j < h.vocab(); j++) {
                    b.putFloat(j % 2 == 0 ? r : -r);
                }
            }
            int n = b.position() - at;
            b.putInt(Crc32c.of(b.array(), at, n));
        }
        b.put(StoreFooter.encode(h.rows()));
        assertEquals(b.capacity(), b.position());
        return b.array();
    }

    /** More chunks than Linux allows mappings (vm.max_map_count, 65,530): read and verified through one window. */
    @Test
    void aStoreOfMoreChunksThanTheKernelMapsIsReadAndVerified(@TempDir Path tmp) throws IOException {
        StoreHeader h = dense(ValueCodec.F32, 2, 70_000, 1);
        Path p = tmp.resolve("tiny-chunks.d4j");
        Files.write(p, denseStoreBytes(h));
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            assertEquals(List.of(), s.verify());
            assertArrayEquals(new float[]{69_999, -69_999, 0, 0, 65_531, -65_531}, s.dense(new int[]{69_999, 0, 65_531}), 0f);
            assertEquals(1, s.windows(), "70,000 chunks of 12 bytes fit one window");
            assertEquals(1, s.mappedWindows());
        }
    }

    /** Windows of whole chunks (one when a chunk is larger than a window): every row reads, each chunk is checked alone. */
    @Test
    void smallWindowsReadEveryRowAndNameTheCorruptChunk(@TempDir Path tmp) throws IOException {
        StoreHeader h = dense(ValueCodec.F32, 3, 50, 4); // 13 chunks of 4 rows x 12 bytes + CRC: a stride of 52 bytes
        Path p = tmp.resolve("w.d4j");
        byte[] bytes = denseStoreBytes(h);
        int[] all = new int[50];
        for (int r = 0; r < 50; r++) {
            all[r] = 49 - r; // backwards, across every window
        }
        float[] want = new float[50 * 3];
        for (int i = 0; i < 50; i++) {
            int r = all[i];
            want[3 * i] = r;
            want[3 * i + 1] = -r;
            want[3 * i + 2] = r;
        }
        // window bytes -> windows: smaller than a chunk (one chunk each), 2.5 chunks (two each), the whole file (one)
        long[][] cases = {{10, 13}, {130, 7}, {52, 13}, {Integer.MAX_VALUE, 1}};
        for (long[] c : cases) {
            Files.write(p, bytes);
            try (SoftTargetStore s = SoftTargetStore.open(p, c[0])) {
                assertEquals(c[1], s.windows(), "window of " + c[0] + " bytes");
                assertEquals(0, s.mappedWindows(), "nothing is mapped before a row is read");
                assertArrayEquals(want, s.dense(all), 0f, "window of " + c[0] + " bytes");
                assertEquals(List.of(), s.verify());
                assertEquals(c[1], s.mappedWindows());
            }
            // a flipped byte in chunk 6 (rows 24-27), the first chunk of the fourth window of two chunks
            long at = h.chunkOffset(6) + 5;
            patch(p, at, (byte) (bytes[(int) at] ^ 0x01));
            try (SoftTargetStore s = SoftTargetStore.open(p, c[0])) {
                assertArrayEquals(new float[]{23, -23, 23, 28, -28, 28}, s.dense(new int[]{23, 28}), 0f, "the neighbours read");
                StoreFormatException e = assertThrows(StoreFormatException.class, () -> s.dense(new int[]{26}));
                assertTrue(e.getMessage().contains("checksum mismatch in chunk 6 (rows 24 to 27)"), e.getMessage());
                assertEquals(List.of(e.getMessage()), s.verify(), "window of " + c[0] + " bytes");
            }
        }
        assertThrows(IllegalArgumentException.class, () -> SoftTargetStore.open(p, 1L << 31));
    }

    @Test
    void manyThreadsReadOneStoreAndGetTheSameRows(@TempDir Path tmp) throws Exception {
        int vocab = 29;
        int rows = 500;
        Path p = tmp.resolve("shared.d4j");
        float[] all = values(8, rows * vocab);
        try (StoreWriter w = StoreWriter.open(p, dense(ValueCodec.BF16, vocab, rows, 16))) {
            w.writeDense(all, rows);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(p); SoftTargetStore other = SoftTargetStore.open(p)) {
            java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(6);
            List<java.util.concurrent.Future<Integer>> jobs = new java.util.ArrayList<>();
            for (int t = 0; t < 12; t++) {
                final long seed = t;
                final SoftTargetStore reader = t % 2 == 0 ? s : other; // two open handles on one file too
                jobs.add(pool.submit(() -> {
                    Random rng = new Random(seed);
                    int checked = 0;
                    for (int i = 0; i < 300; i++) {
                        int[] idx = {rng.nextInt(rows), rng.nextInt(rows), rng.nextInt(rows)};
                        float[] got = reader.dense(idx);
                        for (int j = 0; j < idx.length; j++) {
                            for (int c = 0; c < vocab; c++) {
                                if (got[j * vocab + c] != codec(ValueCodec.BF16, all[idx[j] * vocab + c])) {
                                    throw new AssertionError("row " + idx[j] + " class " + c);
                                }
                                checked++;
                            }
                        }
                    }
                    return checked;
                }));
            }
            for (java.util.concurrent.Future<Integer> f : jobs) {
                assertEquals(300 * 3 * vocab, f.get());
            }
            pool.shutdown();
        }
    }

    /**
     * Top-k rows the reader refuses are refused when written, naming the store file and row; a refused call writes nothing. The
     * format keeps top-k values finite: -Infinity (zero mass to the losses) is written as log(Float.MIN_VALUE). A row whose
     * entries hold more than one distribution's mass is refused too.
     */
    @Test
    void topKRowsWithInfiniteValuesOrRepeatedIdsAreRefused(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("t.d4j");
        try (StoreWriter w = StoreWriter.open(p, topk(100, 2, 5, 2))) {
            w.writeTopK(new int[]{3, 4, 5, 6}, new float[]{-0.1f, -2.5f, -0.5f, -1}, 2); // rows 0, 1: one complete chunk
            Object[][] bad = {
                    {new float[]{-0.1f, Float.NEGATIVE_INFINITY}, new int[]{1, 2}, "row 3, entry 1 (class 2) is -Infinity"},
                    {new float[]{Float.NaN, -1}, new int[]{1, 2}, "row 3, entry 0 (class 1) is NaN"},
                    {new float[]{-0.1f, Float.POSITIVE_INFINITY}, new int[]{1, 2}, "row 3, entry 1 (class 2) is Infinity"},
                    {new float[]{0.5f, -1}, new int[]{1, 2}, "row 3, entry 0 (class 1) is 0.5, expected a finite value <= 0"},
                    {new float[]{-1, -70_000}, new int[]{1, 2}, "row 3, entry 1 (class 2) is -70000.0, which overflows f16 to -Infinity"},
                    // 1e-4 passes the check on the float, but f16 rounds it up, beyond what the reader and training accept
                    {new float[]{1e-4f, -1}, new int[]{1, 2}, "row 3, entry 0 (class 1) is 1.0E-4, which f16 rounds to 1.00016594E-4, "
                            + "above the 1.0E-4 allowed"},
                    {new float[]{-0.1f, -2.5f}, new int[]{7, 7}, "top-k ids of row 3 repeat class 7"},
                    // each entry a log-probability, together more than one distribution's mass (logits taken for them)
                    {new float[]{-0.01f, -0.01f}, new int[]{1, 2}, "top-k log-probabilities of row 3: the entries' probabilities sum "
                            + "to 1.9801, expected at most 1 (within 0.01 for rounding)"},
            };
            for (Object[] b : bad) {
                // row 2 is fine; row 3 (the second of the call) is not
                float[] lps = {-0.2f, -2, ((float[]) b[0])[0], ((float[]) b[0])[1]};
                int[] ids = {8, 9, ((int[]) b[1])[0], ((int[]) b[1])[1]};
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> w.writeTopK(ids, lps, 2));
                assertTrue(e.getMessage().startsWith(p + ": ") && e.getMessage().contains((String) b[2]), e.getMessage());
                assertEquals(2, w.rowsWritten(), "nothing of a refused call is written");
            }
            // 5e-5 above 0 is rounding that training accepts too (up to 1e-4 as stored)
            w.writeTopK(new int[]{8, 9, 0, 99, 98, 97}, new float[]{-0.2f, -2, 5e-5f, -5, -0.7f, -103.27893f}, 3);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            SoftTargetStore.TopKRows r = s.topK(new int[]{2, 3, 4});
            assertArrayEquals(new int[]{8, 9, 0, 99, 98, 97}, r.ids(), "the refused rows left no trace");
            // what training checks
            org.distill4j.loss.LogitBatch.ofTopK(3, 100, new float[300], r.ids(), r.logProbs(), 2, null);
            assertTrue(s.verify().isEmpty());
        }
    }

    /** A chunk size far above the store's rows (--chunk-rows 100000000 for 1,000 rows) must not allocate the whole chunk. */
    @Test
    void theWriterBuffersAtMostTheStoresRows(@TempDir Path tmp) throws IOException {
        StoreHeader h = dense(ValueCodec.F16, 10, 1000, 100_000_000); // a 2 GB chunk, were it full
        float[] all = values(9, 10 * 1000);
        Path p = tmp.resolve("big-chunks.d4j");
        try (StoreWriter w = StoreWriter.open(p, h)) {
            assertEquals(1000 * 20 + 4, w.bufferBytes(), "1,000 rows of 20 bytes and the CRC, not 100,000,000 rows");
            w.writeDense(java.util.Arrays.copyOf(all, 10 * 400), 400);
        } // interrupted: the one chunk is not complete, nothing of it is on disk
        try (StoreWriter w = StoreWriter.open(p, h)) {
            assertEquals(0, w.rowsWritten());
            assertEquals(1000 * 20 + 4, w.bufferBytes(), "a resume buffers as little");
            w.writeDense(all, 1000);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            assertEquals(h.completeSize(), Files.size(p));
            assertEquals(codec(ValueCodec.F16, all[999 * 10 + 9]), s.dense(new int[]{999})[9], 0f);
            assertTrue(s.verify().isEmpty());
        }
        // several chunks, the last one shorter: each is written from the buffer with its CRC after the rows
        Path q = tmp.resolve("chunks.d4j");
        try (StoreWriter w = StoreWriter.open(q, dense(ValueCodec.F32, 10, 1000, 300))) {
            assertEquals(300 * 40 + 4, w.bufferBytes());
            w.writeDense(all, 1000);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(q)) {
            assertTrue(s.verify().isEmpty());
            assertArrayEquals(java.util.Arrays.copyOfRange(all, 10 * 899, 10 * 901), s.dense(new int[]{899, 900}), 0f);
        }
    }

    @Test
    void writerChecksItsInput(@TempDir Path tmp) throws IOException {
        try (StoreWriter w = StoreWriter.open(tmp.resolve("a.d4j"), topk(100, 2, 3, 2))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> w.writeTopK(new int[]{1, 100}, new float[]{-1, -2}, 1));
            assertTrue(e.getMessage().contains("top-k id 100 of row 0 (entry 1) is outside [0, 100)"), e.getMessage());
            IllegalArgumentException absent = assertThrows(IllegalArgumentException.class,
                    () -> w.writeTopK(new int[]{1, org.distill4j.loss.LogitBatch.ABSENT}, new float[]{-1, Float.NEGATIVE_INFINITY}, 1));
            assertTrue(absent.getMessage().contains("an absent slot") && absent.getMessage().contains("store the teacher before aligning it"),
                    absent.getMessage());
            assertThrows(IllegalStateException.class, () -> w.writeDense(new float[100], 1));
            IllegalStateException early = assertThrows(IllegalStateException.class, w::finish);
            assertTrue(early.getMessage().contains("has 0 of 3 rows"), early.getMessage());
        }
        Path done = complete(tmp);
        IllegalStateException again = assertThrows(IllegalStateException.class,
                () -> StoreWriter.open(done, dense(ValueCodec.F32, 6, 9, 4)));
        assertTrue(again.getMessage().contains("already holds a complete store"), again.getMessage());
    }

    /** A second finish() (or one after close()) says the writer is closed and leaves the finished store as it was. */
    @Test
    void finishingTwiceSaysTheWriterIsClosed(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("twice.d4j");
        float[] v = values(4, 54);
        try (StoreWriter w = StoreWriter.open(p, dense(ValueCodec.F32, 6, 9, 4))) {
            w.writeDense(v, 9);
            w.finish();
            byte[] finished = Files.readAllBytes(p);
            IllegalStateException e = assertThrows(IllegalStateException.class, w::finish);
            assertTrue(e.getMessage().contains("closed") && e.getMessage().contains(p.toString()), e.getMessage());
            assertArrayEquals(finished, Files.readAllBytes(p));
        }
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            assertArrayEquals(v, s.dense(new int[]{0, 1, 2, 3, 4, 5, 6, 7, 8}));
            assertTrue(s.verify().isEmpty());
        }
    }
    /**
     * A full disk (or a file size limit) while the header or the footer is written names the file and says the .partial
     * resumes: the failure used to come out as the system's bare words ("File too large"), naming no file.
     */
    @Test
    void aFailedHeaderOrFooterWriteNamesTheFile(@TempDir Path tmp) throws IOException {
        StoreHeader h = dense(ValueCodec.F32, 3, 4, 4);
        Path p = tmp.resolve("h.d4j");
        IOException header = assertThrows(IOException.class, () -> StoreWriter.open(p, h, c -> {
            FailingWriteChannel f = new FailingWriteChannel(c);
            f.failAfter(5);
            return f;
        }));
        assertTrue(header.getMessage().startsWith(StoreWriter.partialPath(p) + ": cannot write the header (No space left on device)"),
                header.getMessage());
        assertTrue(header.getMessage().contains("to resume"), header.getMessage());

        Path q = tmp.resolve("f.d4j");
        FailingWriteChannel[] channel = {null};
        try (StoreWriter w = StoreWriter.open(q, h, c -> channel[0] = new FailingWriteChannel(c))) {
            w.writeDense(values(3, 12), 4);
            channel[0].failAfter(0);
            IOException footer = assertThrows(IOException.class, w::finish);
            assertTrue(footer.getMessage().startsWith(StoreWriter.partialPath(q) + ": cannot write the footer (No space left on device)"),
                    footer.getMessage());
        }
        try (StoreWriter again = StoreWriter.open(q, h)) {
            assertEquals(4, again.rowsWritten(), "the rows stay for the resume");
            again.finish();
        }
    }

    /**
     * A store path under a regular file: "cannot create folder X: Y is a file", instead of the bare
     * FileAlreadyExistsException naming only Y.
     */
    @Test
    void aStorePathUnderAFileSaysTheFolderCannotBeCreated(@TempDir Path tmp) throws IOException {
        Path file = Files.writeString(tmp.resolve("afile"), "x");
        Path p = file.resolve("sub").resolve("s.d4j");
        IOException e = assertThrows(IOException.class, () -> StoreWriter.open(p, dense(ValueCodec.F32, 3, 4, 4)));
        assertTrue(e.getMessage().startsWith("cannot create folder " + p.getParent() + " for store " + p + ": " + file
                + " is a file, not a folder"), e.getMessage());
        assertFalse(Files.exists(StoreWriter.partialPath(p)));
    }

    /** A second writer's refusal is a {@link StoreBusyException}, an IllegalStateException a command can tell from a bug. */
    @Test
    void aSecondWritersRefusalIsAStoreBusyException(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("busy.d4j");
        try (StoreWriter first = StoreWriter.open(p, dense(ValueCodec.F32, 3, 4, 4))) {
            StoreBusyException e = assertThrows(StoreBusyException.class, () -> StoreWriter.open(p, dense(ValueCodec.F32, 3, 4, 4)));
            assertTrue(e.getMessage().startsWith(StoreWriter.partialPath(p) + " is being written by another writer"), e.getMessage());
        }
    }
}
