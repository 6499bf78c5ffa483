package org.distill4j.train;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.FeatureBatch;
import org.distill4j.loss.FeatureLoss;
import org.distill4j.loss.HintLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;
import org.distill4j.student.Student;
import org.distill4j.teacher.Teacher;
import org.distill4j.testing.ForwardingLoss;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Every misconfiguration the Distiller refuses when it is built, before any training: each message names the setting, the
 * data or the model and what was expected (compared whole, so a check that is skipped, or answers for another, shows);
 * and the smallest valid settings are taken.
 */
class DistillerValidationTest {
    private static final int K = 4;
    private static final int D = 3;

    static Dataset data(String name, int n, int features, int classes) {
        float[] x = new float[n * features];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = i % classes;
            for (int j = 0; j < features; j++) {
                x[i * features + j] = 0.5f * i - j;
            }
        }
        return new Dataset(name, x, features, y, classes);
    }

    /** A student that is never trained here (every test only builds). */
    record Plain(int classes) implements Student {
        @Override
        public float[] forward(Batch batch, boolean training) {
            return new float[batch.size() * classes];
        }

        @Override
        public void backward(float[] dLogits) {
        }

        @Override
        public void endEpoch() {
        }

        @Override
        public long parameterCount() {
            return 0;
        }

        @Override
        public String describe() {
            return "plain student";
        }
    }

    /** A Checkpointable student. */
    static final class Saving extends org.distill4j.testing.ForwardingStudent implements org.distill4j.checkpoint.Checkpointable {
        Saving() {
            super(new Plain(K));
        }

        @Override
        public String describe() {
            return "saving student";
        }

        @Override
        public void writeState(java.io.DataOutputStream out) {
        }

        @Override
        public Restore readState(java.io.DataInputStream in) {
            return () -> { };
        }
    }

    /** A teacher of {@code classes} zero logits serving only data of the given name (null: any). */
    record Stub(int classes, String servesOnly) implements Teacher {
        @Override
        public TeacherValues values() {
            return TeacherValues.LOGITS;
        }

        @Override
        public float[] outputs(Batch batch) {
            return new float[batch.size() * classes];
        }

        @Override
        public String describe() {
            return "stub teacher";
        }

        @Override
        public boolean serves(Dataset data) {
            return servesOnly == null || servesOnly.equals(data.name());
        }
    }

    /** A trainable feature loss that cannot save its state. */
    static final class Unsaved implements FeatureLoss, FeatureLoss.Trainable {
        @Override
        public String name() {
            return "unsaved-hint";
        }

        @Override
        public Map<String, Object> settings() {
            return Map.of();
        }

        @Override
        public LossResult compute(FeatureBatch batch, float[] gradOut, float upstream) {
            throw new AssertionError("not trained here");
        }

        @Override
        public void step() {
        }

        @Override
        public long parameterCount() {
            return 0;
        }
    }

    private static Distiller.Builder ce() {
        return Distiller.builder().student(new Plain(K)).loss(new CrossEntropy()).trainData(data("train", 10, D, K));
    }

    private static void refused(String expected, Supplier<Distiller.Builder> b) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.get().build());
        assertEquals(expected, e.getMessage());
    }

    @Test
    void theSmallestValidSettingsAreTaken() {
        Distiller d = ce().epochs(1).batchSize(1).build();
        assertEquals(1, d.settings().get("epochs"));
        assertEquals(1, d.settings().get("batchSize"));
        assertEquals("none", d.settings().get("teacher"));
        // one labeled sample among ignored ones is enough; a test set of the same shape is taken
        int[] y = {Dataset.IGNORE_INDEX, 2, Dataset.IGNORE_INDEX};
        Dataset one = new Dataset("one", new float[3 * D], D, y, K);
        Distiller.builder().student(new Plain(K)).loss(new CrossEntropy()).trainData(one).testData(one).build();
    }

    @Test
    void countsAndDataAreRefusedNamingThem() {
        refused("epochs must be > 0, got -1", () -> ce().epochs(-1));
        refused("batchSize must be > 0, got 0", () -> ce().batchSize(0));
        refused("batchSize must be > 0, got -3", () -> ce().batchSize(-3));
        refused("training data nothing is empty", () -> ce().trainData(data("nothing", 0, D, K)));
        refused("student has 4 outputs but wide has 6 classes", () -> ce().trainData(data("wide", 10, D, 6)));
        refused("test data has 5 features per sample, training data 3", () -> ce().testData(data("test", 4, 5, K)));
        refused("test data test6 has 6 classes, the training data train and the student 4: its accuracy would count labels the"
                + " student cannot predict as wrong", () -> ce().testData(data("test6", 4, D, 6)));
        // an empty test set is no error (nothing to evaluate), one of only ignored samples is
        ce().testData(data("none", 0, D, K)).build();
    }

    @Test
    void teachersThatCannotServeTheRunAreRefused() {
        refused("loss 'kd' needs a teacher: set it with teacher(...)",
                () -> ce().loss(new SoftTargetKd(2, 0.5)));
        refused("feature losses need a teacher: set it with teacher(...)",
                () -> ce().featureLoss(1, new HintLoss(2, 2, 1e-3, 1), "a", "b"));
        Dataset train = data("train", 10, D, K);
        refused("teacher stub teacher cannot serve the training data " + train + ": a stored teacher serves only the samples it"
                + " was labeled on (the same features in the same order, whatever their labels)", () -> ce().teacher(new Stub(K, "other")).loss(new SoftTargetKd(2, 0.5)));
        refused("teacher has 5 classes but the student has 4; they must match, or align them explicitly with"
                + " VocabularyAlignment.align(teacher, 4, TRUNCATE or PAD)", () -> ce().teacher(new Stub(5, null)));
        ForwardingLoss both = new ForwardingLoss(new SoftTargetKd(2, 0.5)) {
            @Override
            public boolean needsTopK() {
                return true;
            }
        };
        refused("loss 'kd' needs both dense and top-k teacher outputs; one batch carries one of them",
                () -> ce().teacher(new Stub(K, null)).loss(both));
        refused("loss 'topk-kd' needs a teacher: set it with teacher(...)",
                () -> ce().loss(new org.distill4j.loss.TopKKd(2, org.distill4j.loss.TopKKd.Tail.RENORMALIZE)));
        refused("loss 'kd' reads the teacher's dense rows, but api logprobs holds only top-2 entries per row; use topk-kd (alone,"
                + " or with ce in a WeightedSum)", () -> ce().teacher(org.distill4j.testing.EntriesTeacher.neverAsked("api logprobs", K, 2))
                .loss(new SoftTargetKd(2, 0.5)));
        ce().teacher(org.distill4j.testing.EntriesTeacher.neverAsked("api logprobs", K, 2)).build(); // ce reads no teacher rows: a top-k-only teacher (for agreement) is taken
        refused("loss 'topk-kd' needs a top-k teacher (a SparseTeacher such as TopKTeacher.of(teacher, k)), got stub teacher",
                () -> ce().teacher(new Stub(K, null)).loss(new org.distill4j.loss.TopKKd(2, org.distill4j.loss.TopKKd.Tail.RENORMALIZE)));
    }

    @Test
    void whatCannotBeCheckpointedIsRefused(@TempDir Path tmp) {
        refused("checkpoints need a student that can save its state (a Checkpointable such as Dl4jStudent); plain student cannot",
                () -> ce().checkpoints(Checkpoints.in(tmp)));
        refused("checkpoints need every trainable feature loss to save its state (be Checkpointable); feature loss"
                + " 'unsaved-hint' cannot", () -> ce().student(new Saving()).teacher(new Stub(K, null))
                .featureLoss(1, new Unsaved(), "a", "b").checkpoints(Checkpoints.in(tmp)));
        // a feature loss that does not train has no state to save: taken
        ce().student(new Saving()).teacher(new Stub(K, null)).featureLoss(1, new org.distill4j.loss.AttentionTransfer(2), "a", "b")
                .checkpoints(Checkpoints.in(tmp)).build();
        // a Checkpointable student and a hint (which saves its state) are taken
        ce().student(new Saving()).teacher(new Stub(K, null)).featureLoss(1, new HintLoss(2, 2, 1e-3, 1), "a", "b")
                .checkpoints(Checkpoints.in(tmp)).build();
    }

    /** The epoch whose schedules leave the loss's range is named, counted from 1, with the loss's own reason. */
    @Test
    void theFirstEpochWithAnInvalidLossIsNamed() {
        Schedule alpha = new Schedule() {
            @Override
            public double at(int epoch, int epochs) {
                return epoch < 2 ? 0.5 : 1.5;
            }

            @Override
            public String describe() {
                return "test";
            }
        };
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ce().teacher(new Stub(K, null)).loss(new SoftTargetKd(2, 0.5)).alpha(alpha).epochs(4).build());
        // only the run's epochs are asked: a schedule that leaves the range after the last epoch is taken
        ce().teacher(new Stub(K, null)).loss(new SoftTargetKd(2, 0.5)).alpha(alpha).epochs(2).build();
        String reason = assertThrows(IllegalArgumentException.class, () -> new SoftTargetKd(2, 1.5)).getMessage();
        assertEquals("at epoch 3 of 4 the schedules give an invalid loss: " + reason, e.getMessage());
    }
}
