package org.distill4j.store;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static org.distill4j.store.LabelerTest.OPTIONS;
import static org.distill4j.store.LabelerTest.data;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a labeling run records: the provenance, field by field; the teacher id as given; its result's counts and rates. */
class LabelerRecordsTest {

    @Test
    void theProvenanceHoldsExactlyTheFieldsGiven() {
        Dataset data = data();
        String tail = "\"dataset\":\"synthetic\",\"datasetRows\":200,\"datasetFingerprint\":" + data.fingerprint()
                + ",\"datasetFeatureFingerprint\":" + data.featureFingerprint() + "}";
        assertEquals("{\"teacher\":\"t\",\"description\":\"an \\\"mlp\\\"\"," + tail, Labeler.provenance("t", "an \"mlp\"", data));
        assertEquals("{\"teacher\":\"t\",\"description\":\"d\"," + tail, Labeler.provenance("t", "d", null, data), "no weights");
        assertEquals("{\"teacher\":\"t\",\"description\":\"d\",\"teacherWeights\":\"0a1b\"," + tail,
                Labeler.provenance("t", "d", "0a1b", data));
        assertEquals("{\"teacher\":\"t\",\"description\":\"d\",\"source\":\"CRC32C 0a1b2c3d, 5 bytes\"," + tail,
                Labeler.provenance("t", "d", null, "CRC32C 0a1b2c3d, 5 bytes", data));
    }

    /** Half of a surrogate pair anywhere in an id (not only at an end) is escaped, and the id reads back as given. */
    @Test
    void loneSurrogatesInsideAnIdAreKept(@TempDir Path tmp) throws IOException {
        int n = 0;
        for (String id : new String[]{"a\uD83Db", "a\uDE00b", "\uD83D\uD83D\uDE00", "\uD83D\uDE00\uDE00", "x\uDE00\uD83Dy"}) {
            Path out = tmp.resolve("s" + n++ + ".d4j");
            Labeler.label(new LabelerTest.SlowTeacher(0), data().head(16), out, new Labeler.Options(0, ValueCodec.F16, 16, 8, id), null);
            try (SoftTargetStore s = SoftTargetStore.open(out)) {
                assertEquals(id, StoredTeacher.teacherId(s.header().provenance()), "id with code units "
                        + id.chars().mapToObj(Integer::toHexString).toList());
            }
        }
    }

    /** k may be every class of the teacher, not one more. */
    @Test
    void kMayBeEveryClassOfTheTeacher() {
        LabelerTest.SlowTeacher t = new LabelerTest.SlowTeacher(0);
        StoreHeader h = Labeler.header(t, data(), new Labeler.Options(7, ValueCodec.F16, 16, 8, "t"));
        assertEquals(7, h.k());
        assertEquals(StoreHeader.Layout.TOP_K, h.layout());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Labeler.header(t, data(), new Labeler.Options(8, ValueCodec.F16, 16, 8, "t")));
        assertEquals("top-8 rows of a teacher with 7 classes: k must be 1 to 7 (0 for dense rows)", e.getMessage());
    }

    /** A resumed run reports where it resumed, its own time (no more than the call took) and the rows it labeled per second. */
    @Test
    void aResumedRunReportsItsRowsTimeAndRate(@TempDir Path tmp) throws IOException {
        Dataset data = data();
        LabelerTest.SlowTeacher t = new LabelerTest.SlowTeacher(1);
        Path out = tmp.resolve("r.d4j");
        try (StoreWriter w = StoreWriter.open(out, Labeler.header(t, data, OPTIONS))) { // an interrupted run: 2 chunks of 16
            w.writeDense(t.outputs(Batch.range(data, 0, 32)), 32);
        }
        long before = System.nanoTime();
        Labeler.Result r = Labeler.label(t, data, out, OPTIONS, null);
        double wall = (System.nanoTime() - before) / 1e9;
        assertEquals(32, r.resumedFrom());
        assertEquals(200, r.rows());
        assertTrue(r.seconds() > 0 && r.seconds() <= wall, r.seconds() + " s of a call of " + wall + " s");
        assertEquals(168 / r.seconds(), r.rowsPerSecond(), 1e-9 * r.rowsPerSecond(), "the 168 rows labeled now, per second");
        assertTrue(r.rowsPerSecond() >= 168 / wall, r.rowsPerSecond() + " rows/s");
    }
}
