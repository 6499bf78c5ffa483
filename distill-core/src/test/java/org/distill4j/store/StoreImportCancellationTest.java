package org.distill4j.store;

import org.distill4j.data.Dataset;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.function.LongConsumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An import cancelled by interrupting its thread stops before its next group of rows with a {@link CancellationException}
 * (not an I/O error advising to free disk space), keeps the thread's interrupt status, and leaves its {@code .partial} for
 * the same call to resume into the store an uninterrupted import writes; as {@link LabelerCancellationTest} for labeling.
 */
class StoreImportCancellationTest {
    private static final Dataset DATA = LabelerTest.data(); // 200 samples of 7 classes
    private static final int V = 7;
    private static final StoreImport.Options OPTIONS = StoreImport.Options.defaults().withChunkRows(30).withTeacherId("teacher-x");

    /** The three sources: a dense .npy, JSON Lines and a pair of top-k .npy arrays. */
    private enum Kind { DENSE, JSONL, NPY_TOPK }

    @BeforeEach
    void readInSmallGroups() {
        StoreImport.valuesPerRead = 7 * 20; // 20-row groups of V = 7 (10 of the top-k .npy's 2 columns): several per import
    }

    @AfterEach
    void restore() {
        StoreImport.valuesPerRead = 1 << 22;
        Thread.interrupted();
    }

    private static Labeler.Result run(Kind kind, Path dir, Path out, LongConsumer progress) throws Exception {
        return switch (kind) {
            case DENSE -> StoreImport.dense(dir.resolve("z.npy"), StoreImport.Values.LOGITS, DATA, out, OPTIONS, progress);
            case JSONL -> StoreImport.topK(dir.resolve("t.jsonl"), DATA, out, OPTIONS, progress);
            case NPY_TOPK -> StoreImport.topK(dir.resolve("ids.npy"), dir.resolve("lps.npy"), DATA, out, OPTIONS, progress);
        };
    }

    private static void sources(Path dir) throws Exception {
        Random rng = new Random(8);
        float[] z = new float[DATA.size() * V];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) (rng.nextGaussian() * 3);
        }
        NpyArrayTest.writeF32(dir.resolve("z.npy"), z, DATA.size(), V);
        StringBuilder b = new StringBuilder();
        int[] ids = new int[DATA.size() * 2];
        float[] lps = new float[DATA.size() * 2];
        for (int r = 0; r < DATA.size(); r++) {
            double a = Math.log(0.6 * rng.nextDouble());
            b.append(String.format(Locale.ROOT, "{\"ids\": [%d, %d], \"logprobs\": [%s, -3.5]}%n", r % V, (r + 1) % V, a));
            ids[2 * r] = r % V;
            ids[2 * r + 1] = (r + 1) % V;
            lps[2 * r] = (float) a;
            lps[2 * r + 1] = -3.5f;
        }
        Files.writeString(dir.resolve("t.jsonl"), b);
        NpyArrayTest.writeI64(dir.resolve("ids.npy"), ids, DATA.size(), 2);
        NpyArrayTest.writeF32(dir.resolve("lps.npy"), lps, DATA.size(), 2);
    }

    @Test
    void anInterruptStopsTheImportBeforeItsNextGroupAndTheSameCallResumes(@TempDir Path tmp) throws Exception {
        sources(tmp);
        for (Kind kind : Kind.values()) {
            Path whole = tmp.resolve(kind + "-whole.d4j");
            run(kind, tmp, whole, null);

            Path out = tmp.resolve(kind + ".d4j");
            long[] told = {0, 0}; // calls, the rows on disk at the last call
            // interrupted once the first chunk (30 rows) is on disk, as a service cancelling the job would
            LongConsumer interrupting = rows -> {
                told[0]++;
                told[1] = rows;
                Thread.currentThread().interrupt();
            };
            // before: the import read on and failed at the next chunk write with "cannot write chunk 1
            // (ClosedByInterruptException) ... once there is room (free disk space, or raise the file size limit)"
            CancellationException e = assertThrows(CancellationException.class, () -> run(kind, tmp, out, interrupting), kind.name());
            assertTrue(Thread.interrupted(), kind + ": the interrupt status is kept for the caller");
            assertEquals(1, told[0], kind + ": no group of rows after the interrupt");
            assertTrue(e.getMessage().contains(out.toString()), e.getMessage());
            assertTrue(Files.exists(StoreWriter.partialPath(out)), kind + ": the partial store is kept for a resume");
            assertFalse(Files.exists(out));

            Labeler.Result r = run(kind, tmp, out, null);
            assertEquals(told[1], r.resumedFrom(), kind + ": resumed after the complete chunks");
            assertTrue(r.resumedFrom() > 0 && r.resumedFrom() < DATA.size(), kind + ": resumed at " + r.resumedFrom());
            assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(out), kind + ": resumed = uninterrupted, byte for byte");
        }
    }

    @Test
    void aThreadInterruptedBeforeTheImportWritesNothing(@TempDir Path tmp) throws Exception {
        sources(tmp);
        for (Kind kind : Kind.values()) {
            Path out = tmp.resolve(kind + ".d4j");
            long[] told = {0};
            Thread.currentThread().interrupt();
            assertThrows(CancellationException.class, () -> run(kind, tmp, out, rows -> told[0]++), kind.name());
            assertTrue(Thread.interrupted(), kind + ": the interrupt status is kept for the caller");
            assertEquals(0, told[0]);
            assertFalse(Files.exists(StoreWriter.partialPath(out)), kind.name());
            assertFalse(Files.exists(out), kind.name());
        }
    }
}
