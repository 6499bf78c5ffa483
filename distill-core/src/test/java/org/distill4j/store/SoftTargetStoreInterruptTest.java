package org.distill4j.store;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A store is read by many jobs at once, and a service cancels a job by interrupting its thread. An interrupted reader
 * must neither fail with a made-up corruption message nor close the store under the other readers: a {@code FileChannel}
 * closes itself when a thread with its interrupt status set enters one of its I/O operations.
 */
class SoftTargetStoreInterruptTest {
    private static final int V = 5;
    private static final int ROWS = 37; // one row per chunk: every row read is a chunk's first read

    @AfterEach
    void clearInterrupt() {
        Thread.interrupted();
    }

    private static Path store(Path tmp, float[] values) throws Exception {
        Path p = tmp.resolve("s.d4j");
        try (StoreWriter w = StoreWriter.open(p, SoftTargetStoreTest.dense(ValueCodec.F32, V, ROWS, 1))) {
            w.writeDense(values, ROWS);
            w.finish();
        }
        return p;
    }

    private static float[] rows(float[] all, int... rows) {
        float[] out = new float[rows.length * V];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(all, rows[i] * V, out, i * V, V);
        }
        return out;
    }

    @Test
    void anInterruptedReaderGetsItsRowsAndLeavesTheStoreOpenForTheOthers(@TempDir Path tmp) throws Exception {
        float[] values = SoftTargetStoreTest.values(3, ROWS * V);
        try (SoftTargetStore s = SoftTargetStore.open(store(tmp, values))) {
            assertArrayEquals(rows(values, 0), s.dense(new int[]{0}), 0f);

            Thread.currentThread().interrupt();
            // before: "chunk 7 (rows 7 to 7): cannot read the file's size: ClosedByInterruptException", and the store closed
            assertArrayEquals(rows(values, 7, 30), s.dense(new int[]{7, 30}), 0f);
            assertTrue(Thread.interrupted(), "the reader's interrupt status is kept");

            // another job's thread, not interrupted, reads chunks not read before from the same store
            AtomicReference<Throwable> other = new AtomicReference<>();
            float[][] got = new float[1][];
            Thread t = new Thread(() -> {
                try {
                    got[0] = s.dense(new int[]{12, 36, 1});
                } catch (Throwable e) {
                    other.set(e);
                }
            });
            t.start();
            t.join();
            assertNull(other.get(), () -> "the other reader failed: " + other.get());
            assertArrayEquals(rows(values, 12, 36, 1), got[0], 0f);
        }
    }

    @Test
    void verifyOnAnInterruptedThreadChecksEveryChunkAndKeepsTheStoreOpen(@TempDir Path tmp) throws Exception {
        float[] values = SoftTargetStoreTest.values(4, ROWS * V);
        try (SoftTargetStore s = SoftTargetStore.open(store(tmp, values))) {
            Thread.currentThread().interrupt();
            assertEquals(List.of(), s.verify());
            assertTrue(Thread.interrupted(), "the interrupt status is kept");
            assertArrayEquals(rows(values, 20), s.dense(new int[]{20}), 0f);
        }
    }

    @Test
    void aTopKStoreReadOnAnInterruptedThreadStaysOpen(@TempDir Path tmp) throws Exception {
        Path p = tmp.resolve("k.d4j");
        int k = 2;
        int[] ids = new int[ROWS * k];
        for (int r = 0; r < ROWS; r++) {
            ids[r * k] = r % V;
            ids[r * k + 1] = (r + 1) % V;
        }
        float[] lps = SoftTargetStoreTest.logProbs(5, ROWS, k);
        try (StoreWriter w = StoreWriter.open(p, SoftTargetStoreTest.topk(V, k, ROWS, 1))) {
            w.writeTopK(ids, lps, ROWS);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            Thread.currentThread().interrupt();
            SoftTargetStore.TopKRows r = s.topK(new int[]{9});
            assertTrue(Thread.interrupted());
            assertArrayEquals(new int[]{9 % V, 10 % V}, r.ids());
            assertArrayEquals(new float[]{SoftTargetStoreTest.codec(ValueCodec.F16, lps[9 * k]),
                    SoftTargetStoreTest.codec(ValueCodec.F16, lps[9 * k + 1])}, r.logProbs(), 0f);
            assertArrayEquals(new int[]{10 % V, 11 % V, 11 % V, 12 % V}, s.topK(new int[]{10, 11}).ids(), "still open");
        }
    }

    @Test
    void aStoreOpenedOnAnInterruptedThreadOpens(@TempDir Path tmp) throws Exception {
        // an import or labeling job that meets its store complete opens it to compare headers; an interrupt arriving then
        // made the open fail with a bare ClosedByInterruptException (an IOException without a message)
        float[] values = SoftTargetStoreTest.values(6, ROWS * V);
        Path p = store(tmp, values);
        Thread.currentThread().interrupt();
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            assertTrue(Thread.currentThread().isInterrupted(), "the interrupt status is kept for the caller");
            assertEquals(ROWS, s.rows());
            assertArrayEquals(rows(values, 4, 33), s.dense(new int[]{4, 33}), 0f);
        }
        assertTrue(Thread.interrupted());
        // and a store that is not one still says what is wrong with it, not that the open was interrupted
        java.nio.file.Files.write(p, new byte[]{1, 2, 3}, java.nio.file.StandardOpenOption.TRUNCATE_EXISTING);
        Thread.currentThread().interrupt();
        StoreFormatException e = org.junit.jupiter.api.Assertions.assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
        assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
        assertTrue(Thread.interrupted());
    }
}
