package org.distill4j.store;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.teacher.SparseTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.TopKTeacher;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Importing teacher outputs made elsewhere (.npy, JSON Lines) into stores that train like labeled ones. */
class StoreImportTest {
    /** 200 samples of 7 classes (LabelerTest's data), so imports can be compared with labeling runs. */
    private static final Dataset DATA = LabelerTest.data();
    private static final int V = 7;

    /** Fresh random logits, some extreme, for every sample. */
    private static float[] logits(long seed) {
        Random rng = new Random(seed);
        float[] z = new float[DATA.size() * V];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) (rng.nextGaussian() * 3);
        }
        z[3] = 1e4f;
        z[V * 5 + 2] = -1e4f;
        return z;
    }

    private static StoreImport.Options f32(int chunkRows) {
        return StoreImport.Options.defaults().withCodec(ValueCodec.F32).withChunkRows(chunkRows);
    }

    @Test
    void denseLogitsComeBackBitForBit(@TempDir Path tmp) throws Exception {
        float[] z = logits(1);
        Path npy = NpyArrayTest.writeF32(tmp.resolve("logits.npy"), z, DATA.size(), V);
        Labeler.Result r = StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, tmp.resolve("s.d4j"), f32(37), null);
        assertEquals(200, r.rows());
        assertFalse(r.alreadyComplete());
        try (SoftTargetStore s = SoftTargetStore.open(tmp.resolve("s.d4j"))) {
            assertEquals(StoreHeader.ValueKind.LOGITS, s.header().values());
            assertTrue(s.verify().isEmpty());
            StoredTeacher t = StoredTeacher.of(s, null);
            int[] idx = {0, 5, 199, 36, 37};
            float[] want = new float[idx.length * V];
            for (int i = 0; i < idx.length; i++) {
                System.arraycopy(z, idx[i] * V, want, i * V, V);
            }
            assertArrayEquals(want, t.outputs(Batch.of(DATA, idx)), 0f);
            assertTrue(t.serves(DATA), "the store serves the dataset it was imported for");
            assertFalse(t.serves(DATA.shuffled(3)), "and no other");
            String id = StoredTeacher.teacherId(s.header().provenance());
            assertTrue(id.startsWith("npy-"), id);
            assertTrue(s.header().provenance().contains("imported: npy <f4 (200, 7), logits"), s.header().provenance());
        }
        assertTrue(StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, tmp.resolve("s.d4j"), f32(37), null).alreadyComplete());
        // a changed source gets another content id, so the complete store is not taken for it
        z[100] += 1;
        NpyArrayTest.writeF32(npy, z, DATA.size(), V);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, tmp.resolve("s.d4j"), f32(37), null));
        assertTrue(e.getMessage().contains("already holds a store with other settings or from another source")
                && e.getMessage().contains("different teacher"), e.getMessage());
    }

    /** The same outputs through labeling and through an import give the same rows on disk, dense and top-k. */
    @Test
    void importEqualsLabeling(@TempDir Path tmp) throws Exception {
        Teacher t = new LabelerTest.SlowTeacher(0);
        int[] all = java.util.stream.IntStream.range(0, DATA.size()).toArray();
        float[] z = t.outputs(Batch.of(DATA, all));
        Labeler.label(t, DATA, tmp.resolve("labeled.d4j"), new Labeler.Options(0, ValueCodec.F16, 16, 8, "x"), null);
        Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), z, 4, 50, V); // [batch, seq, V]: rows flatten
        StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, tmp.resolve("imported.d4j"),
                StoreImport.Options.defaults().withChunkRows(16), null);
        assertEquals(rows(tmp.resolve("labeled.d4j")), rows(tmp.resolve("imported.d4j")));

        SparseTeacher.TopK top = TopKTeacher.of(t, 3).topK(Batch.of(DATA, all));
        Labeler.label(t, DATA, tmp.resolve("labeled3.d4j"), new Labeler.Options(3, ValueCodec.F32, 16, 8, "x"), null);
        Path ids = NpyArrayTest.writeI64(tmp.resolve("ids.npy"), top.ids(), DATA.size(), 3);
        Path lps = NpyArrayTest.writeF32(tmp.resolve("lps.npy"), top.logProbs(), DATA.size(), 3);
        StoreImport.topK(ids, lps, DATA, tmp.resolve("npy3.d4j"), f32(16), null);
        assertEquals(rows(tmp.resolve("labeled3.d4j")), rows(tmp.resolve("npy3.d4j")));

        // the same rows as JSON Lines, in both object shapes and with the entries shuffled: selection sorts them
        StringBuilder b = new StringBuilder();
        Random rng = new Random(5);
        for (int r = 0; r < DATA.size(); r++) {
            List<Integer> order = new ArrayList<>(List.of(0, 1, 2));
            java.util.Collections.shuffle(order, rng);
            if (r % 2 == 0) {
                b.append("{\"row\": ").append(r).append(", \"ids\": [");
                for (int j = 0; j < 3; j++) {
                    b.append(j == 0 ? "" : ", ").append(top.ids()[r * 3 + order.get(j)]);
                }
                b.append("], \"logprobs\": [");
                for (int j = 0; j < 3; j++) {
                    b.append(j == 0 ? "" : ", ").append(top.logProbs()[r * 3 + order.get(j)]);
                }
                b.append("], \"text\": \"ignored \\\"quoted\\\"\"}\n");
            } else {
                b.append("{\"top_logprobs\": [");
                for (int j = 0; j < 3; j++) {
                    int e = r * 3 + order.get(j);
                    b.append(j == 0 ? "" : ", ").append(j == 1 ? "{\"token\": \"token_id:" + top.ids()[e] + "\"" : "{\"id\": " + top.ids()[e])
                            .append(", \"logprob\": ").append(top.logProbs()[e]).append('}');
                }
                b.append("]}\n\n"); // blank lines are skipped
            }
        }
        Path jsonl = Files.writeString(tmp.resolve("top3.jsonl"), b);
        StoreImport.topK(jsonl, DATA, tmp.resolve("jsonl3.d4j"), f32(16), null);
        assertEquals(rows(tmp.resolve("labeled3.d4j")), rows(tmp.resolve("jsonl3.d4j")));
        // k below what the rows hold keeps the most probable entries
        StoreImport.topK(jsonl, DATA, tmp.resolve("jsonl2.d4j"), f32(16).withTopK(2), null);
        try (SoftTargetStore s = SoftTargetStore.open(tmp.resolve("jsonl2.d4j"))) {
            SoftTargetStore.TopKRows two = s.topK(new int[]{0, 199});
            for (int r : new int[]{0, 1}) {
                int row = r == 0 ? 0 : 199;
                for (int j = 0; j < 2; j++) {
                    assertEquals(top.ids()[row * 3 + j], two.ids()[r * 2 + j]);
                    assertEquals(top.logProbs()[row * 3 + j], two.logProbs()[r * 2 + j], 0f);
                }
            }
        }
    }

    /** Chunk bytes after the header: equal for equal rows, whatever the provenance. */
    private static String rows(Path store) throws Exception {
        long from;
        try (SoftTargetStore s = SoftTargetStore.open(store)) {
            from = s.header().dataOffset();
        }
        byte[] all = Files.readAllBytes(store);
        return java.util.HexFormat.of().formatHex(Arrays.copyOfRange(all, (int) from, all.length - 20)); // less the footer
    }

    @Test
    void probabilitiesAndLogProbsWithZeros(@TempDir Path tmp) throws Exception {
        Random rng = new Random(11);
        float[] p = new float[DATA.size() * V];
        float[] lp = new float[p.length];
        for (int r = 0; r < DATA.size(); r++) {
            double sum = 0;
            double[] e = new double[V];
            for (int c = 0; c < V; c++) {
                e[c] = (r + c) % 3 == 0 ? 0 : Math.exp(rng.nextGaussian() * 2);
                sum += e[c];
            }
            for (int c = 0; c < V; c++) {
                p[r * V + c] = (float) (e[c] / sum);
                lp[r * V + c] = (float) Math.log(e[c] / sum); // -inf where the probability is 0
            }
        }
        Path probs = NpyArrayTest.writeF32(tmp.resolve("p.npy"), p, DATA.size(), V);
        Path logs = NpyArrayTest.writeF32(tmp.resolve("lp.npy"), lp, DATA.size(), V);
        StoreImport.dense(probs, StoreImport.Values.PROBABILITIES, DATA, tmp.resolve("p.d4j"), f32(64), null);
        StoreImport.dense(logs, StoreImport.Values.LOG_PROBS, DATA, tmp.resolve("lp.d4j"), f32(64), null);
        try (SoftTargetStore a = SoftTargetStore.open(tmp.resolve("p.d4j")); SoftTargetStore b = SoftTargetStore.open(tmp.resolve("lp.d4j"))) {
            assertEquals(StoreHeader.ValueKind.LOG_PROBS, a.header().values());
            int[] idx = {0, 1, 2, 150};
            float[] fromP = a.dense(idx);
            float[] fromLp = b.dense(idx);
            for (int i = 0; i < fromP.length; i++) {
                int r = idx[i / V];
                int c = i % V;
                assertEquals((float) Math.log(p[r * V + c]), fromP[i], 0f, "row " + r + " class " + c);
                assertEquals(lp[r * V + c], fromLp[i], 0f);
                if (p[r * V + c] == 0) { // zero mass, exactly, as the live teacher's 0: not a floor that has mass at T > 1
                    assertEquals(Float.NEGATIVE_INFINITY, fromP[i], 0f, "row " + r + " class " + c);
                    assertEquals(Float.NEGATIVE_INFINITY, fromLp[i], 0f, "row " + r + " class " + c);
                }
            }
        }
    }

    @Test
    void denseMistakesNameTheFileRowAndClass(@TempDir Path tmp) throws Exception {
        float[] z = logits(2);
        Path shortFile = NpyArrayTest.writeF32(tmp.resolve("short.npy"), Arrays.copyOf(z, 199 * V), 199, V);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StoreImport.dense(shortFile, StoreImport.Values.LOGITS, DATA, tmp.resolve("a.d4j"), f32(16), null));
        assertTrue(e.getMessage().contains("short.npy: (199, 7) gives 199 rows, but the dataset synthetic has 200 samples"), e.getMessage());
        assertFalse(Files.exists(StoreWriter.partialPath(tmp.resolve("a.d4j"))), "refused before anything is written");

        z[V * 120 + 4] = Float.NaN;
        Path nan = NpyArrayTest.writeF32(tmp.resolve("nan.npy"), z, DATA.size(), V);
        e = assertThrows(IllegalArgumentException.class,
                () -> StoreImport.dense(nan, StoreImport.Values.LOGITS, DATA, tmp.resolve("b.d4j"), f32(16), null));
        assertTrue(e.getMessage().contains("nan.npy: row 120, class 4 is NaN; logits must be finite, or -inf for a class of zero "
                + "probability"), e.getMessage());
        float[] masked = logits(2);
        masked[V * 30 + 1] = Float.NEGATIVE_INFINITY; // a masked class: zero probability, accepted
        Path mask = NpyArrayTest.writeF32(tmp.resolve("mask.npy"), masked, DATA.size(), V);
        StoreImport.dense(mask, StoreImport.Values.LOGITS, DATA, tmp.resolve("mask.d4j"), f32(16), null);
        try (SoftTargetStore s = SoftTargetStore.open(tmp.resolve("mask.d4j"))) {
            assertEquals(Float.NEGATIVE_INFINITY, s.dense(new int[]{30})[1], 0f);
        }
        java.util.Arrays.fill(masked, V * 40, V * 41, Float.NEGATIVE_INFINITY);
        Path allMasked = NpyArrayTest.writeF32(tmp.resolve("all.npy"), masked, DATA.size(), V);
        e = assertThrows(IllegalArgumentException.class,
                () -> StoreImport.dense(allMasked, StoreImport.Values.LOGITS, DATA, tmp.resolve("all.d4j"), f32(16), null));
        assertTrue(e.getMessage().contains("all.npy: row 40: every logit is -inf"), e.getMessage());

        float[] big = logits(3);
        big[V * 7 + 1] = 70000f;
        Path huge = NpyArrayTest.writeF32(tmp.resolve("huge.npy"), big, DATA.size(), V);
        e = assertThrows(IllegalArgumentException.class, () -> StoreImport.dense(huge, StoreImport.Values.LOGITS, DATA,
                tmp.resolve("c.d4j"), StoreImport.Options.defaults(), null));
        assertTrue(e.getMessage().contains("row 7, class 1 is 70000.0, beyond the range of f16; store f32 or bf16"), e.getMessage());

        Path asLogProbs = NpyArrayTest.writeF32(tmp.resolve("z.npy"), logits(4), DATA.size(), V);
        e = assertThrows(IllegalArgumentException.class,
                () -> StoreImport.dense(asLogProbs, StoreImport.Values.LOG_PROBS, DATA, tmp.resolve("d.d4j"), f32(16), null));
        assertTrue(e.getMessage().contains("z.npy: row 0, class 0 is") && e.getMessage().contains("log-probabilities must be <= 0"),
                e.getMessage());
        float[] negative = logits(5);
        for (int i = 0; i < negative.length; i++) {
            negative[i] = -Math.abs(negative[i]) - 3; // all <= 0, yet far from summing to 1
        }
        Path unnormalized = NpyArrayTest.writeF32(tmp.resolve("neg.npy"), negative, DATA.size(), V);
        e = assertThrows(IllegalArgumentException.class,
                () -> StoreImport.dense(unnormalized, StoreImport.Values.LOG_PROBS, DATA, tmp.resolve("e.d4j"), f32(16), null));
        assertTrue(e.getMessage().contains("neg.npy: row 0: the probabilities sum to") && e.getMessage().contains("expected 1"),
                e.getMessage());

        e = assertThrows(IllegalArgumentException.class, () -> StoreImport.dense(NpyArrayTest.writeF32(tmp.resolve("v.npy"), z,
                DATA.size(), V), StoreImport.Values.LOGITS, DATA, tmp.resolve("f.d4j"), f32(16).withVocab(8), null));
        assertTrue(e.getMessage().contains("has 7 values per row, expected 8"), e.getMessage());

        Path ints = NpyArrayTest.writeI64(tmp.resolve("ints.npy"), new int[DATA.size() * V], DATA.size(), V);
        StoreFormatException f = assertThrows(StoreFormatException.class,
                () -> StoreImport.dense(ints, StoreImport.Values.PROBABILITIES, DATA, tmp.resolve("g.d4j"), f32(16), null));
        assertTrue(f.getMessage().contains("dtype '<i8' holds integers; expected float16/32/64 probabilities"), f.getMessage());
    }

    @Test
    void jsonlMistakesNameTheFileLineAndColumn(@TempDir Path tmp) throws Exception {
        String good = "{\"ids\": [1, 2], \"logprobs\": [-0.5, -1.5]}";
        assertJsonl(tmp, good + "\n" + "{\"ids\": [1, 2], \"logprobs\": [-0.5 -1.5]}\n", 2,
                "line 2, column 35: expected ',' or ']', found '-'");
        assertJsonl(tmp, good + "\n" + "{\"ids\": [1, 1], \"logprobs\": [-0.5, -1.5]}\n", 2,
                "line 2: class id 1 appears twice; expected distinct ids");
        assertJsonl(tmp, good + "\n" + "{\"ids\": [1, 7], \"logprobs\": [-0.5, -1.5]}\n", 2,
                "line 2, entry 1: class id 7, expected 0 to 6 (vocabulary of 7;");
        assertJsonl(tmp, good + "\n" + "{\"ids\": [1.5, 2], \"logprobs\": [-0.5, -1.5]}\n", 2,
                "line 2, ids[0]: a number 1.5, expected an integer class id");
        assertJsonl(tmp, good + "\n" + "{\"ids\": [1, 2], \"logprobs\": [-0.5, NaN]}\n", 2,
                "line 2, entry 1: log-probability NaN, expected a finite value <= 0");
        assertJsonl(tmp, good + "\n" + "{\"ids\": [1, 2], \"logprobs\": [2.5, 1.0]}\n", 2,
                "line 2, entry 0: log-probability 2.5");
        assertJsonl(tmp, good + "\n" + "{\"ids\": [1, 2], \"logprobs\": [-0.1, -0.2]}\n", 2,
                "line 2: the entries' probabilities sum to 1.7236, expected at most 1");
        assertJsonl(tmp, good + "\n" + "{\"ids\": [1], \"logprobs\": [-0.5]}\n", 2,
                "line 2: 1 entries, but the first row has 2; every row needs the same count");
        assertJsonl(tmp, good + "\n" + "{\"ids\": [1, 2], \"logprobs\": [-0.5]}\n", 2,
                "line 2: 2 ids but 1 logprobs");
        assertJsonl(tmp, good + "\n" + "{\"row\": 5, \"ids\": [1, 2], \"logprobs\": [-0.5, -1.5]}\n", 2,
                "line 2: \"row\" is 5, expected 1 (rows must be in dataset order");
        assertJsonl(tmp, good + "\n" + "{\"top_logprobs\": [{\"token\": \"cat\", \"logprob\": -1}]}\n", 2,
                "line 2, top_logprobs[0]: no \"id\", and \"token\" is 'cat'");
        assertJsonl(tmp, good + "\n" + "{\"ids\": [1, 2], \"logprobs\": [-0.5, -1.5], \"top_logprobs\": [{\"id\": 5, \"logprob\": -0.1}]}\n",
                2, "line 2: has \"ids\", \"logprobs\" and \"top_logprobs\", both shapes of a record");
        assertJsonl(tmp, good + "\n" + "[1, 2]\n", 2, "line 2: expected a JSON object, found an array");
        assertJsonl(tmp, good + "\n" + "{\"scores\": [1, 2]}\n", 2, "line 2: expected \"ids\" and \"logprobs\", or \"top_logprobs\"");
        // too few lines: refused before anything is written
        Path few = Files.writeString(tmp.resolve("few.jsonl"), good + "\n\n" + good + "\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StoreImport.topK(few, DATA, tmp.resolve("few.d4j"), f32(16), null));
        assertTrue(e.getMessage().contains("few.jsonl: has 2 non-blank lines, but the dataset synthetic has 200 samples"), e.getMessage());
        assertFalse(Files.exists(StoreWriter.partialPath(tmp.resolve("few.d4j"))));
    }

    /**
     * A source of no rows (an npy of shape (0, V), an empty JSON Lines file, top-k arrays of shape (0, K)) is refused naming the
     * file and that it has no rows, for an empty dataset and for one with samples alike: not by the store's header, whose
     * "store rows and chunkRows must be > 0" names neither file. Nothing is written.
     */
    @Test
    void aSourceOfNoRowsIsNamedBeforeAnythingIsWritten(@TempDir Path tmp) throws Exception {
        Dataset empty = new Dataset("empty", new float[0], 6, new int[0], V);
        Path npy = NpyArrayTest.writeF32(tmp.resolve("e.npy"), new float[0], 0, V);
        Path jsonl = Files.writeString(tmp.resolve("e.jsonl"), "\n \n");
        Path ids = NpyArrayTest.writeI64(tmp.resolve("ids.npy"), new int[0], 0, 3);
        Path lps = NpyArrayTest.writeF32(tmp.resolve("lps.npy"), new float[0], 0, 3);
        for (Dataset data : new Dataset[]{empty, DATA}) {
            String dataset = " (the dataset " + data.name() + " has " + data.size() + " samples); expected one row per sample, and a "
                    + "store holds at least one";
            Path out = tmp.resolve(data.name() + ".d4j");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> StoreImport.dense(npy, StoreImport.Values.LOGITS, data, out, f32(0), null));
            assertEquals(npy + ": (0, 7) gives 0 rows: the source has no rows" + dataset, e.getMessage());
            for (int k : new int[]{0, 2}) { // the first line sets k, or k is given
                e = assertThrows(IllegalArgumentException.class, () -> StoreImport.topK(jsonl, data, out, f32(0).withTopK(k), null));
                assertEquals(jsonl + ": has 0 non-blank lines: the source has no rows" + dataset, e.getMessage());
            }
            e = assertThrows(IllegalArgumentException.class, () -> StoreImport.topK(ids, lps, data, out, f32(0), null));
            assertEquals(ids + ": (0, 3) gives 0 rows: the source has no rows" + dataset, e.getMessage());
            assertFalse(Files.exists(out) || Files.exists(StoreWriter.partialPath(out)), "nothing written");
        }
    }

    /** A file of {@code head} followed by good lines up to 200 rows; the import must fail with {@code message}. */
    private static void assertJsonl(Path tmp, String head, int headRows, String message) throws Exception {
        StringBuilder b = new StringBuilder(head);
        for (int r = headRows; r < DATA.size(); r++) {
            b.append("{\"ids\": [3, 4], \"logprobs\": [-0.5, -1.5]}\n");
        }
        Path f = Files.writeString(Files.createTempFile(tmp, "bad", ".jsonl"), b);
        Path out = tmp.resolve(f.getFileName() + ".d4j");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StoreImport.topK(f, DATA, out, f32(16), null));
        assertTrue(e.getMessage().contains(f + " " + message) || (!message.startsWith("line") && e.getMessage().startsWith(f + " line 2")
                && e.getMessage().contains(message)), e.getMessage());
        Files.deleteIfExists(StoreWriter.partialPath(out));
    }

    /** Interrupted after the first chunk and run again, an import ends byte for byte as an uninterrupted one. */
    @org.junit.jupiter.api.BeforeEach
    void readInSmallGroups() {
        StoreImport.valuesPerRead = 7 * 20; // 20-row reads of V = 7: an import of 200 rows takes several reads
    }

    @org.junit.jupiter.api.AfterEach
    void readInLargeGroups() {
        StoreImport.valuesPerRead = 1 << 22;
    }

    @Test
    void anInterruptedImportResumes(@TempDir Path tmp) throws Exception {
        Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), logits(7), DATA.size(), V);
        StringBuilder b = new StringBuilder();
        Random rng = new Random(8);
        for (int r = 0; r < DATA.size(); r++) {
            double a = Math.log(0.6 * rng.nextDouble());
            b.append(String.format(Locale.ROOT, "{\"ids\": [%d, %d], \"logprobs\": [%s, -Infinity]}%n", r % V, (r + 1) % V, a));
        }
        Path jsonl = Files.writeString(tmp.resolve("t.jsonl"), b);
        for (boolean dense : new boolean[]{true, false}) {
            Path whole = tmp.resolve(dense + "-whole.d4j");
            Path cut = tmp.resolve(dense + "-cut.d4j");
            StoreImport.Options o = StoreImport.Options.defaults().withChunkRows(30).withTeacherId("teacher-x");
            run(dense, npy, jsonl, whole, o, null);
            long[] calls = {0};
            RuntimeException kill = assertThrows(RuntimeException.class, () -> run(dense, npy, jsonl, cut, o, rows -> {
                if (++calls[0] == 2) {
                    throw new RuntimeException("killed");
                }
            }));
            assertEquals("killed", kill.getMessage());
            assertTrue(Files.exists(StoreWriter.partialPath(cut)));
            Labeler.Result r = run(dense, npy, jsonl, cut, o, null);
            assertTrue(r.resumedFrom() > 0 && r.resumedFrom() < 200, "resumed at " + r.resumedFrom());
            assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(cut), dense ? "dense" : "jsonl");
            if (!dense) {
                try (SoftTargetStore s = SoftTargetStore.open(cut)) {
                    float second = s.topK(new int[]{9}).logProbs()[1];
                    assertEquals(ValueCodec.fromHalf(ValueCodec.toHalf((float) Labeler.LOG_MIN_FLOAT)), second, 0f,
                            "-Infinity is stored as the log of the smallest float (in f16)");
                }
            }
        }
    }

    private static Labeler.Result run(boolean dense, Path npy, Path jsonl, Path out, StoreImport.Options o,
                                      java.util.function.LongConsumer progress) throws Exception {
        return dense ? StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o, progress)
                : StoreImport.topK(jsonl, DATA, out, o, progress);
    }

    /** A bad row past the first chunks is found before anything is written: the fixed source (or settings) then imports. */
    @Test
    void aRefusedSourceLeavesNothingBehind(@TempDir Path tmp) throws Exception {
        float[] z = logits(9);
        z[V * 150 + 3] = 70000f; // fine in f32, too large for f16
        Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), z, DATA.size(), V);
        Path out = tmp.resolve("z.d4j");
        assertThrows(IllegalArgumentException.class, () -> StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out,
                StoreImport.Options.defaults().withChunkRows(16), null));
        assertFalse(Files.exists(StoreWriter.partialPath(out)), "no .partial left by a refused source");
        StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, StoreImport.Options.defaults().withChunkRows(16)
                .withCodec(ValueCodec.F32), null);
        assertTrue(Files.exists(out), "the suggested fix (f32) goes through");

        // the same with a teacher id given (no content hash to compute), and for JSON Lines and .npy top-k pairs
        assertThrows(IllegalArgumentException.class, () -> StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA,
                tmp.resolve("id.d4j"), StoreImport.Options.defaults().withChunkRows(16).withTeacherId("t"), null));
        assertFalse(Files.exists(StoreWriter.partialPath(tmp.resolve("id.d4j"))));
        StringBuilder b = new StringBuilder();
        for (int r = 0; r < DATA.size(); r++) {
            b.append(r == 170 ? "{\"ids\": [1, 1], \"logprobs\": [-1, -2]}\n" : "{\"ids\": [1, 2], \"logprobs\": [-1, -2]}\n");
        }
        Path jsonl = Files.writeString(tmp.resolve("t.jsonl"), b);
        for (String id : new String[]{null, "t"}) {
            Path o = tmp.resolve("j" + id + ".d4j");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StoreImport.topK(jsonl, DATA, o,
                    StoreImport.Options.defaults().withChunkRows(16).withTeacherId(id), null));
            assertTrue(e.getMessage().contains("line 171: class id 1 appears twice"), e.getMessage());
            assertFalse(Files.exists(StoreWriter.partialPath(o)));
        }
        int[] ids = new int[DATA.size() * 2];
        float[] lps = new float[ids.length];
        for (int r = 0; r < DATA.size(); r++) {
            ids[2 * r] = 1;
            ids[2 * r + 1] = r == 199 ? 9 : 2;
            lps[2 * r] = -1;
            lps[2 * r + 1] = -2;
        }
        Path idsNpy = NpyArrayTest.writeI64(tmp.resolve("ids.npy"), ids, DATA.size(), 2);
        Path lpsNpy = NpyArrayTest.writeF32(tmp.resolve("lps.npy"), lps, DATA.size(), 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StoreImport.topK(idsNpy, lpsNpy, DATA,
                tmp.resolve("n.d4j"), StoreImport.Options.defaults().withChunkRows(16), null));
        assertTrue(e.getMessage().contains("ids.npy row 199, entry 1: class id 9, expected 0 to 6 (vocabulary of 7; a larger "
                + "vocabulary is set with vocab / --vocab)"), e.getMessage());
        assertFalse(Files.exists(StoreWriter.partialPath(tmp.resolve("n.d4j"))));
    }

    /**
     * What the store's dtype cannot hold is found by the check before anything is written, as the writer would find it
     * halfway: a bf16 logit that rounds to infinity, a top-k log-probability that f16 or bf16 rounds above the 1e-4
     * allowed. Such a source left a .partial that neither the fixed source nor another dtype could resume.
     */
    @Test
    void whatTheDtypeCannotHoldIsRefusedBeforeAnythingIsWritten(@TempDir Path tmp) throws Exception {
        float[] z = logits(21);
        z[V * 150 + 3] = 3.3998e38f; // finite in f32, rounds to +Infinity in bf16
        Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), z, DATA.size(), V);
        for (String id : new String[]{null, "t"}) {
            Path out = tmp.resolve("bf" + id + ".d4j");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StoreImport.dense(npy,
                    StoreImport.Values.LOGITS, DATA, out, StoreImport.Options.defaults().withCodec(ValueCodec.BF16).withChunkRows(16)
                            .withTeacherId(id), null));
            assertTrue(e.getMessage().contains("z.npy: row 150, class 3 is 3.3998E38, beyond the range of bf16"), e.getMessage());
            assertFalse(Files.exists(StoreWriter.partialPath(out)), "no .partial left by a refused source");
        }
        StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, tmp.resolve("f32.d4j"), f32(16), null);
        try (SoftTargetStore s = SoftTargetStore.open(tmp.resolve("f32.d4j"))) {
            assertEquals(3.3998e38f, s.dense(new int[]{150})[3], 0f, "f32 holds it");
        }

        // 1e-4 passes as a float (the bound itself), but f16 rounds it to 1.0002e-4 and bf16 to 1.0014e-4
        StringBuilder b = new StringBuilder();
        for (int r = 0; r < DATA.size(); r++) {
            b.append(r == 170 ? "{\"ids\": [1, 2], \"logprobs\": [0.0001, -12]}\n" : "{\"ids\": [1, 2], \"logprobs\": [-0.5, -1]}\n");
        }
        Path jsonl = Files.writeString(tmp.resolve("t.jsonl"), b);
        int[] ids = new int[DATA.size() * 2];
        float[] lps = new float[ids.length];
        for (int r = 0; r < DATA.size(); r++) {
            ids[2 * r] = 1;
            ids[2 * r + 1] = 2;
            lps[2 * r] = r == 170 ? 1e-4f : -0.5f;
            lps[2 * r + 1] = r == 170 ? -12 : -1;
        }
        Path idsNpy = NpyArrayTest.writeI64(tmp.resolve("ids.npy"), ids, DATA.size(), 2);
        Path lpsNpy = NpyArrayTest.writeF32(tmp.resolve("lps.npy"), lps, DATA.size(), 2);
        for (ValueCodec c : new ValueCodec[]{ValueCodec.F16, ValueCodec.BF16}) {
            StoreImport.Options o = StoreImport.Options.defaults().withCodec(c).withChunkRows(16);
            Path out = tmp.resolve("j" + c + ".d4j");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StoreImport.topK(jsonl, DATA, out, o, null));
            assertTrue(e.getMessage().contains("t.jsonl line 171, entry 0: log-probability 1.0E-4, which "
                    + c.name().toLowerCase(Locale.ROOT) + " rounds to"), e.getMessage());
            assertFalse(Files.exists(StoreWriter.partialPath(out)), "no .partial left by a refused source");
            Path outNpy = tmp.resolve("n" + c + ".d4j");
            e = assertThrows(IllegalArgumentException.class, () -> StoreImport.topK(idsNpy, lpsNpy, DATA, outNpy, o.withTeacherId("t"),
                    null));
            assertTrue(e.getMessage().contains("ids.npy row 170, entry 0: log-probability"), e.getMessage());
            assertFalse(Files.exists(StoreWriter.partialPath(outNpy)), "no .partial left by a refused source");
        }
        StoreImport.topK(jsonl, DATA, tmp.resolve("j32.d4j"), f32(16), null);
        try (SoftTargetStore s = SoftTargetStore.open(tmp.resolve("j32.d4j"))) {
            assertEquals(1e-4f, s.topK(new int[]{170}).logProbs()[0], 0f, "f32 holds it as given");
        }
    }

    /**
     * Without a top-k the first row sets the entries per row; a first row of none is refused naming the file, its line,
     * the empty field and what was expected (it said "top-0 rows, expected 1 <= k <= 7", and no line); nothing is written.
     * With a top-k the same row is a row of too few entries.
     */
    @Test
    void aFirstRowOfNoEntriesIsNamedWithItsLineAndField(@TempDir Path tmp) throws Exception {
        String good = "{\"ids\": [4, 1], \"logprobs\": [-1, -2]}\n";
        String[][] cases = {
                {"{\"ids\": [], \"logprobs\": []}\n", "\"ids\" and \"logprobs\" are empty"},
                {"{\"row\": 0, \"top_logprobs\": []}\n", "\"top_logprobs\" is empty"}};
        for (String[] c : cases) {
            for (String lead : new String[] {"", "\n  \n"}) { // blank lines before it: the line named is the row's own
                StringBuilder b = new StringBuilder(lead).append(c[0]);
                for (int r = 1; r < DATA.size(); r++) {
                    b.append(good);
                }
                Path jsonl = Files.writeString(tmp.resolve("empty.jsonl"), b);
                Path out = tmp.resolve("empty.d4j");
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> StoreImport.topK(jsonl, DATA, out, f32(16), null), c[0]);
                long line = lead.isEmpty() ? 1 : 3;
                assertEquals(jsonl + " line " + line + ": the first row has no entries (" + c[1] + "); expected at least 1: "
                        + "without a top-k the first row sets how many entries every row holds", e.getMessage());
                assertFalse(Files.exists(out) || Files.exists(StoreWriter.partialPath(out)), "nothing written");
                e = assertThrows(IllegalArgumentException.class, () -> StoreImport.topK(jsonl, DATA, out, f32(16).withTopK(2), null));
                assertTrue(e.getMessage().startsWith(jsonl + " line " + line + ": 0 entries, expected at least 2"), e.getMessage());
            }
        }
    }

    /** Without a top-k every row must hold the first row's count; ties are broken by the smaller id. */
    @Test
    void rowCountsAndTies(@TempDir Path tmp) throws Exception {
        StringBuilder b = new StringBuilder("\uFEFF"); // a byte-order mark is allowed
        for (int r = 0; r < DATA.size(); r++) {
            b.append(r == 120 ? "{\"ids\": [4, 1, 2, 0], \"logprobs\": [-1, -1, -3, -4]}\n" : "{\"ids\": [4, 1, 2], \"logprobs\": [-1, -1, -3]}\n");
        }
        Path jsonl = Files.writeString(tmp.resolve("t.jsonl"), b);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StoreImport.topK(jsonl, DATA, tmp.resolve("a.d4j"), f32(16), null));
        assertTrue(e.getMessage().contains("t.jsonl line 121: 4 entries, but the first row has 3; every row needs the same count"),
                e.getMessage());
        StoreImport.topK(jsonl, DATA, tmp.resolve("b.d4j"), f32(16).withTopK(2), null);
        try (SoftTargetStore s = SoftTargetStore.open(tmp.resolve("b.d4j"))) {
            SoftTargetStore.TopKRows rows = s.topK(new int[]{0, 120});
            assertArrayEquals(new int[]{1, 4, 1, 4}, rows.ids(), "tied log-probabilities: the smaller id first");
            assertArrayEquals(new float[]{-1, -1, -1, -1}, rows.logProbs(), 0f);
        }
    }

    /** Without a teacher id the content hash names the source; a resume and a progress display still work. */
    @Test
    void contentIdsResumeAndProgress(@TempDir Path tmp) throws Exception {
        Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), logits(12), DATA.size(), V);
        int[] ids = new int[DATA.size() * 3];
        float[] lps = new float[ids.length];
        Random rng = new Random(13);
        for (int r = 0; r < DATA.size(); r++) {
            for (int j = 0; j < 3; j++) {
                ids[3 * r + j] = (r + 2 * j) % V;
                lps[3 * r + j] = (float) Math.log(0.3 * rng.nextDouble());
            }
        }
        Path idsNpy = NpyArrayTest.writeI64(tmp.resolve("ids.npy"), ids, DATA.size(), 3);
        Path lpsNpy = NpyArrayTest.writeF32(tmp.resolve("lps.npy"), lps, DATA.size(), 3);
        for (boolean dense : new boolean[]{true, false}) {
            StoreImport.Options o = StoreImport.Options.defaults().withChunkRows(8);
            Path whole = tmp.resolve(dense + "-whole.d4j");
            Path cut = tmp.resolve(dense + "-cut.d4j");
            List<Long> told = new ArrayList<>();
            Labeler.Result first = dense ? StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, whole, o, told::add)
                    : StoreImport.topK(idsNpy, lpsNpy, DATA, whole, o, told::add);
            assertEquals(200L, (long) told.get(told.size() - 1), "progress ends at every row");
            for (int i = 1; i < told.size(); i++) {
                assertTrue(told.get(i) > told.get(i - 1), "progress only moves forward: " + told);
            }
            assertEquals(200, first.rows());
            long[] calls = {0};
            java.util.function.LongConsumer kill = rows -> {
                if (rows >= 96 && calls[0]++ == 0) {
                    throw new IllegalStateException("killed");
                }
            };
            assertThrows(IllegalStateException.class, () -> {
                if (dense) {
                    StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, cut, o, kill);
                } else {
                    StoreImport.topK(idsNpy, lpsNpy, DATA, cut, o, kill);
                }
            });
            Labeler.Result r = dense ? StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, cut, o, null)
                    : StoreImport.topK(idsNpy, lpsNpy, DATA, cut, o, null);
            assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(cut), dense ? "dense" : "npy top-k");
            try (SoftTargetStore s = SoftTargetStore.open(cut)) {
                String id = StoredTeacher.teacherId(s.header().provenance());
                assertTrue(id.matches(dense ? "npy-[0-9a-f]+" : "npy-[0-9a-f]+-[0-9a-f]+"), id);
            }
            assertTrue(r.resumedFrom() >= 96 && r.resumedFrom() < 200, "resumed at " + r.resumedFrom());
        }
    }

    /** Tied log-probabilities: labeling (TopKTeacher) and importing pick the same entries in the same order. */
    @Test
    void tiesAreBrokenAlikeByLabelingAndImport(@TempDir Path tmp) throws Exception {
        Teacher slow = new LabelerTest.SlowTeacher(0);
        Teacher tied = new Teacher() { // logits rounded to whole numbers: most rows hold ties, some at the k-th place
            @Override
            public int classes() {
                return V;
            }

            @Override
            public org.distill4j.loss.TeacherValues values() {
                return org.distill4j.loss.TeacherValues.LOGITS;
            }

            @Override
            public float[] outputs(Batch b) {
                float[] z = slow.outputs(b);
                for (int i = 0; i < z.length; i++) {
                    z[i] = Math.round(z[i] / 2);
                }
                return z;
            }

            @Override
            public String describe() {
                return "tied";
            }
        };
        int[] all = java.util.stream.IntStream.range(0, DATA.size()).toArray();
        SparseTeacher.TopK live = TopKTeacher.of(tied, 3).topK(Batch.of(DATA, all));
        int tiedRows = 0;
        for (int r = 0; r < DATA.size(); r++) {
            for (int j = 1; j < 3; j++) {
                if (live.logProbs()[r * 3 + j] == live.logProbs()[r * 3 + j - 1]) {
                    tiedRows++;
                    assertTrue(live.ids()[r * 3 + j] > live.ids()[r * 3 + j - 1], "row " + r + ": at a tie the smaller id first");
                }
            }
        }
        assertTrue(tiedRows > 20, "the teacher has ties to break: " + tiedRows);
        Labeler.label(tied, DATA, tmp.resolve("labeled.d4j"), new Labeler.Options(3, ValueCodec.F32, 16, 8, "x"), null);
        float[] z = tied.outputs(Batch.of(DATA, all));
        StringBuilder b = new StringBuilder();
        for (int r = 0; r < DATA.size(); r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < V; c++) {
                max = Math.max(max, z[r * V + c]);
            }
            double sum = 0;
            for (int c = 0; c < V; c++) {
                sum += Math.exp(z[r * V + c] - max);
            }
            b.append("{\"ids\": [");
            for (int c = V - 1; c >= 0; c--) { // every class, largest id first
                b.append(c == V - 1 ? "" : ", ").append(c);
            }
            b.append("], \"logprobs\": [");
            for (int c = V - 1; c >= 0; c--) {
                b.append(c == V - 1 ? "" : ", ").append((float) (z[r * V + c] - max - Math.log(sum)));
            }
            b.append("]}\n");
        }
        Path jsonl = Files.writeString(tmp.resolve("tied.jsonl"), b);
        StoreImport.topK(jsonl, DATA, tmp.resolve("imported.d4j"), f32(16).withTopK(3), null);
        assertEquals(rows(tmp.resolve("labeled.d4j")), rows(tmp.resolve("imported.d4j")));
    }

    /** The three kinds of source, each as two versions (0 and 1) of the same size that differ in one value. */
    private static final class Sources {
        final Path npy;
        final Path jsonl;
        final Path ids;
        final Path lps;
        private final Path tmp;

        Sources(Path tmp) throws Exception {
            this.tmp = tmp;
            npy = tmp.resolve("z.npy");
            jsonl = tmp.resolve("t.jsonl");
            ids = tmp.resolve("ids.npy");
            lps = tmp.resolve("lps.npy");
            version(0);
        }

        /** Writes version {@code v} of every source: version 1 moves one log-probability (or logit) of row 3. */
        void version(int v) throws Exception {
            float[] z = logits(31);
            z[3 * V + 1] += v;
            NpyArrayTest.writeF32(npy, z, DATA.size(), V);
            StringBuilder b = new StringBuilder();
            int[] topIds = new int[DATA.size() * 2];
            float[] topLps = new float[topIds.length];
            for (int r = 0; r < DATA.size(); r++) {
                topIds[2 * r] = r % V;
                topIds[2 * r + 1] = (r + 3) % V;
                topLps[2 * r] = r == 3 && v == 1 ? -0.75f : -0.5f;
                topLps[2 * r + 1] = -2.25f;
                b.append(String.format(Locale.ROOT, "{\"ids\": [%d, %d], \"logprobs\": [%s, %s]}%n", topIds[2 * r], topIds[2 * r + 1],
                        topLps[2 * r], topLps[2 * r + 1]));
            }
            Files.writeString(jsonl, b);
            NpyArrayTest.writeI64(ids, topIds, DATA.size(), 2);
            NpyArrayTest.writeF32(lps, topLps, DATA.size(), 2);
        }

        Labeler.Result run(int kind, Path out, StoreImport.Options o, java.util.function.LongConsumer progress) throws Exception {
            return switch (kind) {
                case 0 -> StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o, progress);
                case 1 -> StoreImport.topK(jsonl, DATA, out, o, progress);
                default -> StoreImport.topK(ids, lps, DATA, out, o, progress);
            };
        }

        String file(int kind) {
            return (kind == 0 ? npy : kind == 1 ? jsonl : ids).toString();
        }
    }

    /**
     * A source changed after its import under a teacher id (which does not change with the content, as the content id
     * does): rerunning the same import used to say the store was complete and keep the old values. The source's CRC32C
     * and size are recorded, so a store or a .partial of another version is refused naming what differs, and left as it
     * is; the same source is still reused and resumed.
     */
    @Test
    void aChangedSourceIsNeitherReusedNorResumedUnderATeacherId(@TempDir Path tmp) throws Exception {
        Sources src = new Sources(tmp);
        StoreImport.Options o = StoreImport.Options.defaults().withChunkRows(16).withTeacherId("qwen-api");
        for (int kind = 0; kind < 3; kind++) {
            int k = kind;
            src.version(0);
            Path out = tmp.resolve(kind + ".d4j");
            assertFalse(src.run(kind, out, o, null).alreadyComplete());
            assertTrue(src.run(kind, out, o, null).alreadyComplete(), "the same source: the store is reused");
            byte[] before = Files.readAllBytes(out);
            src.version(1);
            StoreMismatchException e = assertThrows(StoreMismatchException.class, () -> src.run(k, out, o, null));
            assertTrue(e.getMessage().startsWith(out + " was imported from another version of " + src.file(kind)
                    + (kind == 2 ? " and " + src.lps : "") + ": its content differs (when imported: " + (kind == 2 ? "ids " : "")
                    + "CRC32C "), e.getMessage());
            assertTrue(e.getMessage().endsWith("; delete " + out + " to import the source as it is now, or import into another"
                    + " store (another --out)"), e.getMessage());
            assertArrayEquals(before, Files.readAllBytes(out), "the store is unchanged");

            // an import of version 1 interrupted, then run again from version 0: refused, the .partial kept
            Path cut = tmp.resolve(kind + "-cut.d4j");
            assertThrows(IllegalStateException.class, () -> src.run(k, cut, o, rows -> {
                throw new IllegalStateException("killed");
            }));
            Path partial = StoreWriter.partialPath(cut);
            byte[] started = Files.readAllBytes(partial);
            src.version(0);
            e = assertThrows(StoreMismatchException.class, () -> src.run(k, cut, o, null));
            assertTrue(e.getMessage().startsWith(partial + " was started from another version of " + src.file(kind)
                    + (kind == 2 ? " and " + src.lps : "") + ": its content differs (when started: " + (kind == 2 ? "ids " : "")
                    + "CRC32C "), e.getMessage());
            assertTrue(e.getMessage().endsWith("; delete " + partial + " to import the source as it is now, or import into"
                    + " another store (another --out)"), e.getMessage());
            assertArrayEquals(started, Files.readAllBytes(partial), "the .partial is unchanged");
            assertFalse(Files.exists(cut));
            src.version(1);
            Labeler.Result resumed = src.run(kind, cut, o, null);
            assertTrue(resumed.resumedFrom() > 0, "the same source resumes: " + resumed);
            Path whole = tmp.resolve(kind + "-whole.d4j");
            src.run(kind, whole, o, null);
            assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(cut));
        }
    }

    /**
     * A store imported before the source was recorded (no "source" in its provenance) is reused and resumed as it was
     * then, by its settings and teacher id alone (with a warning), not refused as another source's.
     */
    @Test
    void aStoreFromBeforeTheSourceWasRecordedIsStillReusedAndResumed(@TempDir Path tmp) throws Exception {
        Sources src = new Sources(tmp);
        StoreImport.Options o = StoreImport.Options.defaults().withChunkRows(16).withTeacherId("qwen-api");
        int[] all = java.util.stream.IntStream.range(0, DATA.size()).toArray();
        for (int kind = 0; kind < 3; kind++) {
            Path now = tmp.resolve(kind + "-now.d4j");
            src.run(kind, now, o, null);
            StoreHeader h;
            float[] dense = null;
            SoftTargetStore.TopKRows top = null;
            try (SoftTargetStore s = SoftTargetStore.open(now)) {
                h = s.header();
                if (h.layout() == StoreHeader.Layout.DENSE) {
                    dense = s.dense(all);
                } else {
                    top = s.topK(all);
                }
            }
            StoreHeader old = new StoreHeader(h.layout(), h.codec(), h.values(), h.vocab(), h.k(), h.rows(), h.chunkRows(),
                    h.temperature(), h.provenance().replaceFirst(",\"source\":\"[^\"]*\"", ""));
            Path complete = tmp.resolve(kind + "-old.d4j");
            Path started = tmp.resolve(kind + "-old-cut.d4j");
            try (StoreWriter w = StoreWriter.open(complete, old); StoreWriter p = StoreWriter.open(started, old)) {
                if (dense != null) {
                    w.writeDense(dense, DATA.size());
                    p.writeDense(Arrays.copyOf(dense, 40 * V), 40);
                } else {
                    w.writeTopK(top.ids(), top.logProbs(), DATA.size());
                    p.writeTopK(Arrays.copyOf(top.ids(), 40 * top.k()), Arrays.copyOf(top.logProbs(), 40 * top.k()), 40);
                }
                w.finish();
            }
            byte[] before = Files.readAllBytes(complete);
            assertTrue(src.run(kind, complete, o, null).alreadyComplete());
            assertArrayEquals(before, Files.readAllBytes(complete));
            Labeler.Result r = src.run(kind, started, o, null);
            assertEquals(32, r.resumedFrom());
            assertArrayEquals(before, Files.readAllBytes(started), "finished as it was started, without the record");
        }
    }

    /**
     * A row's k most probable entries, in order (ties in the double log-probability: the smaller id first; -0.0 after
     * 0.0, as Double.compare orders them), as a comparator sort of boxed indices gives them, for rows of odd sizes with
     * many ties, k from 1 to all; the working memory reused from row to row leaves no trace (a repeat is found only
     * within a row).
     */
    @Test
    void selectionKeepsTheMostProbableEntriesInOrder() {
        Random rng = new Random(61);
        StoreImport.Selection sc = new StoreImport.Selection();
        int vocab = 5003;
        for (int t = 0; t < 400; t++) {
            int n = 1 + rng.nextInt(t % 10 == 0 ? 3000 : 70);
            List<Integer> classes = new ArrayList<>();
            for (int c = 0; c < vocab; c++) {
                classes.add(c);
            }
            java.util.Collections.shuffle(classes, rng);
            int[] ids = new int[n];
            double[] lps = new double[n];
            for (int j = 0; j < n; j++) {
                ids[j] = classes.get(j);
                lps[j] = switch (rng.nextInt(6)) {
                    case 0 -> -30.0; // ties
                    case 1 -> Double.NEGATIVE_INFINITY; // ties, below the floor
                    case 2 -> -1e-300 * rng.nextInt(3); // 0 or tiny: ordered by the double, stored as the same float
                    case 3 -> Math.nextDown((double) (float) -25.5); // a double that rounds to its neighbour's float
                    default -> Math.log(rng.nextDouble() / (400.0 * n)) - 1;
                };
                if (lps[j] > -1e-299 && j != 0) {
                    lps[j] = -30.0; // one of probability 1 at most
                }
            }
            if (rng.nextInt(4) == 0) {
                lps[0] = -0.0; // after 0.0, as Double.compare orders them (alone in its row: its probability is 1)
            }
            Integer[] want = new Integer[n];
            for (int j = 0; j < n; j++) {
                want[j] = j;
            }
            Arrays.sort(want, (x, y) -> {
                int c = Double.compare(lps[y], lps[x]);
                return c != 0 ? c : Integer.compare(ids[x], ids[y]);
            });
            int k = 1 + rng.nextInt(n);
            int at = rng.nextInt(3);
            int[] outIds = new int[at + k];
            float[] outLps = new float[at + k];
            new StoreImport.Entries(ids, lps).select(Path.of("x.jsonl"), "line 1", k, false, vocab, ValueCodec.F32, outIds, outLps, at, sc);
            for (int j = 0; j < k; j++) {
                assertEquals(ids[want[j]], outIds[at + j], "entry " + j + " of " + n);
                assertEquals(Float.floatToRawIntBits((float) Math.max(lps[want[j]], Labeler.LOG_MIN_FLOAT)),
                        Float.floatToRawIntBits(outLps[at + j]), "entry " + j + " of " + n);
            }
        }
        // a repeat names the smallest repeated id, after a row of the same ids that was fine
        new StoreImport.Entries(new int[]{9, 4, 7}, new double[]{-1, -2, -3}).select(Path.of("x.jsonl"), "line 1", 3, true, 10,
                ValueCodec.F32, null, null, 0, sc);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new StoreImport.Entries(new int[]{9, 7, 4, 7, 9},
                new double[]{-1, -2, -3, -4, -5}).select(Path.of("x.jsonl"), "line 2", 5, true, 10, ValueCodec.F32, null, null, 0, sc));
        assertEquals("x.jsonl line 2: class id 7 appears twice; expected distinct ids", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new StoreImport.Entries(new int[]{3, 3, 10}, new double[]{-1, -2, -3})
                .select(Path.of("x.jsonl"), "line 3", 3, true, 10, ValueCodec.F32, null, null, 0, sc));
        assertTrue(e.getMessage().startsWith("x.jsonl line 3, entry 2: class id 10, expected 0 to 9"), e.getMessage());
        new StoreImport.Entries(new int[]{3, 9, 4}, new double[]{-1, -2, -3}).select(Path.of("x.jsonl"), "line 4", 3, true, 10,
                ValueCodec.F32, null, null, 0, sc); // nothing of the refused rows is left
    }

    /** A source that changes while it is imported is refused before the store is finished. */
    @Test
    void aSourceThatChangesDuringTheImportIsRefused(@TempDir Path tmp) throws Exception {
        Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), logits(14), DATA.size(), V);
        Path out = tmp.resolve("z.d4j");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> StoreImport.dense(npy, StoreImport.Values.LOGITS,
                DATA, out, StoreImport.Options.defaults().withChunkRows(8), rows -> {
                    try {
                        Files.setLastModifiedTime(npy, java.nio.file.attribute.FileTime.fromMillis(0));
                    } catch (java.io.IOException x) {
                        throw new java.io.UncheckedIOException(x);
                    }
                }));
        assertTrue(e.getMessage().contains("z.npy changed while it was being imported"), e.getMessage());
        assertFalse(Files.exists(out), "not finished");
    }

    @Test
    void jsonIsReadStrictly(@TempDir Path tmp) throws Exception {
        String good = "{\"ids\": [1, 2], \"logprobs\": [-0.5, -1.5]}";
        assertJsonl(tmp, good + "\n{\"ids\": [01, 2], \"logprobs\": [-0.5, -1.5]}\n", 2,
                "line 2, column 11: expected no leading zero (JSON writes 1, not 01)");
        assertJsonl(tmp, good + "\n{\"ids\": [1, 2], \"logprobs\": [-0.5, -1.5], \"t\": \"a\tb\"}\n", 2,
                "line 2, column 50: expected no control character inside a string");
        assertJsonl(tmp, good + "\n{\"ids\": [1, 2], \"logprobs\": [-0.5, -1.5], \"t\": \"\\u+041\"}\n", 2,
                "expected four hex digits after \\u");
        // JSON's hex digits are ASCII: not the fullwidth ones Character.digit also reads (\uFF10 is 0)
        assertJsonl(tmp, good + "\n{\"ids\": [1, 2], \"logprobs\": [-0.5, -1.5], \"t\": \"\\u\uFF10\uFF10\uFF14\uFF21\"}\n", 2,
                "line 2, column 51: expected four hex digits after \\u");
        assertJsonl(tmp, good + "\n{\"ids\": [1, 2], \"logprobs\": [-0.5, -1.5], \"t\": " + "[".repeat(100) + "]".repeat(100) + "}\n",
                2, "nesting deeper than 64 levels");
        // a line of a form feed (or another control character Java calls whitespace) is not a blank line to skip: JSON's
        // whitespace is space, tab, CR and LF only; skipping it would shift every later row by one
        String first = good + "\n\f\n";
        StringBuilder rest = new StringBuilder();
        for (int r = 1; r < DATA.size(); r++) {
            rest.append(good).append('\n');
        }
        Path ff = Files.writeString(tmp.resolve("ff.jsonl"), first + rest);
        IllegalArgumentException fe = assertThrows(IllegalArgumentException.class, () -> StoreImport.topK(ff, DATA,
                tmp.resolve("ff.d4j"), f32(16), null));
        assertTrue(fe.getMessage().contains("ff.jsonl line 2"), fe.getMessage());
        byte[] bad = (good + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] latin1 = "{\"ids\": [1, 2], \"logprobs\": [-0.5, -1.5], \"t\": \"caf\u00e9\"}\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        Path f = tmp.resolve("latin1.jsonl");
        Files.write(f, bad);
        Files.write(f, latin1, java.nio.file.StandardOpenOption.APPEND);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StoreImport.topK(f, DATA,
                tmp.resolve("l.d4j"), f32(16), null));
        assertTrue(e.getMessage().contains("latin1.jsonl line 2: not UTF-8 text"), e.getMessage());
    }

    /**
     * A line longer than {@link StoreImport#MAX_LINE_BYTES} (64 MiB, ten times a full 152,064-entry top_logprobs line) is
     * refused when the limit is reached, naming the file and line: a file that is not JSON Lines (one JSON array of all
     * rows, a binary file) used to be read whole into memory, up to an OutOfMemoryError.
     */
    @Test
    void aLineLongerThanTheLimitIsRefusedBeforeItIsReadWhole(@TempDir Path tmp) throws Exception {
        Path jsonl = tmp.resolve("long.jsonl");
        String row = "{\"ids\": [1, 2], \"logprobs\": [-0.5, -1.5]}\n";
        try (java.io.OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(jsonl))) {
            out.write(row.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            out.write("{\"ids\": [1, 2], \"logprobs\": [-0.5, -1.5], \"pad\": \"".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            byte[] pad = new byte[1 << 20];
            Arrays.fill(pad, (byte) 'x');
            for (int i = 0; i < 64; i++) {
                out.write(pad);
            }
            out.write("\"}\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            for (int r = 2; r < DATA.size(); r++) {
                out.write(row.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StoreImport.topK(jsonl, DATA, tmp.resolve("l.d4j"), f32(16), null));
        assertTrue(e.getMessage().contains("long.jsonl line 2: longer than 67108864 bytes (64 MiB); expected JSON Lines"),
                e.getMessage());
        assertFalse(Files.exists(StoreWriter.partialPath(tmp.resolve("l.d4j"))));
    }

    @Test
    void valuesParse() {
        assertEquals(StoreImport.Values.LOG_PROBS, StoreImport.Values.parse(" Log-Probs"));
        assertEquals(StoreImport.Values.PROBABILITIES, StoreImport.Values.parse("probs"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StoreImport.Values.parse("scores"));
        assertTrue(e.getMessage().contains("values 'scores': expected logits, log-probs or probs"), e.getMessage());
    }
}
