package org.distill4j.store;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.TeacherValues;
import org.distill4j.teacher.SparseTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.TopKTeacher;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LabelerTest {
    static final Labeler.Options OPTIONS = new Labeler.Options(0, ValueCodec.F32, 16, 8, "slow-teacher");

    static Dataset data() {
        Random rng = new Random(42);
        int n = 200;
        int d = 6;
        float[] x = new float[n * d];
        int[] y = new int[n];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        for (int i = 0; i < n; i++) {
            y[i] = rng.nextInt(7);
        }
        return new Dataset("synthetic", x, d, y, 7);
    }

    /** A deterministic teacher: logits are a fixed function of the features; optionally slow. */
    static final class SlowTeacher implements Teacher {
        private final long millisPerBatch;

        SlowTeacher(long millisPerBatch) {
            this.millisPerBatch = millisPerBatch;
        }

        @Override
        public int classes() {
            return 7;
        }

        @Override
        public TeacherValues values() {
            return TeacherValues.LOGITS;
        }

        @Override
        public float[] outputs(Batch b) {
            if (millisPerBatch > 0) {
                try {
                    Thread.sleep(millisPerBatch);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            float[] out = new float[b.size() * 7];
            for (int r = 0; r < b.size(); r++) {
                for (int c = 0; c < 7; c++) {
                    double acc = 0;
                    for (int j = 0; j < b.featureCount(); j++) {
                        acc += Math.sin(1 + c * 7 + j) * b.features()[r * b.featureCount() + j];
                    }
                    out[r * 7 + c] = (float) (2 * acc);
                }
            }
            return out;
        }

        @Override
        public String describe() {
            return "slow teacher";
        }
    }

    /**
     * A teacher id with quotes, backslashes or control characters is stored as valid JSON and read back as given, so the
     * store is recognized as that teacher's (the id came back escaped, and such a store was "made by a different teacher").
     */
    @Test
    void aTeacherIdOfAnyCharactersIsReadBackAsGiven(@TempDir Path tmp) throws Exception {
        int n = 0;
        // lone UTF-16 surrogates (half of a pair cut off) have no UTF-8 form: written raw they came back as '?', another teacher
        for (String id : new String[]{"mlp \"big\" v2", "C:\\models\\t.onnx", "tab\tand\u0001", "plain-id", "cut \uD83D", "\uDE00 cut",
                "emoji \uD83D\uDE00 ok"}) {
            Path out = tmp.resolve("s" + n++ + ".d4j");
            Labeler.label(new SlowTeacher(0), data(), out, new Labeler.Options(0, ValueCodec.F32, 16, 8, id), null);
            try (SoftTargetStore s = SoftTargetStore.open(out)) {
                assertEquals(id, StoredTeacher.teacherId(s.header().provenance()));
                assertTrue(JsonLine.parse(s.header().provenance()) instanceof java.util.Map, s.header().provenance());
                assertEquals(200, StoredTeacher.of(s, id).classes() > 0 ? s.rows() : -1, id); // accepted as this teacher's
            }
            // labeling again with the same id finds the finished store its own
            assertTrue(Labeler.label(new SlowTeacher(0), data(), out, new Labeler.Options(0, ValueCodec.F32, 16, 8, id), null)
                    .alreadyComplete(), id);
        }
        assertEquals("unknown", StoredTeacher.teacherId("{\"description\":\"x\"}"));
        assertEquals("old", StoredTeacher.teacherId("not json, \"teacher\": \"old\""), "a record from elsewhere: the id as written");
    }

    @Test
    void storedTeacherGivesWhatTheLiveTeacherGave(@TempDir Path tmp) throws Exception {
        Dataset data = data();
        SlowTeacher t = new SlowTeacher(0);
        Labeler.Result r = Labeler.label(t, data, tmp.resolve("dense.d4j"), OPTIONS, null);
        assertEquals(200, r.rows());
        try (SoftTargetStore s = SoftTargetStore.open(tmp.resolve("dense.d4j"))) {
            StoredTeacher st = StoredTeacher.of(s, "slow-teacher");
            int[] idx = {5, 199, 0, 17};
            Batch b = Batch.of(data, idx);
            assertArrayEquals(t.outputs(b), st.outputs(b), 0f);
            assertTrue(st.serves(data));
            assertFalse(st.serves(data.head(100)), "another dataset");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StoredTeacher.of(s, "big-teacher"));
            assertTrue(e.getMessage().contains("was made by teacher 'slow-teacher', but 'big-teacher' was expected"), e.getMessage());
        }
        // top-k: the same entries as a live top-k view, best first
        Labeler.label(t, data, tmp.resolve("top3.d4j"), new Labeler.Options(3, ValueCodec.F32, 16, 8, "slow-teacher"), null);
        try (SoftTargetStore s = SoftTargetStore.open(tmp.resolve("top3.d4j"))) {
            SparseTeacher st = (SparseTeacher) StoredTeacher.of(s, null);
            Batch b = Batch.of(data, new int[]{3, 150});
            SparseTeacher.TopK live = TopKTeacher.of(t, 3).topK(b);
            SparseTeacher.TopK stored = st.topK(b);
            assertArrayEquals(live.ids(), stored.ids());
            assertArrayEquals(live.logProbs(), stored.logProbs(), 0f);
        }
        Labeler.Result again = Labeler.label(t, data, tmp.resolve("dense.d4j"), OPTIONS, null);
        assertTrue(again.alreadyComplete(), "a second run over a complete store does nothing");
    }

    /** A complete store labeled otherwise is refused naming each difference; a k beyond the classes is refused before any row. */
    @Test
    void aStoreLabeledOtherwiseIsRefusedNamingTheDifferences(@TempDir Path tmp) throws Exception {
        Dataset data = data();
        SlowTeacher t = new SlowTeacher(0);
        Path p = tmp.resolve("dense.d4j");
        Labeler.label(t, data, p, OPTIONS, null);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Labeler.label(t, data, p, new Labeler.Options(0, ValueCodec.F16, 32, 8, "other-teacher"), null));
        assertTrue(e.getMessage().startsWith(p + " already holds a store with other settings or another teacher: it was made by a "
                + "different teacher (provenance {\"teacher\":\"slow-teacher\""), e.getMessage());
        assertTrue(e.getMessage().contains("now {\"teacher\":\"other-teacher\"") && e.getMessage().contains("; dtype F32 vs F16; ")
                && e.getMessage().contains("; chunk rows 16 vs 32. Delete it to relabel"), e.getMessage());
        // the same teacher on other data (another --limit) is not called another teacher
        IllegalStateException rows = assertThrows(IllegalStateException.class, () -> Labeler.label(t, data.head(100), p, OPTIONS, null));
        assertTrue(rows.getMessage().contains(": it was made by the same teacher from other data (or with another description)"
                + " (provenance ") && !rows.getMessage().contains("different teacher") && rows.getMessage().contains("; rows 200 vs 100"),
                rows.getMessage());
        IllegalArgumentException k = assertThrows(IllegalArgumentException.class,
                () -> Labeler.label(t, data, tmp.resolve("top8.d4j"), new Labeler.Options(8, ValueCodec.F16, 16, 8, "slow-teacher"), null));
        assertEquals("top-8 rows of a teacher with 7 classes: k must be 1 to 7 (0 for dense rows)", k.getMessage());
        assertFalse(Files.exists(StoreWriter.partialPath(tmp.resolve("top8.d4j"))));
    }

    /**
     * A dataset of no samples is refused naming it, dense and top-k, before the teacher is asked anything: not by the store's
     * header ("store rows and chunkRows must be > 0, got 0 and 16", which names no dataset or file). Nothing is written.
     */
    @Test
    void anEmptyDatasetIsNamedBeforeAnythingIsWritten(@TempDir Path tmp) {
        Dataset empty = new Dataset("empty", new float[0], 6, new int[0], 7);
        Path out = tmp.resolve("e.d4j");
        for (int k : new int[]{0, 3}) {
            Labeler.Options o = new Labeler.Options(k, ValueCodec.F16, 16, 8, "slow-teacher");
            RecordingTeacher teacher = new RecordingTeacher(Integer.MAX_VALUE);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Labeler.label(teacher, empty, out, o, null));
            assertEquals("the dataset empty has no samples: there is nothing to label, and a store holds at least one row", e.getMessage());
            assertEquals(List.of(), teacher.batches, "the teacher was not called");
            assertFalse(Files.exists(out) || Files.exists(StoreWriter.partialPath(out)), "nothing written");
        }
    }

    /** The slow teacher's logits times {@code weight}: the same model with other weights (same description, same id). */
    static Teacher retrained(double weight) {
        return scaled(weight, "slow teacher", "slow teacher, weights x" + weight);
    }

    /** The slow teacher's logits times {@code weight}, described as {@code description}, of identity {@code identity}. */
    static Teacher scaled(double weight, String description, String identity) {
        SlowTeacher base = new SlowTeacher(0);
        return new Teacher() {
            @Override
            public int classes() {
                return base.classes();
            }

            @Override
            public TeacherValues values() {
                return TeacherValues.LOGITS;
            }

            @Override
            public float[] outputs(Batch b) {
                float[] out = base.outputs(b);
                for (int i = 0; i < out.length; i++) {
                    out[i] *= (float) weight;
                }
                return out;
            }

            @Override
            public String describe() {
                return description;
            }

            @Override
            public String identity() {
                return identity;
            }
        };
    }

    /**
     * A teacher retrained under the same id (same description, other weights) can neither finish an interrupted store of the
     * old weights nor be given the old weights' complete store: either would mix or swap two teachers' outputs silently.
     */
    @Test
    void aTeacherWithOtherWeightsUnderTheSameIdIsRefused(@TempDir Path tmp) throws Exception {
        Dataset data = data();
        Path p = tmp.resolve("dense.d4j");
        class Stop extends RuntimeException {
        }
        assertThrows(Stop.class, () -> Labeler.label(retrained(1), data, p, OPTIONS, rows -> {
            if (rows >= 96) {
                throw new Stop();
            }
        }));
        assertTrue(Files.exists(StoreWriter.partialPath(p)), "interrupted");
        StoreMismatchException resumed = assertThrows(StoreMismatchException.class, () -> Labeler.label(retrained(2), data, p, OPTIONS, null));
        assertTrue(resumed.getMessage().contains("it was made by a teacher with the same id ('slow-teacher') but other weights or another"
                + " model (content "), resumed.getMessage());
        Labeler.Result done = Labeler.label(retrained(1), data, p, OPTIONS, null);
        assertEquals(96, done.resumedFrom(), "the same weights resume");
        Path whole = tmp.resolve("whole.d4j");
        Labeler.label(retrained(1), data, whole, OPTIONS, null);
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(whole), Files.readAllBytes(p)), "resumed = uninterrupted");

        IllegalStateException complete = assertThrows(IllegalStateException.class, () -> Labeler.label(retrained(2), data, p, OPTIONS, null));
        assertTrue(complete.getMessage().startsWith(p + " already holds a store with other settings or another teacher: it was made by"
                + " a teacher with the same id ('slow-teacher') but other weights or another model"), complete.getMessage());
        assertTrue(Labeler.label(retrained(1), data, p, OPTIONS, null).alreadyComplete());

        // another description under the same id is what it always was, not "other weights" (the hash covers it too)
        Teacher described = scaled(1, "slow teacher, other output", "slow teacher, other output");
        IllegalStateException description = assertThrows(IllegalStateException.class, () -> Labeler.label(described, data, p, OPTIONS, null));
        assertTrue(description.getMessage().contains("it was made by the same teacher from other data (or with another description)")
                && !description.getMessage().contains("other weights"), description.getMessage());
    }

    /** A labeling an older build started (no weights' hash) is not resumed, and the message says why. */
    @Test
    void aPartialStoreWithoutRecordedWeightsSaysItIsFromAnOlderVersion(@TempDir Path tmp) throws Exception {
        Dataset data = data();
        Path p = tmp.resolve("old.d4j");
        StoreHeader now = Labeler.header(retrained(1), data, OPTIONS);
        StoreHeader legacy = new StoreHeader(now.layout(), now.codec(), now.values(), now.vocab(), now.k(), now.rows(), now.chunkRows(),
                now.temperature(), Labeler.withoutWeights(now.provenance()));
        try (StoreWriter w = StoreWriter.open(p, legacy)) {
            w.writeDense(retrained(1).outputs(Batch.range(data, 0, 32)), 32);
        }
        StoreMismatchException e = assertThrows(StoreMismatchException.class, () -> Labeler.label(retrained(1), data, p, OPTIONS, null));
        assertTrue(e.getMessage().contains("it was started by an older Distill4J, which recorded no hash of the teacher's weights"),
                e.getMessage());
    }

    /**
     * A complete store from before stores recorded the teacher's weights has only its id to go by: it is reused for that id,
     * as it was then, not refused.
     */
    @Test
    void aCompleteStoreWithoutRecordedWeightsIsReusedByItsId(@TempDir Path tmp) throws Exception {
        Dataset data = data();
        Path p = tmp.resolve("old.d4j");
        StoreHeader now = Labeler.header(retrained(1), data, OPTIONS);
        String old = now.provenance().replaceAll(",\"teacherWeights\":\"[0-9a-f]+\"", "");
        assertTrue(old.length() < now.provenance().length(), now.provenance());
        StoreHeader legacy = new StoreHeader(now.layout(), now.codec(), now.values(), now.vocab(), now.k(), now.rows(), now.chunkRows(),
                now.temperature(), old);
        try (StoreWriter w = StoreWriter.open(p, legacy)) {
            float[] logits = retrained(1).outputs(Batch.range(data, 0, data.size()));
            w.writeDense(logits, data.size());
            w.finish();
        }
        assertTrue(Labeler.label(retrained(1), data, p, OPTIONS, null).alreadyComplete());
        IllegalStateException other = assertThrows(IllegalStateException.class, () -> Labeler.label(retrained(1), data, p,
                new Labeler.Options(0, ValueCodec.F32, 16, 8, "another-teacher"), null));
        assertTrue(other.getMessage().contains("it was made by a different teacher"), other.getMessage());
    }

    /** A probability teacher with zero probabilities (PAD alignment, underflow): top-k rows stay finite, as dense rows do. */
    @Test
    void topKRowsOfZeroProbabilitiesAreFlooredNotInfinite(@TempDir Path tmp) throws Exception {
        Teacher zeros = new Teacher() {
            @Override
            public int classes() {
                return 4;
            }

            @Override
            public TeacherValues values() {
                return TeacherValues.PROBABILITIES;
            }

            @Override
            public float[] outputs(Batch b) {
                float[] out = new float[b.size() * 4];
                for (int r = 0; r < b.size(); r++) {
                    out[r * 4] = 0.7f;
                    out[r * 4 + 1] = 0.3f;
                }
                return out;
            }

            @Override
            public String describe() {
                return "zeros";
            }
        };
        Dataset data = data();
        for (ValueCodec codec : ValueCodec.values()) {
            Path p = tmp.resolve("top3-" + codec + ".d4j");
            Labeler.label(zeros, data, p, new Labeler.Options(3, codec, 16, 8, "zeros"), null);
            try (SoftTargetStore s = SoftTargetStore.open(p)) {
                int[] idx = {0, 199};
                SoftTargetStore.TopKRows r = s.topK(idx);
                for (int i = 0; i < idx.length; i++) {
                    assertEquals(0, r.ids()[i * 3]);
                    assertEquals(1, r.ids()[i * 3 + 1]);
                    float floor = r.logProbs()[i * 3 + 2];
                    assertTrue(Float.isFinite(floor) && floor < -100 && floor > -104, codec + ": " + floor);
                }
                // what training checks
                org.distill4j.loss.LogitBatch.ofTopK(2, 4, new float[8], r.ids(), r.logProbs(), 3, null);
            }
        }
    }

    /** Wrapping a stored teacher must not widen what it serves: the store's rows exist only for the labeled dataset. */
    @Test
    void wrappedStoredTeachersServeOnlyTheLabeledDataset(@TempDir Path tmp) throws Exception {
        Dataset data = data();
        Dataset other = data.head(100);
        SlowTeacher live = new SlowTeacher(0);
        Labeler.label(live, data, tmp.resolve("dense.d4j"), OPTIONS, null);
        try (SoftTargetStore s = SoftTargetStore.open(tmp.resolve("dense.d4j"))) {
            StoredTeacher stored = StoredTeacher.of(s, "slow-teacher");
            List<Teacher> wrapped = List.of(
                    org.distill4j.teacher.EnsembleTeacher.of(stored, live),
                    org.distill4j.teacher.EnsembleTeacher.of(live, stored),
                    org.distill4j.teacher.VocabularyAlignment.align(stored, 9, org.distill4j.teacher.VocabularyAlignment.Mode.PAD),
                    org.distill4j.teacher.VocabularyAlignment.align(stored, 5, org.distill4j.teacher.VocabularyAlignment.Mode.TRUNCATE),
                    TopKTeacher.of(stored, 2));
            for (Teacher w : wrapped) {
                assertTrue(w.serves(data), w.describe() + " serves the labeled dataset");
                assertFalse(w.serves(other), w.describe() + " must not serve another dataset");
            }
        }
        // live teachers only: any data
        assertTrue(org.distill4j.teacher.EnsembleTeacher.of(live, new SlowTeacher(0)).serves(other));
        assertTrue(TopKTeacher.of(live, 2).serves(other));
    }

    /**
     * The same labeling job started again while the first still runs (in another process) is refused, and the first's
     * file is not touched; once the first is gone (killed: the kernel drops its lock), the store resumes.
     */
    @Test
    void aSecondLabelingOfAStoreBeingLabeledIsRefused(@TempDir Path tmp) throws Exception {
        Path whole = tmp.resolve("whole.d4j");
        Labeler.label(new SlowTeacher(0), data(), whole, OPTIONS, null);

        Path out = tmp.resolve("twice.d4j");
        Path partial = StoreWriter.partialPath(out);
        Process p = labelChild(tmp, out, "200"); // 25 batches of 200 ms: 5 s
        try {
            StoreHeader h = Labeler.header(new SlowTeacher(0), data(), OPTIONS);
            long oneChunk = h.chunkOffset(1);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!(Files.exists(partial) && Files.size(partial) >= oneChunk) && System.nanoTime() < deadline && p.isAlive()) {
                Thread.sleep(5);
            }
            assertTrue(p.isAlive(), "the child is labeling: " + Files.readString(tmp.resolve("child.log")));
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> Labeler.label(new SlowTeacher(0), data(), out, OPTIONS, null));
            assertTrue(e.getMessage().contains(partial + " is being written by another writer"), e.getMessage());
            assertTrue(p.isAlive(), "refused while the child was still labeling: " + Files.readString(tmp.resolve("child.log")));
            assertFalse(Files.exists(out), "the second run finished nothing");
            assertTrue(Files.size(partial) >= oneChunk, "the child's chunks are kept");
        } finally {
            p.destroyForcibly(); // SIGKILL on Linux
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        }
        Labeler.Result r = Labeler.label(new SlowTeacher(0), data(), out, OPTIONS, null);
        assertTrue(r.resumedFrom() >= 16 && r.resumedFrom() < 200, "resumed from the child's chunks: " + r.resumedFrom());
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(out));
    }

    /** {@link LabelChild} labeling {@code out} in another JVM, with its extra arguments, its output in tmp/child.log. */
    private static Process labelChild(Path tmp, Path out, String... args) throws java.io.IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"),
                LabelChild.class.getName(), out.toString()));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile()).start();
    }

    @Test
    void aLabelingProcessKilledWithSigkillResumesToTheSameStore(@TempDir Path tmp) throws Exception {
        Path whole = tmp.resolve("whole.d4j");
        Labeler.label(new SlowTeacher(0), data(), whole, OPTIONS, null);

        Path out = tmp.resolve("killed.d4j");
        Path partial = StoreWriter.partialPath(out);
        Process p = labelChild(tmp, out);
        StoreHeader h = Labeler.header(new SlowTeacher(0), data(), OPTIONS);
        long twoChunks = h.chunkOffset(2);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!(Files.exists(partial) && Files.size(partial) >= twoChunks) && System.nanoTime() < deadline && p.isAlive()) {
            Thread.sleep(5);
        }
        assertTrue(p.isAlive(), "the child was still labeling when killed: " + Files.readString(tmp.resolve("child.log")));
        p.destroyForcibly(); // SIGKILL on Linux
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertFalse(Files.exists(out), "no half-written store carries the final name");
        assertTrue(Files.size(partial) < h.completeSize(), "killed before the end");

        Labeler.Result r = Labeler.label(new SlowTeacher(0), data(), out, OPTIONS, null);
        assertTrue(r.resumedFrom() >= 32 && r.resumedFrom() % 16 == 0 && r.resumedFrom() < 200,
                "resumed at a chunk boundary: " + r.resumedFrom());
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(out));
    }
    /** A teacher that records the batches it is given (first row, size) and stops labeling after {@code stopAfter} calls. */
    static final class RecordingTeacher implements Teacher {
        private final Teacher inner = new SlowTeacher(0);
        private final int stopAfter;
        final List<String> batches = new ArrayList<>();

        RecordingTeacher(int stopAfter) {
            this.stopAfter = stopAfter;
        }

        @Override
        public int classes() {
            return inner.classes();
        }

        @Override
        public TeacherValues values() {
            return inner.values();
        }

        @Override
        public float[] outputs(Batch b) {
            if (batches.size() == stopAfter) {
                throw new IllegalStateException("interrupted");
            }
            batches.add(b.indices()[0] + "+" + b.size());
            return inner.outputs(b);
        }

        @Override
        public String describe() {
            return inner.describe();
        }
    }

    /**
     * Teacher batches never cross a chunk boundary: a resume starts at one, so it gives the teacher exactly the batches an
     * uninterrupted run gives it from there (a batch's shape can change the last bits of a teacher's outputs). With chunks
     * of 16 rows and batches of 6, a run used to be called at rows 0, 6, 12, 18, ..., and a run resumed at row 32 at 32,
     * 38, ..., batches an uninterrupted run never made.
     */
    @Test
    void aResumedLabelingGivesTheTeacherTheBatchesOfAnUninterruptedRun(@TempDir Path tmp) throws Exception {
        Labeler.Options o = new Labeler.Options(0, ValueCodec.F32, 16, 6, "slow-teacher");
        RecordingTeacher whole = new RecordingTeacher(-1);
        Path wholeOut = tmp.resolve("whole.d4j");
        Labeler.label(whole, data(), wholeOut, o, null);
        List<String> expected = new ArrayList<>();
        for (int chunk = 0; chunk < 200; chunk += 16) {
            for (int from = chunk; from < Math.min(200, chunk + 16); from += 6) {
                expected.add(from + "+" + (Math.min(Math.min(200, chunk + 16), from + 6) - from));
            }
        }
        assertEquals(expected, whole.batches, "batches of 6 from each chunk's first row, the last of a chunk shorter");

        Path out = tmp.resolve("resumed.d4j");
        RecordingTeacher first = new RecordingTeacher(8); // stops in chunk 2 (its 3rd batch is the 9th call)
        assertThrows(IllegalStateException.class, () -> Labeler.label(first, data(), out, o, null));
        RecordingTeacher rest = new RecordingTeacher(-1);
        Labeler.Result r = Labeler.label(rest, data(), out, o, null);
        assertEquals(32, r.resumedFrom());
        int at = whole.batches.indexOf("32+6");
        assertTrue(at > 0, whole.batches.toString());
        assertEquals(whole.batches.subList(at, whole.batches.size()), rest.batches);
        assertArrayEquals(Files.readAllBytes(wholeOut), Files.readAllBytes(out));
    }
    /**
     * With a DL4J teacher (whose matrix maths may round a row differently in a batch of another shape), a labeling
     * interrupted after some chunks and resumed writes the store an uninterrupted run writes, byte for byte, with
     * chunks that are no multiple of the batch.
     */
    @Test
    void aResumedLabelingWithADl4jTeacherEqualsAnUninterruptedRun(@TempDir Path tmp) throws Exception {
        Random rng = new Random(7);
        int n = 700;
        int d = 96;
        float[] x = new float[n * d];
        int[] y = new int[n];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        Dataset data = new Dataset("wide", x, d, y, 10);
        Teacher t = org.distill4j.teacher.Dl4jTeacher.of(org.distill4j.testing.Nets.logitsMlp(d, 300, 10,
                new org.nd4j.linalg.learning.config.Adam(1e-2), 3, 0));
        Labeler.Options o = new Labeler.Options(0, ValueCodec.F32, 128, 100, "dl4j");
        Path whole = tmp.resolve("whole.d4j");
        Labeler.label(t, data, whole, o, null);
        Path out = tmp.resolve("resumed.d4j");
        int[] calls = {0};
        Teacher interrupted = new Teacher() {
            @Override
            public int classes() {
                return t.classes();
            }

            @Override
            public TeacherValues values() {
                return t.values();
            }

            @Override
            public float[] outputs(Batch b) {
                if (++calls[0] > 5) {
                    throw new IllegalStateException("interrupted");
                }
                return t.outputs(b);
            }

            @Override
            public String describe() {
                return t.describe();
            }

            @Override
            public String identity() {
                return t.identity();
            }
        };
        assertThrows(IllegalStateException.class, () -> Labeler.label(interrupted, data, out, o, null));
        Labeler.Result r = Labeler.label(t, data, out, o, null);
        assertTrue(r.resumedFrom() > 0 && r.resumedFrom() % 128 == 0, "resumed at a chunk boundary: " + r.resumedFrom());
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(out));
    }
}
