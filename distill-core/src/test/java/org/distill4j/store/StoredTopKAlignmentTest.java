package org.distill4j.store;

import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.TopKKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.SparseTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.TopKTeacher;
import org.distill4j.teacher.VocabularyAlignment;
import org.distill4j.testing.Nets;
import org.distill4j.train.DistillResult;
import org.distill4j.train.Distiller;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.learning.config.Adam;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A top-k store (API logprobs imported, or a top-k labeling) of a teacher with another vocabulary size than the
 * student's: aligned, it is still a top-k teacher, and {@code topk-kd} trains from it (the user's report: align gave
 * a plain teacher, which topk-kd refused, and wrapping it in TopKTeacher asked the store for dense rows).
 */
class StoredTopKAlignmentTest {
    static final int V = 9; // LabelerTest's 7-class teacher, PAD-aligned: classes 7 and 8 are the student's own

    @Test
    void anAlignedTopKStoreTrainsWithTopKKd(@TempDir Path tmp) throws Exception {
        Dataset data = LabelerTest.data();
        LabelerTest.SlowTeacher live = new LabelerTest.SlowTeacher(0);
        Path p = tmp.resolve("top3.d4j");
        Labeler.label(live, data, p, new Labeler.Options(3, ValueCodec.F32, 16, 8, "slow-teacher"), null);
        // the same samples, labeled in the student's 9 classes (the fingerprint covers features and labels, not classes)
        Dataset train = new Dataset("synthetic/9", data.features(), data.featureCount(), data.labels(), V);
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            Teacher stored = StoredTeacher.of(s, "slow-teacher");
            Teacher padded = VocabularyAlignment.align(stored, V, VocabularyAlignment.Mode.PAD);
            assertTrue(padded instanceof SparseTeacher, padded.describe());
            assertTrue(padded.describe().contains("padded from 7 to 9 classes"), padded.describe());
            Batch b = Batch.of(data, new int[]{4, 199, 0});
            SparseTeacher.TopK entries = ((SparseTeacher) stored).topK(b);
            SparseTeacher.TopK top = ((SparseTeacher) padded).topK(b);
            assertEquals(5, top.k());
            for (int r = 0; r < 3; r++) {
                assertArrayEquals(java.util.Arrays.copyOfRange(entries.ids(), r * 3, r * 3 + 3),
                        java.util.Arrays.copyOfRange(top.ids(), r * 5, r * 5 + 3));
                assertArrayEquals(new int[]{7, 8}, java.util.Arrays.copyOfRange(top.ids(), r * 5 + 3, r * 5 + 5));
            }
            // as topk-kd's error suggests: the store's best entries, not its (absent) dense rows
            SparseTeacher.TopK wrapped = TopKTeacher.of(padded, 3).topK(b);
            assertArrayEquals(entries.ids(), wrapped.ids());
            assertArrayEquals(entries.logProbs(), wrapped.logProbs(), 0f);
            Teacher cut = VocabularyAlignment.align(stored, 5, VocabularyAlignment.Mode.TRUNCATE);
            assertTrue(cut instanceof SparseTeacher, cut.describe());
            assertTrue(cut.describe().contains("truncated from 7 to 5 classes"), cut.describe());
            assertTrue(cut.serves(data) && padded.serves(data) && !padded.serves(data.head(100)), "only the labeled dataset");

            for (TopKKd.Tail tail : TopKKd.Tail.values()) {
                Dl4jStudent student = Dl4jStudent.of(Nets.logitsMlp(6, 16, V, new Adam(1e-2), 11, 0));
                DistillResult r = Distiller.builder().teacher(padded).student(student).loss(new TopKKd(2, tail))
                        .trainData(train).epochs(6).batchSize(32).seed(2).backend(new CpuBackend()).build().run();
                double first = r.epochs().get(0).loss();
                double last = r.epochs().get(5).loss();
                assertTrue(Double.isFinite(first) && last < first, tail + ": the loss falls: " + first + " -> " + last);
                // the student's new classes have no teacher mass under either tail: the student learns to give them little
                float[] logits = student.forward(Batch.range(train, 0, train.size()), false);
                double mass = 0;
                for (int i = 0; i < train.size(); i++) {
                    double z = 0;
                    for (int c = 0; c < V; c++) {
                        z += Math.exp(logits[i * V + c]);
                    }
                    mass += (Math.exp(logits[i * V + 7]) + Math.exp(logits[i * V + 8])) / z;
                }
                mass /= train.size();
                assertTrue(mass < 0.05, tail + ": mean student mass on the padded classes " + mass);
            }
        }
    }
}
