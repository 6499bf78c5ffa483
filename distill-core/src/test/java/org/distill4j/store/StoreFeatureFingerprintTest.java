package org.distill4j.store;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A store serves the samples it was labeled on whatever their labels (its provenance records the dataset's feature
 * fingerprint), and a store or {@code .partial} from before that was recorded keeps working as it did: reused, resumed,
 * and serving only the exact dataset it was labeled on.
 */
class StoreFeatureFingerprintTest {
    private static final Dataset DATA = LabelerTest.data(); // 200 samples, 6 features, 7 classes, all labeled

    /** The same features (and order) with other labels: every third changed, every fifth ignored, every seventh unlabeled. */
    private static Dataset relabeled() {
        int[] y = DATA.labels().clone();
        for (int i = 0; i < y.length; i++) {
            y[i] = i % 7 == 0 ? Dataset.UNLABELED : i % 5 == 0 ? Dataset.IGNORE_INDEX : i % 3 == 0 ? (y[i] + 1) % 7 : y[i];
        }
        return new Dataset("relabeled", DATA.features(), DATA.featureCount(), y, DATA.classes());
    }

    private static Dataset ignoredSome() {
        int[] y = DATA.labels().clone();
        for (int i = 1; i < y.length; i += 4) {
            y[i] = Dataset.IGNORE_INDEX;
        }
        return new Dataset("some ignored", DATA.features(), DATA.featureCount(), y, DATA.classes());
    }

    /** DATA with one feature value one ulp up. */
    private static Dataset oneValueChanged(int at) {
        float[] x = DATA.features().clone();
        x[at] = Math.nextUp(x[at]);
        return new Dataset(DATA.name(), x, DATA.featureCount(), DATA.labels(), DATA.classes());
    }

