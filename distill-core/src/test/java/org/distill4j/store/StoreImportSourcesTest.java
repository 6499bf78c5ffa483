package org.distill4j.store;

import org.distill4j.data.Dataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Random;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What an import records of its source (the content id, the CRC32C and size of each file, the description, the header's
 * shape and kind) and how each source that does not fit is refused before anything is written, naming the file.
 */
class StoreImportSourcesTest {
    private static final Dataset DATA = LabelerTest.data(); // 200 samples of 7 classes
    private static final int N = 200;
    private static final int V = 7;

    private static long crc(Path f) throws Exception {
        CRC32C c = new CRC32C();
        c.update(Files.readAllBytes(f));
        return c.getValue();
    }

    private static StoreHeader header(Path store) throws Exception {
        try (SoftTargetStore s = SoftTargetStore.open(store)) {
            return s.header();
        }
    }

    /** Rows of k entries: ids (r + 2j) mod V, log-probabilities of random probabilities summing below 1. */
    private static Object[] topK(int k, long seed) {
        Random rng = new Random(seed);
        int[] ids = new int[N * k];
        float[] lps = new float[ids.length];
        for (int r = 0; r < N; r++) {
            for (int j = 0; j < k; j++) {
                ids[r * k + j] = (r + 2 * j) % V;
                lps[r * k + j] = (float) Math.log(rng.nextDouble() / (k + 1));
            }
        }
        return new Object[]{ids, lps};
    }

