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
    /** Data of {@code n} samples whose labels are the given ones, cycled (UNLABELED and IGNORE_INDEX among them). */
    static Dataset labeled(String name, int n, int... labels) {
        Dataset d = data(name, n, D, K);
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = labels[i % labels.length];
        }
        return new Dataset(name, d.features(), D, y, K);
    }

    /** kd that refuses unlabeled rows from epoch {@code from} (0-based) on, as a user's epoch-aware loss might. */
    static final class StrictFrom extends ForwardingLoss implements org.distill4j.loss.EpochAware {
        private final int from;
        private final int epoch;

        StrictFrom(int from, int epoch) {
            super(new SoftTargetKd(2, 0.5));
            this.from = from;
            this.epoch = epoch;
        }

        @Override
        public boolean acceptsUnlabeledRows() {
            return epoch < from;
        }

        @Override
        public org.distill4j.loss.LogitLoss atEpoch(int e, int epochs) {
            return new StrictFrom(from, e);
        }
    }

    /** An augmentation that removes the labels of the rows it changes (it is never applied here: every test only builds). */
    private static final org.distill4j.data.Augmentation UNLABELS = new org.distill4j.data.Augmentation() {
        @Override
        public Batch apply(Batch batch, java.util.Random rng) {
            throw new AssertionError("not trained here");
        }

        @Override
        public boolean removesLabels() {
            return true;
        }

        @Override
        public String describe() {
            return "unlabels";
        }
    };

    @Test
    void aRunReadsTheTeacherWhenALogitTermOrAFeatureTermDoes() {
        org.junit.jupiter.api.Assertions.assertTrue(Distiller.readsTeacher(new SoftTargetKd(2, 0.5), false));
        org.junit.jupiter.api.Assertions.assertTrue(Distiller.readsTeacher(
                new org.distill4j.loss.TopKKd(2, org.distill4j.loss.TopKKd.Tail.RENORMALIZE), false));
        org.junit.jupiter.api.Assertions.assertTrue(Distiller.readsTeacher(new CrossEntropy(), true));
        org.junit.jupiter.api.Assertions.assertFalse(Distiller.readsTeacher(new CrossEntropy(), false));
    }

    /**
     * Unlabeled samples and losses that need a label on every row: refused with the loss, its settings, the epoch where it is
     * not the first, and the counts; taken where the run leaves those samples out (no term reads the teacher).
     */
    @Test
    void unlabeledRowsAreRefusedByTheEpochsLossThatNeedsLabelsNamingIt() {
        int u = Dataset.UNLABELED;
        Dataset mixed = labeled("mixed", 10, 0, u, 1, 2, u); // 4 unlabeled
        Stub teacher = new Stub(K, null);
        org.distill4j.loss.Dkd dkd = new org.distill4j.loss.Dkd(1, 8, 4, 0);
        refused("loss 'dkd' " + dkd.settings() + " needs a hard label on every row it trains on, but 4 samples of training data"
                + " mixed are UNLABELED; label them, leave them out, or use a loss that takes unlabeled rows (kd, reverse-kl, gjsd, ...)",
                () -> ce().teacher(teacher).loss(dkd).trainData(mixed));
        SoftTargetKd kd = new SoftTargetKd(2, 0.5);
        refused("loss 'kd' " + kd.settings() + " at epoch 2 needs a hard label on every row it trains on, but 4 samples of"
                + " training data mixed are UNLABELED; label them, leave them out, or use a loss that takes unlabeled rows (kd,"
                + " reverse-kl, gjsd, ...)", () -> ce().teacher(teacher).loss(new StrictFrom(1, 0)).trainData(mixed).epochs(3));
        ce().teacher(teacher).loss(new StrictFrom(3, 0)).trainData(mixed).epochs(3).build(); // accepts in every epoch of the run
        // without a teacher term the unlabeled samples are left out, so a loss that would refuse them is taken
        ce().loss(new ForwardingLoss(new CrossEntropy()) {
            @Override
            public boolean acceptsUnlabeledRows() {
                return false;
            }
        }).trainData(mixed).build();
    }

    @Test
    void anAugmentationThatRemovesLabelsIsRefusedByTheEpochsLossThatNeedsThemNamingIt() {
        Stub teacher = new Stub(K, null);
        org.distill4j.loss.Dkd dkd = new org.distill4j.loss.Dkd(1, 8, 4, 0);
        String rest = " needs a hard label on every row it trains on, but augmentation unlabels removes the labels of the rows it"
                + " changes; use a loss that takes unlabeled rows (kd, reverse-kl, gjsd, ...) or an augmentation that keeps the labels";
        refused("loss 'dkd' " + dkd.settings() + rest, () -> ce().teacher(teacher).loss(dkd).augmentation(UNLABELS));
        refused("loss 'kd' " + new SoftTargetKd(2, 0.5).settings() + " at epoch 2" + rest,
                () -> ce().teacher(teacher).loss(new StrictFrom(1, 0)).augmentation(UNLABELS).epochs(2));
    }

    /**
     * Data without a labeled sample: a run whose only teacher reading is a feature term trains the unlabeled samples, so
     * its hard-label term is what is refused, with the counts of unlabeled and ignored samples.
     */
    @Test
    void aHardLabelTermOnDataWithoutLabelsIsRefusedWithTheCounts() {
        Dataset none = labeled("none", 10, Dataset.UNLABELED, Dataset.IGNORE_INDEX, Dataset.UNLABELED, Dataset.UNLABELED,
                Dataset.IGNORE_INDEX); // 6 unlabeled, 4 ignored
        refused("loss 'ce' " + new CrossEntropy().settings() + " has a hard-label term, but no sample of training data none has a"
                + " label (6 UNLABELED, 4 IGNORE_INDEX): the term would be 0 on every row; drop it (e.g. kd with alpha 0)",
                () -> ce().teacher(new Stub(K, null)).featureLoss(1, new DistillerFeatureTermsTest.Fixed(1), "s", "t").trainData(none));
    }

    /** kd reads dense rows: a top-k view of a live teacher still has them, so it is taken. */
    @Test
    void aDenseLossTakesATopKViewOfALiveTeacher() {
        ce().teacher(org.distill4j.teacher.TopKTeacher.of(new Stub(K, null), 2)).loss(new SoftTargetKd(2, 0.5)).build();
    }

    /**
     * The settings (a checkpoint's fingerprint) record the schedules, the teacher, the feature terms and the counts of
     * unlabeled and ignored samples; a run without them has none of those keys, as before they existed.
     */
    @Test
    void theSettingsRecordWhatTheRunUses() {
        Map<String, Object> s = ce().teacher(new Stub(K, null)).loss(new SoftTargetKd(2, 0.5))
                .temperature(Schedule.linear(4, 1)).alpha(Schedule.constant(0.25))
                .featureLoss(0.5, new DistillerFeatureTermsTest.Fixed(1), "s", "t")
                .testData(labeled("test", 6, 1, Dataset.IGNORE_INDEX, 2))
                .trainData(labeled("train", 10, 0, Dataset.UNLABELED, 1, Dataset.IGNORE_INDEX, 3))
                .engine("dl4j").epochs(2).build().settings();
        assertEquals("stub teacher", s.get("teacher"));
        assertEquals(Schedule.linear(4, 1).describe(), s.get("temperatureSchedule"));
        assertEquals(Schedule.constant(0.25).describe(), s.get("alphaSchedule"));
        assertEquals(java.util.List.of("0.5 * fixed{} (s <- t)"), s.get("featureLosses"));
        assertEquals(4, s.get("testLabeledSamples"));
        assertEquals(6, s.get("trainLabeledSamples"));
        assertEquals(2, s.get("trainUnlabeledSamples"));
        Map<String, Object> plain = ce().testData(data("test", 4, D, K)).build().settings();
        for (String key : new String[]{"temperatureSchedule", "alphaSchedule", "featureLosses", "testLabeledSamples",
                "trainLabeledSamples", "trainUnlabeledSamples"}) {
            org.junit.jupiter.api.Assertions.assertFalse(plain.containsKey(key), key + " in " + plain);
        }
    }
}
