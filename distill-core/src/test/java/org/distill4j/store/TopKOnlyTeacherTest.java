package org.distill4j.store;

import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Dataset;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TopKKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.EnsembleTeacher;
import org.distill4j.teacher.SparseTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.TopKTeacher;
import org.distill4j.teacher.VocabularyAlignment;
import org.distill4j.testing.Nets;
import org.distill4j.train.Distiller;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.learning.config.Adam;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A top-k store (API logprobs) has no dense rows: a loss or an ensemble that reads them is refused when the run or the
 * ensemble is built, naming the store, not at the first batch with an UnsupportedOperationException (a user's report).
 */
class TopKOnlyTeacherTest {

    @Test
    void aTopKStoreIsRefusedUpFrontWhereDenseRowsAreRead(@TempDir Path tmp) throws Exception {
        Dataset data = LabelerTest.data();
        LabelerTest.SlowTeacher live = new LabelerTest.SlowTeacher(0);
        Path p = tmp.resolve("top3.d4j");
        Labeler.label(live, data, p, new Labeler.Options(3, ValueCodec.F32, 16, 8, "slow-teacher"), null);
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            Teacher stored = StoredTeacher.of(s, "slow-teacher");
            Teacher padded = VocabularyAlignment.align(stored, 9, VocabularyAlignment.Mode.PAD);
            Teacher best2 = TopKTeacher.of(stored, 2);
            for (Teacher t : List.of(stored, padded, best2)) {
                assertFalse(((SparseTeacher) t).hasDenseOutputs(), t.describe());
                int classes = t.classes();
                Dataset train = new Dataset("synthetic/" + classes, data.features(), data.featureCount(), data.labels(), classes);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder().teacher(t)
                        .student(Dl4jStudent.of(Nets.logitsMlp(6, 8, classes, new Adam(1e-2), 1, 0))).loss(new SoftTargetKd(2, 0.1))
                        .trainData(train).epochs(1).batchSize(32).seed(1).backend(new CpuBackend()).build(), t.describe());
                assertTrue(e.getMessage().startsWith("loss 'kd' reads the teacher's dense rows, but " + t.describe() + " holds only top-")
                        && e.getMessage().endsWith("use topk-kd (alone, or with ce in a WeightedSum)"), e.getMessage());
                // topk-kd takes it
                assertDoesNotThrow(() -> Distiller.builder().teacher(t)
                        .student(Dl4jStudent.of(Nets.logitsMlp(6, 8, classes, new Adam(1e-2), 1, 0))).loss(new TopKKd(2, TopKKd.Tail.RENORMALIZE))
                        .trainData(train).epochs(1).batchSize(32).seed(1).backend(new CpuBackend()).build());
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> EnsembleTeacher.of(live, stored));
            assertTrue(e.getMessage().startsWith("ensemble teacher 1 (stored teacher 'slow-teacher' (top3.d4j")
                    && e.getMessage().endsWith("holds only top-3 entries per row; an ensemble combines the members' dense rows"),
                    e.getMessage());
        }
        // a live teacher's top-k keeps its dense rows: kd and ensembles read them
        SparseTeacher liveTop = (SparseTeacher) TopKTeacher.of(live, 3);
        assertTrue(liveTop.hasDenseOutputs());
        assertDoesNotThrow(() -> EnsembleTeacher.of(live, liveTop));
    }
}