    @Test
    void eachSourceIsRecordedByItsContent(@TempDir Path tmp) throws Exception {
        StoreImport.Options o = StoreImport.Options.defaults().withCodec(ValueCodec.F32).withChunkRows(64);
        Random rng = new Random(5);
        float[] z = new float[N * V];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) (rng.nextGaussian() * 2);
        }
        Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), z, N, V);
        Labeler.Result r = StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, tmp.resolve("d.d4j"), o, null);
        assertEquals(N, r.rows());
        assertEquals(0, r.resumedFrom());
        assertFalse(r.alreadyComplete());
        assertTrue(r.seconds() > 0 && r.rowsPerSecond() > 0, r.toString());
        StoreHeader h = header(tmp.resolve("d.d4j"));
        assertEquals(StoreHeader.Layout.DENSE, h.layout());
        assertEquals(StoreHeader.ValueKind.LOGITS, h.values());
        assertEquals(V, h.vocab());
        assertEquals(N, h.rows());
        assertEquals(64, h.chunkRows());
        assertEquals("npy-" + Long.toHexString(crc(npy)), StoredTeacher.teacherId(h.provenance()));
        assertEquals(String.format(Locale.ROOT, "CRC32C %08x, %d bytes", crc(npy), Files.size(npy)), StoreImport.sourceOf(h.provenance()));

        Object[] t = topK(3, 6);
        Path ids = NpyArrayTest.writeI64(tmp.resolve("ids.npy"), (int[]) t[0], N, 3);
        Path lps = NpyArrayTest.writeF32(tmp.resolve("lps.npy"), (float[]) t[1], N, 3);
        StoreImport.topK(ids, lps, DATA, tmp.resolve("n.d4j"), o.withTopK(2), null);
        h = header(tmp.resolve("n.d4j"));
        assertEquals(StoreHeader.Layout.TOP_K, h.layout());
        assertEquals(StoreHeader.ValueKind.LOG_PROBS, h.values());
        assertEquals(2, h.k());
        assertEquals(V, h.vocab());
        assertEquals("npy-" + Long.toHexString(crc(ids)) + "-" + Long.toHexString(crc(lps)), StoredTeacher.teacherId(h.provenance()));
        assertEquals(String.format(Locale.ROOT, "ids CRC32C %08x, %d bytes and log-probabilities CRC32C %08x, %d bytes", crc(ids),
                Files.size(ids), crc(lps), Files.size(lps)), StoreImport.sourceOf(h.provenance()));
        assertTrue(h.provenance().contains("imported: npy top-2 of 3"), h.provenance());

        StringBuilder b = new StringBuilder();
        for (int row = 0; row < N; row++) {
            b.append(String.format(Locale.ROOT, "{\"ids\": [%d, %d], \"logprobs\": [-0.5, -1.5]}%n", row % V, (row + 3) % V));
        }
        Path jsonl = Files.writeString(tmp.resolve("t.jsonl"), b);
        StoreImport.topK(jsonl, DATA, tmp.resolve("j.d4j"), o.withVocab(11).withTeacherId("llm"), null);
        h = header(tmp.resolve("j.d4j"));
        assertEquals(11, h.vocab());
        assertEquals(2, h.k());
        assertEquals("llm", StoredTeacher.teacherId(h.provenance()));
        assertEquals(String.format(Locale.ROOT, "CRC32C %08x, %d bytes", crc(jsonl), Files.size(jsonl)), StoreImport.sourceOf(h.provenance()));
        assertTrue(h.provenance().contains("imported: jsonl top-2"), h.provenance());
        StoreImport.topK(jsonl, DATA, tmp.resolve("j2.d4j"), o, null);
        assertEquals("jsonl-" + Long.toHexString(crc(jsonl)), StoredTeacher.teacherId(header(tmp.resolve("j2.d4j")).provenance()));

        Path probs = NpyArrayTest.writeF32(tmp.resolve("p.npy"), new float[N * 2], N, 2);
        float[] half = new float[N * 2];
        java.util.Arrays.fill(half, 0.5f);
        NpyArrayTest.writeF32(probs, half, N, 2);
        StoreImport.dense(probs, StoreImport.Values.PROBABILITIES, DATA, tmp.resolve("p.d4j"), o, null);
        h = header(tmp.resolve("p.d4j"));
        assertEquals(StoreHeader.ValueKind.LOG_PROBS, h.values(), "probabilities are stored as log-probabilities");
        assertEquals(2, h.vocab(), "the array's classes, not the dataset's");
        assertTrue(h.provenance().contains("imported: npy <f4 (200, 2), probabilities"), h.provenance());
    }

    /** Sources that do not fit are refused naming the file and what was expected; nothing is left behind. */
    @Test
    void sourcesThatDoNotFitAreRefusedNamingTheFile(@TempDir Path tmp) throws Exception {
        StoreImport.Options o = StoreImport.Options.defaults().withChunkRows(16);
        Object[] t = topK(3, 7);
        Path ids = NpyArrayTest.writeI64(tmp.resolve("ids.npy"), (int[]) t[0], N, 3);
        Path lps = NpyArrayTest.writeF32(tmp.resolve("lps.npy"), (float[]) t[1], N, 3);
        Path out = tmp.resolve("o.d4j");
        assertRefused(StoreFormatException.class, ids + ": dtype '<i8' holds integers; expected float log-probabilities",
                () -> StoreImport.topK(ids, ids, DATA, out, o, null), out);
        assertRefused(StoreFormatException.class, lps + ": dtype '<f4' holds floats; expected integer class ids",
                () -> StoreImport.topK(lps, lps, DATA, out, o, null), out);
        Path lps2 = NpyArrayTest.writeF32(tmp.resolve("lps2.npy"), java.util.Arrays.copyOf((float[]) t[1], N * 2), N, 2);
        assertRefused(IllegalArgumentException.class, "ids " + ids + " has shape (200, 3) but log-probabilities " + lps2 + " has shape "
                + "(200, 2); expected the same shape", () -> StoreImport.topK(ids, lps2, DATA, out, o, null), out);
        Path ids199 = NpyArrayTest.writeI64(tmp.resolve("ids199.npy"), java.util.Arrays.copyOf((int[]) t[0], 199 * 3), 199, 3);
        Path lps199 = NpyArrayTest.writeF32(tmp.resolve("lps199.npy"), java.util.Arrays.copyOf((float[]) t[1], 199 * 3), 199, 3);
        assertRefused(IllegalArgumentException.class, ids199 + ": (199, 3) gives 199 rows, but the dataset synthetic has 200 samples; "
                + "expected one row per sample, in dataset order", () -> StoreImport.topK(ids199, lps199, DATA, out, o, null), out);
        assertRefused(IllegalArgumentException.class, ids + ": 3 entries per row, fewer than the 4 asked for",
                () -> StoreImport.topK(ids, lps, DATA, out, o.withTopK(4), null), out);
        assertRefused(IllegalArgumentException.class, ids + ": top-3 rows, expected 1 <= k <= 2 (the vocabulary)",
                () -> StoreImport.topK(ids, lps, DATA, out, o.withVocab(2), null), out);
        float[] z = new float[N * V];
        Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), z, N, V);
        assertRefused(IllegalArgumentException.class, "a dense import keeps every class; topK must be 0, got 3",
                () -> StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o.withTopK(3), null), out);
        assertRefused(IllegalArgumentException.class, npy + ": shape (200, 7) has 7 values per row, expected 6 (the vocabulary asked for)",
                () -> StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o.withVocab(6), null), out);
        assertRefused(StoreFormatException.class, ids + ": dtype '<i8' holds integers; expected float16/32/64 log-probs",
                () -> StoreImport.dense(ids, StoreImport.Values.LOG_PROBS, DATA, out, o, null), out);
        // JSON Lines: k from the first row, ids checked against the vocabulary; a first row of no entries is no top-k
        StringBuilder b = new StringBuilder();
        for (int r = 0; r < N; r++) {
            b.append("{\"ids\": [1, 2, 3], \"logprobs\": [-1, -2, -3]}\n");
        }
        Path jsonl = Files.writeString(tmp.resolve("t.jsonl"), b);
        assertRefused(IllegalArgumentException.class, jsonl + " line 1, entry 1: class id 2, expected 0 to 1 (vocabulary of 2; a larger "
                + "vocabulary is set with vocab / --vocab)", () -> StoreImport.topK(jsonl, DATA, out, o.withVocab(2), null), out);
        Path empty = Files.writeString(tmp.resolve("e.jsonl"), "{\"ids\": [], \"logprobs\": []}\n".repeat(N));
        assertRefused(IllegalArgumentException.class, empty + " line 1: the first row has no entries (\"ids\" and \"logprobs\" are "
                + "empty); expected at least 1: without a top-k the first row sets how many entries every row holds",
                () -> StoreImport.topK(empty, DATA, out, o, null), out);
        assertRefused(IllegalArgumentException.class, jsonl + " line 1: 3 entries, expected at least 4 (every row needs k entries; "
                + "import with a smaller top-k)", () -> StoreImport.topK(jsonl, DATA, out, o.withTopK(4), null), out);
    }

    /**
     * Groups of rows that do not divide the source (a last group shorter than the others) import every row as it is, for
     * each kind of source; a top-k as large as the vocabulary is taken.
     */
    @Test
    void aShortLastGroupAndKEqualToTheVocabulary(@TempDir Path tmp) throws Exception {
        int before = StoreImport.valuesPerRead;
        StoreImport.valuesPerRead = V * 30 + 3; // dense: groups of 30 rows, 200 = 6 x 30 + 20
        try {
            StoreImport.Options o = StoreImport.Options.defaults().withCodec(ValueCodec.F32).withChunkRows(64);
            Random rng = new Random(9);
            float[] z = new float[N * V];
            for (int i = 0; i < z.length; i++) {
                z[i] = (float) (rng.nextGaussian() * 3);
            }
            Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), z, N, V);
            StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, tmp.resolve("d.d4j"), o, null);
            int[] all = java.util.stream.IntStream.range(0, N).toArray();
            try (SoftTargetStore s = SoftTargetStore.open(tmp.resolve("d.d4j"))) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(z, s.dense(all), 0f);
            }
            // top-k of all 7 classes, each row a random distribution, ids shuffled: groups of 30 rows (213 / 7)
            int[] ids = new int[N * V];
            float[] lps = new float[N * V];
            StringBuilder b = new StringBuilder();
            for (int r = 0; r < N; r++) {
                java.util.List<Integer> order = new java.util.ArrayList<>(java.util.List.of(0, 1, 2, 3, 4, 5, 6));
                java.util.Collections.shuffle(order, rng);
                double[] e = new double[V];
                double sum = 0;
                for (int j = 0; j < V; j++) {
                    e[j] = Math.exp(rng.nextGaussian() * 2);
                    sum += e[j];
                }
                StringBuilder bi = new StringBuilder();
                StringBuilder bl = new StringBuilder();
                for (int j = 0; j < V; j++) {
                    ids[r * V + j] = order.get(j);
                    lps[r * V + j] = (float) Math.log(e[j] / sum);
                    bi.append(j == 0 ? "" : ", ").append(order.get(j));
                    bl.append(j == 0 ? "" : ", ").append(lps[r * V + j]);
                }
                b.append("{\"ids\": [").append(bi).append("], \"logprobs\": [").append(bl).append("]}\n");
            }
            Path idsNpy = NpyArrayTest.writeI64(tmp.resolve("ids.npy"), ids, N, V);
            Path lpsNpy = NpyArrayTest.writeF32(tmp.resolve("lps.npy"), lps, N, V);
            Path jsonl = Files.writeString(tmp.resolve("t.jsonl"), b);
            StoreImport.topK(idsNpy, lpsNpy, DATA, tmp.resolve("n.d4j"), o, null);
            StoreImport.topK(jsonl, DATA, tmp.resolve("j.d4j"), o.withTopK(V), null);
            for (String store : new String[]{"n.d4j", "j.d4j"}) {
                try (SoftTargetStore s = SoftTargetStore.open(tmp.resolve(store))) {
                    assertEquals(V, s.header().k());
                    SoftTargetStore.TopKRows rows = s.topK(all);
                    for (int r = 0; r < N; r++) {
                        float last = Float.POSITIVE_INFINITY;
                        boolean[] seen = new boolean[V];
                        for (int j = 0; j < V; j++) {
                            int id = rows.ids()[r * V + j];
                            int at = -1;
                            for (int q = 0; q < V; q++) {
                                if (ids[r * V + q] == id) {
                                    at = q;
                                }
                            }
                            assertEquals(lps[r * V + at], rows.logProbs()[r * V + j], 0f, store + " row " + r + " entry " + j);
                            assertTrue(rows.logProbs()[r * V + j] <= last, store + " row " + r + ": most probable first");
                            assertFalse(seen[id]);
                            seen[id] = true;
                            last = rows.logProbs()[r * V + j];
                        }
                    }
                }
            }
        } finally {
            StoreImport.valuesPerRead = before;
        }
    }

    /** Without a top-k, k is the first row's count: a last row of another count is the one named. */
    @Test
    void kIsTheFirstRowsCountNotTheLasts(@TempDir Path tmp) throws Exception {
        StringBuilder b = new StringBuilder();
        for (int r = 0; r < N; r++) {
            b.append(r == N - 1 ? "{\"ids\": [1, 2], \"logprobs\": [-1, -2]}\n" : "{\"ids\": [1, 2, 3], \"logprobs\": [-1, -2, -3]}\n");
        }
        Path jsonl = Files.writeString(tmp.resolve("t.jsonl"), b);
        Path out = tmp.resolve("o.d4j");
        assertRefused(IllegalArgumentException.class, jsonl + " line 200: 2 entries, but the first row has 3; every row needs the same "
                + "count (or give top-k to keep each row's k most probable entries)",
                () -> StoreImport.topK(jsonl, DATA, out, StoreImport.Options.defaults(), null), out);
    }

    /** A source that grows while it is imported is refused even when its modification time is set back. */
    @Test
    void aSourceThatChangesSizeButNotTimeIsRefused(@TempDir Path tmp) throws Exception {
        Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), new float[N * V], N, V);
        java.nio.file.attribute.FileTime time = Files.getLastModifiedTime(npy);
        Path out = tmp.resolve("z.d4j");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA,
                out, StoreImport.Options.defaults().withChunkRows(8), rows -> {
                    try {
                        Files.write(npy, new byte[]{1}, java.nio.file.StandardOpenOption.APPEND);
                        Files.setLastModifiedTime(npy, time);
                    } catch (java.io.IOException x) {
                        throw new java.io.UncheckedIOException(x);
                    }
                }));
        assertEquals(npy + " changed while it was being imported; import it again once it is complete", e.getMessage());
        assertFalse(Files.exists(out), "not finished");
    }

    /** An import on an interrupted thread is cancelled before it opens its source (even one that is not there). */
    @Test
    void anInterruptedThreadIsCancelledBeforeTheSourceIsOpened(@TempDir Path tmp) {
        Path absent = tmp.resolve("absent");
        Path out = tmp.resolve("o.d4j");
        java.util.List<org.junit.jupiter.api.function.Executable> calls = java.util.List.of(
                () -> StoreImport.dense(absent, StoreImport.Values.LOGITS, DATA, out, StoreImport.Options.defaults(), null),
                () -> StoreImport.topK(absent, DATA, out, StoreImport.Options.defaults(), null),
                () -> StoreImport.topK(absent, absent, DATA, out, StoreImport.Options.defaults(), null));
        for (org.junit.jupiter.api.function.Executable call : calls) {
            Thread.currentThread().interrupt();
            try {
                assertThrows(java.util.concurrent.CancellationException.class, call);
                assertTrue(Thread.currentThread().isInterrupted(), "the interrupt status is kept");
            } finally {
                Thread.interrupted();
            }
        }
        assertThrows(java.nio.file.NoSuchFileException.class, calls.get(0), "not interrupted: the missing source is named");
    }

    /**
     * Progress moves forward and ends at every row, also for JSON Lines whose last group of rows is short; a resumed
     * import's rate counts the rows it wrote, over the seconds it took.
     */
    @Test
    void progressEndsAtEveryRowAndTheRateCountsTheRowsWritten(@TempDir Path tmp) throws Exception {
        int before = StoreImport.valuesPerRead;
        StoreImport.valuesPerRead = 2 * 30; // JSON Lines of 2 entries: groups of 30 rows, the last of 20
        try {
            StringBuilder b = new StringBuilder();
            for (int r = 0; r < N; r++) {
                b.append(String.format(Locale.ROOT, "{\"ids\": [%d, %d], \"logprobs\": [-0.5, -1.5]}%n", r % V, (r + 3) % V));
            }
            Path jsonl = Files.writeString(tmp.resolve("t.jsonl"), b);
            StoreImport.Options o = StoreImport.Options.defaults().withChunkRows(64);
            java.util.List<Long> told = new java.util.ArrayList<>();
            Labeler.Result whole = StoreImport.topK(jsonl, DATA, tmp.resolve("w.d4j"), o, told::add);
            assertEquals(Long.valueOf(N), told.get(told.size() - 1), "progress ends at every row: " + told);
            for (int i = 1; i < told.size(); i++) {
                assertTrue(told.get(i) > told.get(i - 1), "progress only moves forward: " + told);
            }
            assertTrue(whole.seconds() > 0 && whole.seconds() < 600, "seconds " + whole.seconds());
            assertEquals(N / whole.seconds(), whole.rowsPerSecond(), 1e-9 * whole.rowsPerSecond());

            Path cut = tmp.resolve("c.d4j");
            assertThrows(IllegalStateException.class, () -> StoreImport.topK(jsonl, DATA, cut, o, rows -> {
                if (rows >= 64) {
                    throw new IllegalStateException("killed");
                }
            }));
            Labeler.Result r = StoreImport.topK(jsonl, DATA, cut, o, null);
            assertEquals(64, r.resumedFrom());
            assertTrue(r.seconds() > 0 && r.seconds() < 600, "seconds " + r.seconds());
            assertEquals((N - 64) / r.seconds(), r.rowsPerSecond(), 1e-9 * r.rowsPerSecond(), "the rows this run wrote, per second");
            assertArrayEquals(Files.readAllBytes(tmp.resolve("w.d4j")), Files.readAllBytes(cut));
        } finally {
            StoreImport.valuesPerRead = before;
        }
    }

    /** A complete store at the path is opened as the reader opens it: a damaged one is named, not taken as done. */
    @Test
    void aDamagedCompleteStoreIsNotTakenAsDone(@TempDir Path tmp) throws Exception {
        Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), new float[N * V], N, V);
        Path out = tmp.resolve("z.d4j");
        StoreImport.Options o = StoreImport.Options.defaults().withChunkRows(16);
        StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o, null);
        assertTrue(StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o, null).alreadyComplete());
        byte[] all = Files.readAllBytes(out);
        Files.write(out, java.util.Arrays.copyOf(all, all.length - 1));
        Exception e = assertThrows(Exception.class, () -> StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o, null));
        assertTrue(e.getMessage().contains(out.toString()), e.toString());
    }

    private static void assertRefused(Class<? extends Exception> type, String message, org.junit.jupiter.api.function.Executable call,
                                      Path out) {
        Exception e = assertThrows(type, call);
        assertEquals(message, e.getMessage());
        assertFalse(Files.exists(out) || Files.exists(StoreWriter.partialPath(out)), "nothing written for: " + message);
    }
}