    /** DATA with rows 10 and 11 swapped (labels with them). */
    private static Dataset twoRowsSwapped() {
        int[] order = new int[DATA.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        order[10] = 11;
        order[11] = 10;
        return DATA.subset(order, DATA.name());
    }

    @Test
    void aStoreLabeledOnLabeledDataServesTheSameSamplesUnlabeledRelabeledOrPartlyIgnored(@TempDir Path tmp) throws IOException {
        LabelerTest.SlowTeacher teacher = new LabelerTest.SlowTeacher(0);
        assertTrue(DATA.labeledSize() == DATA.size(), "labeled on fully labeled data");
        for (int k : new int[]{0, 3}) { // dense and top-k
            Path out = tmp.resolve("k" + k + ".d4j");
            Labeler.label(teacher, DATA, out, new Labeler.Options(k, ValueCodec.F32, 16, 8, "slow-teacher"), null);
            try (SoftTargetStore s = SoftTargetStore.open(out)) {
                String prov = s.header().provenance();
                assertTrue(prov.contains("\"datasetFingerprint\":" + DATA.fingerprint() + ","), prov);
                assertTrue(prov.contains("\"datasetFeatureFingerprint\":" + DATA.featureFingerprint() + "}"), prov);
                StoredTeacher t = StoredTeacher.of(s, "slow-teacher");
                String layout = k == 0 ? "dense" : "top-" + k;
                assertTrue(t.serves(DATA), layout + ": the dataset labeled");
                Dataset unlabeled = DATA.withoutLabels("unlabeled");
                assertEquals(0, unlabeled.labeledSize());
                assertTrue(t.serves(unlabeled), layout + ": its labels removed");
                assertTrue(t.serves(relabeled()), layout + ": other labels, some unlabeled and ignored");
                assertTrue(t.serves(ignoredSome()), layout + ": some IGNORE_INDEX");
                for (int at : new int[]{0, 599, DATA.features().length - 1}) {
                    assertFalse(t.serves(oneValueChanged(at)), layout + ": one feature value one ulp up, at " + at);
                }
                assertFalse(t.serves(twoRowsSwapped()), layout + ": two rows swapped");
                assertFalse(t.serves(DATA.shuffled(9)), layout + ": another order");
                assertFalse(t.serves(DATA.head(199)), layout + ": one sample fewer");
                assertFalse(t.serves(Dataset.concat("more", DATA, DATA.head(1))), layout + ": one sample more");
                assertFalse(t.serves(twoRowsSwapped().withoutLabels("u")), layout + ": two rows swapped, unlabeled");
                if (k == 0) { // the rows it serves for the unlabeled samples are the teacher's outputs for their features
                    Batch b = Batch.range(unlabeled, 40, 77);
                    assertArrayEquals(teacher.outputs(b), t.outputs(b));
                }
            }
        }
    }

    /** A store whose provenance has the old shape (the full fingerprint only) serves exactly its dataset, as before. */
    @Test
    void aStoreRecordingOnlyTheOldFingerprintServesOnlyItsExactDataset(@TempDir Path tmp) throws IOException {
        LabelerTest.SlowTeacher teacher = new LabelerTest.SlowTeacher(0);
        StoreHeader now = Labeler.header(teacher, DATA, LabelerTest.OPTIONS);
        StoreHeader old = oldShape(now);
        Path out = writeAll(tmp.resolve("old.d4j"), old, teacher);
        try (SoftTargetStore s = SoftTargetStore.open(out)) {
            StoredTeacher t = StoredTeacher.of(s, "slow-teacher");
            assertTrue(t.serves(DATA), "its own dataset");
            assertFalse(t.serves(DATA.withoutLabels("unlabeled")), "unlabeled: the old fingerprint covers the labels");
            assertFalse(t.serves(relabeled()), "relabeled");
            assertFalse(t.serves(ignoredSome()), "some ignored");
            assertFalse(t.serves(oneValueChanged(3)), "a feature changed");
            assertFalse(t.serves(DATA.head(199)), "one sample fewer");
        }
    }

    /** A provenance that is not one JSON object is searched by key: neither key is taken for the other. */
    @Test
    void theTwoKeysAreNeverTakenForEachOther() {
        String json = "{\"teacher\":\"t\",\"datasetFingerprint\":11,\"datasetFeatureFingerprint\":22}";
        assertEquals(11L, StoredTeacher.recorded(json, Labeler.FINGERPRINT));
        assertEquals(22L, StoredTeacher.recorded(json, Labeler.FEATURE_FINGERPRINT));
        String notJson = "teacher t; \"datasetFeatureFingerprint\": 22, \"datasetFingerprint\" : 11";
        assertEquals(11L, StoredTeacher.recorded(notJson, Labeler.FINGERPRINT));
        assertEquals(22L, StoredTeacher.recorded(notJson, Labeler.FEATURE_FINGERPRINT));
        assertEquals(null, StoredTeacher.recorded("x \"datasetFeatureFingerprint\":22", Labeler.FINGERPRINT));
        assertEquals(null, StoredTeacher.recorded("x \"datasetFingerprint\":11", Labeler.FEATURE_FINGERPRINT));
        assertEquals(null, StoredTeacher.recorded("{\"datasetFingerprint\":11}", Labeler.FEATURE_FINGERPRINT));
        // a key inside a JSON string (a description) is no field
        assertEquals(null, StoredTeacher.recorded("{\"description\":\"\\\"datasetFeatureFingerprint\\\":5\"}", Labeler.FEATURE_FINGERPRINT));
        assertEquals(null, StoredTeacher.recorded("{\"datasetFeatureFingerprint\":\"22\"}", Labeler.FEATURE_FINGERPRINT), "a string");
    }

    /**
     * A labeling {@code .partial} started by the old code (no feature fingerprint) resumes where it stopped and finishes as
     * the old code would have finished it, byte for byte; the complete store is then reused, not refused.
     */
    @Test
    void aLabelingPartialFromBeforeTheFeatureFingerprintResumes(@TempDir Path tmp) throws IOException {
        LabelerTest.SlowTeacher teacher = new LabelerTest.SlowTeacher(0);
        StoreHeader old = oldShape(Labeler.header(teacher, DATA, LabelerTest.OPTIONS));
        Path want = writeAll(tmp.resolve("want.d4j"), old, teacher);
        Path out = tmp.resolve("resumed.d4j");
        try (StoreWriter w = StoreWriter.open(out, old)) { // 2 chunks of 16 rows and part of a third, then "killed"
            w.writeDense(teacher.outputs(Batch.range(DATA, 0, 40)), 40);
        }
        assertTrue(Files.exists(StoreWriter.partialPath(out)));
        Labeler.Result r = Labeler.label(teacher, DATA, out, LabelerTest.OPTIONS, null);
        assertEquals(32, r.resumedFrom());
        assertFalse(r.alreadyComplete());
        assertArrayEquals(Files.readAllBytes(want), Files.readAllBytes(out), "finished as the old code would have");
        Labeler.Result again = Labeler.label(teacher, DATA, out, LabelerTest.OPTIONS, null);
        assertTrue(again.alreadyComplete(), "the complete old store is reused");
        assertArrayEquals(Files.readAllBytes(want), Files.readAllBytes(out));
        try (SoftTargetStore s = SoftTargetStore.open(out)) {
            assertEquals(old, s.header());
            assertTrue(StoredTeacher.of(s, "slow-teacher").serves(DATA));
            assertFalse(StoredTeacher.of(s, "slow-teacher").serves(DATA.withoutLabels("u")), "an old store serves as before");
        }
        // an old partial of other data is still refused, as before
        Path other = tmp.resolve("other.d4j");
        try (StoreWriter w = StoreWriter.open(other, old)) {
            w.writeDense(teacher.outputs(Batch.range(DATA, 0, 16)), 16);
        }
        StoreMismatchException e = org.junit.jupiter.api.Assertions.assertThrows(StoreMismatchException.class,
                () -> Labeler.label(teacher, DATA.withoutLabels(DATA.name()), other, LabelerTest.OPTIONS, null));
        assertTrue(e.getMessage().contains("started with different settings"), e.getMessage());
    }

    /** The same for an import: an old {@code .partial} resumes and finishes in the old shape; the complete store is reused. */
    @Test
    void anImportPartialFromBeforeTheFeatureFingerprintResumes(@TempDir Path tmp) throws Exception {
        Random rng = new Random(5);
        float[] z = new float[DATA.size() * 7];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) (rng.nextGaussian() * 3);
        }
        Path npy = NpyArrayTest.writeF32(tmp.resolve("logits.npy"), z, DATA.size(), 7);
        StoreImport.Options o = StoreImport.Options.defaults().withCodec(ValueCodec.F32).withChunkRows(16);
        Path now = tmp.resolve("now.d4j");
        StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, now, o, null);
        StoreHeader old;
        try (SoftTargetStore s = SoftTargetStore.open(now)) {
            assertTrue(s.header().provenance().contains("\"datasetFeatureFingerprint\":" + DATA.featureFingerprint()));
            assertTrue(StoredTeacher.of(s, null).serves(DATA.withoutLabels("u")), "an import serves the samples unlabeled");
            old = oldShape(s.header());
        }
        Path want = tmp.resolve("want.d4j");
        try (StoreWriter w = StoreWriter.open(want, old)) {
            w.writeDense(z, DATA.size());
            w.finish();
        }
        Path out = tmp.resolve("resumed.d4j");
        try (StoreWriter w = StoreWriter.open(out, old)) {
            w.writeDense(java.util.Arrays.copyOf(z, 50 * 7), 50);
        }
        Labeler.Result r = StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o, null);
        assertEquals(48, r.resumedFrom());
        assertArrayEquals(Files.readAllBytes(want), Files.readAllBytes(out), "finished as the old code would have");
        assertTrue(StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o, null).alreadyComplete(), "reused");
        try (SoftTargetStore s = SoftTargetStore.open(out)) {
            assertEquals(old, s.header());
            assertFalse(StoredTeacher.of(s, null).serves(DATA.withoutLabels("u")), "an old store serves as before");
        }
    }

    /**
     * Labeling the same samples with other labels (changed, some unlabeled or ignored, or all removed) into a complete
     * store of the same teacher and settings reuses it as it is: the teacher is not called, not a byte of the file changes
     * (nor its modification time), and its header keeps the first labeling's dataset name and datasetFingerprint. It used
     * to be refused as "made by the same teacher from other data". Other features, other weights and other settings are
     * still refused, naming the file, as is a store from before the feature fingerprint for labels it was not labeled with.
     */
    @Test
    void aCompleteStoreIsReusedAsItIsForTheSameSamplesWithOtherLabels(@TempDir Path tmp) throws IOException {
        for (int k : new int[]{0, 3}) { // dense and top-k
            Labeler.Options o = new Labeler.Options(k, ValueCodec.F32, 16, 8, "slow-teacher");
            Path out = tmp.resolve("k" + k + ".d4j");
            Labeler.label(new LabelerTest.SlowTeacher(0), DATA, out, o, null);
            StoreHeader first = header(out);
            Files.setLastModifiedTime(out, java.nio.file.attribute.FileTime.fromMillis(1_600_000_000_000L));
            byte[] bytes = Files.readAllBytes(out);
            for (Dataset other : new Dataset[]{relabeled(), DATA.withoutLabels("unlabeled"), ignoredSome()}) {
                LabelerTest.RecordingTeacher teacher = new LabelerTest.RecordingTeacher(Integer.MAX_VALUE);
                Labeler.Result r = Labeler.label(teacher, other, out, o, null);
                String what = "k " + k + ", " + other.name();
                assertTrue(r.alreadyComplete(), what + ": reused");
                assertEquals(DATA.size(), r.rows(), what);
                assertEquals(DATA.size(), r.resumedFrom(), what + ": nothing left to label");
                assertEquals(java.util.List.of(), teacher.batches, what + ": the teacher was not called");
                assertArrayEquals(bytes, Files.readAllBytes(out), what + ": not a byte rewritten");
                assertEquals(1_600_000_000_000L, Files.getLastModifiedTime(out).toMillis(), what + ": not written to");
                assertFalse(Files.exists(StoreWriter.partialPath(out)), what);
                try (SoftTargetStore s = SoftTargetStore.open(out)) {
                    assertEquals(first, s.header(), what + ": the header as it was first written");
                    assertEquals(DATA.fingerprint(), StoredTeacher.recorded(s.header().provenance(), Labeler.FINGERPRINT),
                            what + ": store info shows the first labeling's fingerprint");
                    assertTrue(s.header().provenance().contains("\"dataset\":\"synthetic\""), s.header().provenance());
                    assertTrue(StoredTeacher.of(s, "slow-teacher").serves(other), what + ": it serves them");
                }
            }
            // other features, even unlabeled: refused, naming the file, and the store left as it is
            for (Dataset other : new Dataset[]{oneValueChanged(5), twoRowsSwapped().withoutLabels("u"), DATA.head(199)}) {
                StoreMismatchException e = assertThrows(StoreMismatchException.class,
                        () -> Labeler.label(new LabelerTest.SlowTeacher(0), other, out, o, null));
                assertTrue(e.getMessage().startsWith(out + " already holds a store with other settings or another teacher: it was "
                        + "made by the same teacher from other data"), e.getMessage());
            }
            // the same samples with other labels, but another teacher's weights under the same id, or other settings
            StoreMismatchException weights = assertThrows(StoreMismatchException.class,
                    () -> Labeler.label(LabelerTest.retrained(2), relabeled(), out, o, null));
            assertTrue(weights.getMessage().startsWith(out + " already holds a store"), weights.getMessage());
            StoreMismatchException settings = assertThrows(StoreMismatchException.class, () -> Labeler.label(
                    new LabelerTest.SlowTeacher(0), relabeled(), out, new Labeler.Options(k, ValueCodec.F16, 16, 8, "slow-teacher"), null));
            assertTrue(settings.getMessage().startsWith(out + " already holds a store") && settings.getMessage().contains("dtype F32 vs F16"),
                    settings.getMessage());
            assertArrayEquals(bytes, Files.readAllBytes(out), "k " + k + ": refusals leave the store as it is");
        }
        // a store from before the feature fingerprint serves only the labels it was labeled with: not reused for others
        LabelerTest.SlowTeacher teacher = new LabelerTest.SlowTeacher(0);
        Path old = writeAll(tmp.resolve("old.d4j"), oldShape(Labeler.header(teacher, DATA, LabelerTest.OPTIONS)), teacher);
        byte[] oldBytes = Files.readAllBytes(old);
        StoreMismatchException e = assertThrows(StoreMismatchException.class,
                () -> Labeler.label(teacher, relabeled(), old, LabelerTest.OPTIONS, null));
        assertTrue(e.getMessage().startsWith(old + " already holds a store with other settings or another teacher: it was made by the"
                + " same teacher from other data"), e.getMessage());
        assertArrayEquals(oldBytes, Files.readAllBytes(old));
        assertTrue(Labeler.label(teacher, DATA, old, LabelerTest.OPTIONS, null).alreadyComplete(), "its own labels: reused, as before");
    }

    /**
     * A {@code .partial} started on the same samples with other labels is resumed where it stopped (it used to be refused
     * as "started with different settings"): the finished store is the one the first labeling would have finished, byte for
     * byte (its header as it was started), and its rows are those a fresh labeling with the new labels writes, byte for
     * byte. A {@code .partial} of other features is still refused, naming it, and left as it is.
     */
    @Test
    void aPartialIsResumedForTheSameSamplesWithOtherLabels(@TempDir Path tmp) throws IOException {
        for (int k : new int[]{0, 3}) {
            Labeler.Options o = new Labeler.Options(k, ValueCodec.F16, 16, 8, "slow-teacher");
            Path out = tmp.resolve("k" + k + ".d4j");
            // five teacher batches of 8: two chunks of 16 rows on disk, then "killed"
            assertThrows(IllegalStateException.class, () -> Labeler.label(new LabelerTest.RecordingTeacher(5), DATA, out, o, null));
            assertTrue(Files.exists(StoreWriter.partialPath(out)), "interrupted");
            LabelerTest.RecordingTeacher teacher = new LabelerTest.RecordingTeacher(Integer.MAX_VALUE);
            Labeler.Result r = Labeler.label(teacher, relabeled(), out, o, null);
            assertFalse(r.alreadyComplete());
            assertEquals(32, r.resumedFrom(), "k " + k + ": resumed after its two chunks");
            assertEquals("32+8", teacher.batches.get(0), "k " + k + ": the teacher asked only for the rows left");
            Path first = tmp.resolve("k" + k + "-first.d4j");
            Labeler.label(new LabelerTest.SlowTeacher(0), DATA, first, o, null);
            assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(out), "k " + k + ": finished as it was started");
            Path fresh = tmp.resolve("k" + k + "-fresh.d4j");
            Labeler.label(new LabelerTest.SlowTeacher(0), relabeled(), fresh, o, null);
            assertArrayEquals(rowBytes(fresh), rowBytes(out), "k " + k + ": the rows of a fresh labeling with the new labels");
            assertFalse(java.util.Arrays.equals(Files.readAllBytes(fresh), Files.readAllBytes(out)), "k " + k
                    + ": only the header differs (the fresh one records the new labels)");
            assertEquals(DATA.fingerprint(), StoredTeacher.recorded(header(out).provenance(), Labeler.FINGERPRINT));
            assertEquals(relabeled().fingerprint(), StoredTeacher.recorded(header(fresh).provenance(), Labeler.FINGERPRINT));

            // a .partial of other features (one value one ulp up), labeled without labels: refused, naming it, kept
            Path cut = tmp.resolve("k" + k + "-cut.d4j");
            assertThrows(IllegalStateException.class, () -> Labeler.label(new LabelerTest.RecordingTeacher(5), DATA, cut, o, null));
            Path partial = StoreWriter.partialPath(cut);
            byte[] started = Files.readAllBytes(partial);
            StoreMismatchException e = assertThrows(StoreMismatchException.class,
                    () -> Labeler.label(new LabelerTest.SlowTeacher(0), oneValueChanged(600).withoutLabels("u"), cut, o, null));
            assertTrue(e.getMessage().startsWith(partial + " was started with different settings; it was made by the same teacher from"
                    + " other data"), e.getMessage());
            assertArrayEquals(started, Files.readAllBytes(partial), "the .partial is left as it is");
            assertFalse(Files.exists(cut));
        }
    }

    /**
     * An import of the same source for the same samples with other labels is treated as a labeling is: the complete store
     * is reused as it is, and a {@code .partial} resumed and finished as it was started. Another version of the source is
     * still refused.
     */
    @Test
    void anImportOfTheSameSourceForTheSameSamplesWithOtherLabelsIsReusedAndResumed(@TempDir Path tmp) throws Exception {
        Random rng = new Random(8);
        float[] z = new float[DATA.size() * 7];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) (rng.nextGaussian() * 3);
        }
        Path npy = NpyArrayTest.writeF32(tmp.resolve("logits.npy"), z, DATA.size(), 7);
        StoreImport.Options o = StoreImport.Options.defaults().withCodec(ValueCodec.F32).withChunkRows(16).withTeacherId("api");
        Path out = tmp.resolve("imported.d4j");
        StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o, null);
        Files.setLastModifiedTime(out, java.nio.file.attribute.FileTime.fromMillis(1_600_000_000_000L));
        byte[] bytes = Files.readAllBytes(out);
        Labeler.Result r = StoreImport.dense(npy, StoreImport.Values.LOGITS, relabeled(), out, o, null);
        assertTrue(r.alreadyComplete(), "reused for other labels");
        assertArrayEquals(bytes, Files.readAllBytes(out));
        assertEquals(1_600_000_000_000L, Files.getLastModifiedTime(out).toMillis(), "not written to");

        StoreHeader started = header(out);
        Path cut = tmp.resolve("cut.d4j");
        try (StoreWriter w = StoreWriter.open(cut, started)) { // 3 chunks and part of a fourth, then "killed"
            w.writeDense(java.util.Arrays.copyOf(z, 50 * 7), 50);
        }
        Labeler.Result resumed = StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA.withoutLabels("unlabeled"), cut, o, null);
        assertEquals(48, resumed.resumedFrom(), "resumed for the samples without labels");
        assertArrayEquals(bytes, Files.readAllBytes(cut), "finished as it was started");

        // another version of the source, for the same samples with other labels: refused as before
        z[3] += 1;
        Path changed = NpyArrayTest.writeF32(tmp.resolve("logits.npy"), z, DATA.size(), 7);
        StoreMismatchException e = assertThrows(StoreMismatchException.class,
                () -> StoreImport.dense(changed, StoreImport.Values.LOGITS, relabeled(), out, o, null));
        assertTrue(e.getMessage().startsWith(out + " was imported from another version of " + npy + ": its content differs"), e.getMessage());
        assertArrayEquals(bytes, Files.readAllBytes(out));
    }

    /**
     * A store or {@code .partial} imported under a teacher id before the feature fingerprint was recorded (its source's
     * CRC32C and size recorded), then imported again from a changed source: refused as another version of the source,
     * naming it, as a store of today is; not as a store of other settings. (A mutant that told another version only for
     * stores with a feature fingerprint survived every other test.)
     */
    @Test
    void anOldImportOfAChangedSourceIsNamedAnotherVersion(@TempDir Path tmp) throws Exception {
        Random rng = new Random(10);
        float[] z = new float[DATA.size() * 7];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) (rng.nextGaussian() * 3);
        }
        Path npy = NpyArrayTest.writeF32(tmp.resolve("logits.npy"), z, DATA.size(), 7);
        StoreImport.Options o = StoreImport.Options.defaults().withCodec(ValueCodec.F32).withChunkRows(16).withTeacherId("api");
        Path now = tmp.resolve("now.d4j");
        StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, now, o, null);
        StoreHeader old = oldShape(header(now));
        assertTrue(StoreImport.sourceOf(old.provenance()) != null, "the old shape records its source");
        Path out = tmp.resolve("old.d4j");
        try (StoreWriter w = StoreWriter.open(out, old)) {
            w.writeDense(z, DATA.size());
            w.finish();
        }
        Path cut = tmp.resolve("old-cut.d4j");
        try (StoreWriter w = StoreWriter.open(cut, old)) {
            w.writeDense(java.util.Arrays.copyOf(z, 50 * 7), 50);
        }
        assertTrue(StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o, null).alreadyComplete(), "the same source: reused");
        z[3] += 1;
        NpyArrayTest.writeF32(npy, z, DATA.size(), 7);
        StoreMismatchException e = assertThrows(StoreMismatchException.class,
                () -> StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, out, o, null));
        assertTrue(e.getMessage().startsWith(out + " was imported from another version of " + npy + ": its content differs"), e.getMessage());
        Path partial = StoreWriter.partialPath(cut);
        e = assertThrows(StoreMismatchException.class, () -> StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, cut, o, null));
        assertTrue(e.getMessage().startsWith(partial + " was started from another version of " + npy + ": its content differs"),
                e.getMessage());
    }

    /**
     * What a reuse for other labels tells (the INFO line, through slf4j-simple on System.err): the store or {@code .partial},
     * how it was made, the first dataset's name and this one's, and whether it is reused or resumed. A plain reuse of the
     * same labels says nothing of other labels. (Mutants that misnamed these, or logged it on every reuse, survived.)
     */
    @Test
    void aReuseForOtherLabelsSaysWhichStoreHowItWasMadeAndWhatHappens(@TempDir Path tmp) throws Exception {
        Labeler.Options o = new Labeler.Options(0, ValueCodec.F32, 16, 8, "slow-teacher");
        Path out = tmp.resolve("labeled.d4j");
        Labeler.label(new LabelerTest.SlowTeacher(0), DATA, out, o, null);
        String same = logOf(() -> Labeler.label(new LabelerTest.SlowTeacher(0), DATA, out, o, null));
        assertTrue(same.contains(out + " is already complete") && !same.contains("other labels"), same);
        String reused = logOf(() -> Labeler.label(new LabelerTest.SlowTeacher(0), relabeled(), out, o, null));
        assertTrue(reused.contains(out + " was labeled on the same samples with other labels (dataset 'synthetic', now 'relabeled';")
                && reused.contains("; it is reused, its header as it was first written"), reused);

        Path cut = tmp.resolve("cut.d4j");
        assertThrows(IllegalStateException.class, () -> Labeler.label(new LabelerTest.RecordingTeacher(5), DATA, cut, o, null));
        String resumed = logOf(() -> Labeler.label(new LabelerTest.SlowTeacher(0), DATA.withoutLabels("unlabeled"), cut, o, null));
        assertTrue(resumed.contains(StoreWriter.partialPath(cut) + " was started on the same samples with other labels (dataset "
                + "'synthetic', now 'unlabeled';") && resumed.contains("; it is resumed, its header as it was first written"), resumed);

        Path npy = NpyArrayTest.writeF32(tmp.resolve("logits.npy"), new float[DATA.size() * 7], DATA.size(), 7);
        StoreImport.Options io = StoreImport.Options.defaults().withCodec(ValueCodec.F32).withChunkRows(16);
        Path imported = tmp.resolve("imported.d4j");
        StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, imported, io, null);
        String again = logOf(() -> StoreImport.dense(npy, StoreImport.Values.LOGITS, ignoredSome(), imported, io, null));
        assertTrue(again.contains(imported + " was imported for the same samples with other labels (dataset 'synthetic', now "
                + "'some ignored';") && again.contains("; it is reused, its header"), again);
    }

    /** What {@code run} logged (slf4j-simple writes to the System.err of the moment). */
    private static String logOf(org.junit.jupiter.api.function.Executable run) throws Exception {
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(bytes, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            run.execute();
        } catch (Throwable t) {
            throw new AssertionError(t);
        } finally {
            System.setErr(err);
        }
        return bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
    }

    private static StoreHeader header(Path store) throws IOException {
        try (SoftTargetStore s = SoftTargetStore.open(store)) {
            return s.header();
        }
    }

    /** The bytes of a complete store after its header: its chunks (rows and CRCs) and footer. */
    private static byte[] rowBytes(Path store) throws IOException {
        byte[] all = Files.readAllBytes(store);
        return java.util.Arrays.copyOfRange(all, (int) header(store).dataOffset(), all.length);
    }

    /** {@code h} as a store made before the feature fingerprint: the same provenance without it. */
    private static StoreHeader oldShape(StoreHeader h) {
        String p = h.provenance();
        String without = Labeler.withoutFeatureFingerprint(p);
        assertTrue(p.contains("\"datasetFeatureFingerprint\":") && !without.contains("FeatureFingerprint")
                && without.endsWith(",\"datasetFingerprint\":" + DATA.fingerprint() + "}"), without);
        return Labeler.withProvenance(h, without);
    }

    private static Path writeAll(Path p, StoreHeader h, LabelerTest.SlowTeacher teacher) throws IOException {
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeDense(teacher.outputs(Batch.range(DATA, 0, DATA.size())), DATA.size());
            w.finish();
        }
        return p;
    }
}
