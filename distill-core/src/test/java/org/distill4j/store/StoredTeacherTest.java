package org.distill4j.store;

import org.distill4j.data.Dataset;
import org.distill4j.loss.TeacherValues;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a stored teacher says about itself, and which datasets it serves: only those whose (feature) fingerprint it records. */
class StoredTeacherTest {

    private static Dataset data(long seed, int n) {
        Random rng = new Random(seed);
        float[] x = new float[n * 3];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < 3; j++) {
                x[i * 3 + j] = (float) rng.nextGaussian();
            }
            y[i] = rng.nextInt(4);
        }
        return new Dataset("d" + seed, x, 3, y, 4);
    }

    private static Path store(Path p, StoreHeader.Layout layout, String provenance, int rows) throws IOException {
        return store(p, layout, provenance, rows, 1.0);
    }

    /** A store of values said to be computed at {@code temperature}. */
    private static Path store(Path p, StoreHeader.Layout layout, String provenance, int rows, double temperature) throws IOException {
        StoreHeader h = layout == StoreHeader.Layout.DENSE
                ? new StoreHeader(layout, ValueCodec.F16, StoreHeader.ValueKind.LOGITS, 4, 0, rows, 8, temperature, provenance)
                : new StoreHeader(layout, ValueCodec.BF16, StoreHeader.ValueKind.LOG_PROBS, 4, 2, rows, 8, temperature, provenance);
        try (StoreWriter w = StoreWriter.open(p, h)) {
            if (layout == StoreHeader.Layout.DENSE) {
                w.writeDense(SoftTargetStoreTest.values(81, rows * 4), rows);
            } else {
                int[] ids = new int[rows * 2];
                for (int r = 0; r < rows; r++) {
                    ids[2 * r] = r % 4;
                    ids[2 * r + 1] = (r + 1) % 4;
                }
                w.writeTopK(ids, SoftTargetStoreTest.logProbs(82, rows, 2), rows);
            }
            w.finish();
        }
        return p;
    }

    @Test
    void itDescribesItselfByIdRowsLayoutAndDtypeAndItsIdentityDoesNotNameTheFile(@TempDir Path tmp) throws IOException {
        Dataset data = data(1, 13);
        String prov = Labeler.provenance("mlp-v1", "an mlp", data);
        Path dense = store(tmp.resolve("dense.d4j"), StoreHeader.Layout.DENSE, prov, 13);
        Path top = store(tmp.resolve("top.d4j"), StoreHeader.Layout.TOP_K, prov, 13);
        try (SoftTargetStore d = SoftTargetStore.open(dense); SoftTargetStore t = SoftTargetStore.open(top)) {
            StoredTeacher sd = StoredTeacher.of(d, "mlp-v1");
            StoredTeacher st = StoredTeacher.of(t, null);
            assertEquals("stored teacher 'mlp-v1' (dense.d4j, 13 rows, dense f16)", sd.describe());
            assertEquals("stored teacher 'mlp-v1' (top.d4j, 13 rows, top-2 bf16)", st.describe());
            assertEquals("stored teacher 'mlp-v1' (13 rows, dense f16), provenance " + prov, sd.identity());
            assertEquals("stored teacher 'mlp-v1' (13 rows, top-2 bf16), provenance " + prov, st.identity());
            assertEquals(TeacherValues.LOGITS, sd.values());
            assertEquals(4, sd.classes());
            assertTrue(sd.serves(data));
            assertTrue(st.serves(data));
        }
        // moved: the same teacher
        Path moved = Files.move(dense, tmp.resolve("elsewhere.d4j"));
        try (SoftTargetStore d = SoftTargetStore.open(moved)) {
            assertEquals("stored teacher 'mlp-v1' (13 rows, dense f16), provenance " + prov, StoredTeacher.of(d, null).identity());
        }
    }

    /** Another dataset of the same size, a provenance without a fingerprint, or one of another number: not served. */
    /**
     * A store whose header says its values were computed at a temperature other than 1 is refused as a teacher, dense and
     * top-k, naming the file and the field: served as they are, T = 4 values would train as T = 1 ones (a flatter
     * distribution), without a word. Just above and below 1 too; at exactly 1 it is served.
     */
    @Test
    void aStoreOfValuesAtAnotherTemperatureIsRefusedNamingTheFileAndTheField(@TempDir Path tmp) throws IOException {
        Dataset data = data(3, 9);
        String prov = Labeler.provenance("mlp-v1", "an mlp", data);
        for (StoreHeader.Layout layout : StoreHeader.Layout.values()) {
            for (double t : new double[]{4.0, 0.5, Math.nextUp(1.0), Math.nextDown(1.0)}) {
                Path p = store(tmp.resolve(layout + "-" + t + ".d4j"), layout, prov, 9, t);
                try (SoftTargetStore s = SoftTargetStore.open(p)) {
                    IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                            () -> StoredTeacher.of(s, null), layout + " at T = " + t);
                    assertEquals(p + ": the header's temperature is " + t + ": its values were computed at T = " + t + ", but a "
                            + "stored teacher serves values at T = 1 (the loss softens them at its own temperature); store the "
                            + "teacher's T = 1 outputs (logits or log-probabilities) instead", e.getMessage());
                }
            }
            Path one = store(tmp.resolve(layout + "-1.d4j"), layout, prov, 9, 1.0);
            try (SoftTargetStore s = SoftTargetStore.open(one)) {
                assertTrue(StoredTeacher.of(s, "mlp-v1").serves(data), layout + " at T = 1");
            }
        }
    }

    @Test
    void itServesOnlyTheDatasetWhoseFingerprintItRecords(@TempDir Path tmp) throws IOException {
        Dataset data = data(2, 11);
        Dataset sameSize = data(3, 11);
        assertTrue(data.fingerprint() != sameSize.fingerprint());
        String prov = Labeler.provenance("t", "d", data);
        try (SoftTargetStore s = SoftTargetStore.open(store(tmp.resolve("a.d4j"), StoreHeader.Layout.DENSE, prov, 11))) {
            StoredTeacher t = StoredTeacher.of(s, "t");
            assertTrue(t.serves(data));
            assertFalse(t.serves(sameSize), "same size, other samples");
        }
        try (SoftTargetStore s = SoftTargetStore.open(store(tmp.resolve("b.d4j"), StoreHeader.Layout.DENSE, "{\"teacher\":\"t\"}", 11))) {
            assertFalse(StoredTeacher.of(s, "t").serves(data), "no fingerprint recorded");
        }
        String other = prov.replace("\"datasetFeatureFingerprint\":" + data.featureFingerprint(),
                "\"datasetFeatureFingerprint\":" + (data.featureFingerprint() + 1));
        try (SoftTargetStore s = SoftTargetStore.open(store(tmp.resolve("c.d4j"), StoreHeader.Layout.DENSE, other, 11))) {
            assertFalse(StoredTeacher.of(s, "t").serves(data), "another feature fingerprint");
        }
        // the feature fingerprint decides when it is recorded: the full one is for stores from before it
        String otherFull = prov.replace("\"datasetFingerprint\":" + data.fingerprint(), "\"datasetFingerprint\":" + (data.fingerprint() + 1));
        try (SoftTargetStore s = SoftTargetStore.open(store(tmp.resolve("e.d4j"), StoreHeader.Layout.DENSE, otherFull, 11))) {
            assertTrue(StoredTeacher.of(s, "t").serves(data), "another full fingerprint, the same feature fingerprint");
        }
        String oldOther = Labeler.withoutFeatureFingerprint(otherFull);
        try (SoftTargetStore s = SoftTargetStore.open(store(tmp.resolve("f.d4j"), StoreHeader.Layout.DENSE, oldOther, 11))) {
            assertFalse(StoredTeacher.of(s, "t").serves(data), "an old store of another fingerprint");
        }
        try (SoftTargetStore s = SoftTargetStore.open(store(tmp.resolve("d.d4j"), StoreHeader.Layout.DENSE, prov, 12))) {
            assertFalse(StoredTeacher.of(s, "t").serves(data), "the right fingerprint, another row count");
        }
    }
}
