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
