package org.distill4j.train;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Dataset;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.Dkd;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.ReverseKl;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TopKKd;
import org.distill4j.loss.WeightedSum;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.teacher.EnsembleTeacher;
import org.distill4j.teacher.TopKTeacher;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.learning.config.Adam;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Samples labeled {@link Dataset#UNLABELED} (unlabeled transfer data) train on the teacher's outputs: with no hard-label
 * term in the loss they train exactly as labeled samples do (bit for bit); with one, its term is 0 on them; in a run with
 * no teacher term they are left out, as ignored samples are; they are not evaluated; and data that leaves a hard-label
 * term nothing to train on is a clear error.
 */
class UnlabeledSamplesTest {
    private static final int D = IgnoredSamplesTest.D;
    private static final int K = IgnoredSamplesTest.K;
    private static final int N = IgnoredSamplesTest.N;
    private static final int BATCH = IgnoredSamplesTest.BATCH;
    private static final long SEED = IgnoredSamplesTest.SEED;
    private static final MultiLayerNetwork TEACHER = IgnoredSamplesTest.TEACHER;
    private static final MultiLayerNetwork TEACHER2 = IgnoredSamplesTest.TEACHER2;

    /** {@code data} with about half of its labels (fresh random ones, never all) UNLABELED, and a few IGNORE_INDEX. */
    static Dataset withUnlabeled(Dataset data, long seed) {
        Random rng = new Random(seed);
        int[] y = data.labels().clone();
        for (int i = 1; i < y.length; i++) {
            int pick = rng.nextInt(10);
            if (pick < 5) {
                y[i] = Dataset.UNLABELED;
            } else if (pick == 5) {
                y[i] = Dataset.IGNORE_INDEX;
            }
        }
        return new Dataset(data.name() + "+unlabeled", data.features(), D, y, K);
    }

    /** {@code data} with the labels of its UNLABELED samples given back from {@code labeled}: the same rows, all labeled. */
    static Dataset relabeled(Dataset data, Dataset labeled) {
        int[] y = data.labels().clone();
        for (int i = 0; i < y.length; i++) {
            if (y[i] == Dataset.UNLABELED) {
                y[i] = labeled.labels()[i];
            }
        }
        return new Dataset(data.name() + "-relabeled", data.features(), D, y, K);
    }

    static List<IgnoredSamplesTest.Run> labelFreeRuns(Path tmp) {
        return List.of(
                new IgnoredSamplesTest.Run("kd alpha 0, live teacher, dropout", d -> Dl4jTeacher.of(TEACHER), new SoftTargetKd(4, 0), false, 0.2),
                new IgnoredSamplesTest.Run("reverse-kl from an ensemble",
                        d -> EnsembleTeacher.of(Dl4jTeacher.of(TEACHER), Dl4jTeacher.of(TEACHER2)), new ReverseKl(2), false, 0),
                new IgnoredSamplesTest.Run("topk-kd from a top-3 teacher", d -> TopKTeacher.of(Dl4jTeacher.of(TEACHER), 3),
                        new TopKKd(2, TopKKd.Tail.RENORMALIZE), false, 0),
                new IgnoredSamplesTest.Run("kd alpha 0 with hint and rkd feature terms", d -> Dl4jTeacher.of(TEACHER),
                        new SoftTargetKd(4, 0), true, 0),
                new IgnoredSamplesTest.Run("kd alpha 0 from a stored teacher", d -> IgnoredSamplesTest.stored(d, tmp),
                        new SoftTargetKd(3, 0), false, 0.1));
    }

    /**
     * Under a loss without a hard-label term an unlabeled sample trains as the same sample labeled: the same batches, so
     * parameters, Adam's moments, epoch loss and terms are bit for bit those of the run on the labeled data.
     */
    @Test
    void withoutAHardLabelTermUnlabeledSamplesTrainExactlyAsLabeledOnes(@TempDir Path tmp) {
        Dataset labeled = DistillerTest.blobs(N, 21, "blobs");
        Dataset data = withUnlabeled(labeled, 77);
        Dataset all = relabeled(data, labeled);
        assertTrue(data.unlabeledSize() > 100 && data.labeledSize() > 100, data.toString());
        for (IgnoredSamplesTest.Run run : labelFreeRuns(tmp)) {
            IgnoredSamplesTest.Trained withUnlabeled = IgnoredSamplesTest.train(run, data, 2);
            IgnoredSamplesTest.Trained withLabels = IgnoredSamplesTest.train(run, all, 2);
            assertArrayEquals(withLabels.params(), withUnlabeled.params(), run.name() + ": parameters, bit for bit");
            assertArrayEquals(withLabels.updaterState(), withUnlabeled.updaterState(), run.name() + ": Adam's moments");
            for (int e = 0; e < 2; e++) {
                EpochMetrics a = withLabels.result().epochs().get(e);
                EpochMetrics b = withUnlabeled.result().epochs().get(e);
                assertEquals(a.loss(), b.loss(), 0.0, run.name() + ": epoch loss");
                assertEquals(a.terms(), b.terms(), run.name() + ": epoch terms");
                assertTrue(Double.isFinite(b.loss()) && b.loss() > 0, run.name() + ": " + b.loss());
            }
        }
    }

    /**
     * kd with alpha > 0 trains every labeled and unlabeled sample once an epoch (the ignored ones not at all), in batches
     * whose labels carry UNLABELED; the epoch's ce term is the labeled samples' CE over all trained samples, so it is below
     * the run's on the same data labeled; the settings count the unlabeled samples.
     */
    @Test
    void aHardLabelTermTrainsEveryUsedSampleAndIsZeroOnTheUnlabeledOnes() {
        Dataset labeled = DistillerTest.blobs(N, 21, "blobs");
        Dataset data = withUnlabeled(labeled, 78);
        List<int[]> batchLabels = new ArrayList<>();
        List<Integer> batchesPerEpoch = new ArrayList<>();
        SoftTargetKd kd = new SoftTargetKd(3, 0.5);
        Distiller distiller = Distiller.builder().teacher(Dl4jTeacher.of(TEACHER))
                .student(new IgnoredSamplesTest.RecordingStudent(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0)), batchLabels))
                .loss(kd).trainData(data).epochs(2).batchSize(BATCH).seed(SEED).backend(new CpuBackend()).stepEngines(List.of())
                .listener(new TrainingListener() {
                    @Override
                    public void epochStarted(int epoch, int epochs, int batches) {
                        batchesPerEpoch.add(batches);
                    }
                }).build();
        Map<String, Object> settings = distiller.settings();
        assertEquals(data.unlabeledSize(), settings.get("trainUnlabeledSamples"));
        assertEquals(data.labeledSize(), settings.get("trainLabeledSamples"));
        DistillResult r = distiller.run();
        int used = data.usedSize();
        int batches = (used + BATCH - 1) / BATCH;
        assertEquals(List.of(batches, batches), batchesPerEpoch);
        int unlabeledSeen = 0;
        int labeledSeen = 0;
        for (int[] y : batchLabels) {
            for (int label : y) {
                assertNotEquals(Dataset.IGNORE_INDEX, label, "ignored samples do not train");
                if (label == Dataset.UNLABELED) {
                    unlabeledSeen++;
                } else {
                    labeledSeen++;
                }
            }
        }
        assertEquals(2 * data.unlabeledSize(), unlabeledSeen, "every unlabeled sample once an epoch");
        assertEquals(2 * data.labeledSize(), labeledSeen, "every labeled sample once an epoch");

        Dataset all = relabeled(data, labeled);
        DistillResult full = Distiller.builder().teacher(Dl4jTeacher.of(TEACHER)).student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K,
                        new Adam(5e-3), 11, 0))).loss(kd).trainData(all).epochs(1).batchSize(BATCH).seed(SEED).backend(new CpuBackend())
                .stepEngines(List.of()).build().run();
        double ce = r.epochs().get(0).terms().get(CrossEntropy.NAME);
        double ceAll = full.epochs().get(0).terms().get(CrossEntropy.NAME);
        // the first epoch starts from the same weights: the unlabeled samples' CE is missing from a mean over as many samples
        assertTrue(ce > 0.2 * ceAll && ce < 0.8 * ceAll, "ce term " + ce + " against " + ceAll + " with every sample labeled");
    }

    /** A run without a teacher term leaves the unlabeled samples out: it trains as the run with them IGNORE_INDEX. */
    @Test
    void withoutATeacherTermUnlabeledSamplesAreLeftOut() {
        Dataset data = withUnlabeled(DistillerTest.blobs(N, 21, "blobs"), 79);
        int[] y = data.labels().clone();
        for (int i = 0; i < y.length; i++) {
            if (y[i] == Dataset.UNLABELED) {
                y[i] = Dataset.IGNORE_INDEX;
            }
        }
        Dataset ignored = new Dataset("blobs+ignored", data.features(), D, y, K);
        IgnoredSamplesTest.Run ce = new IgnoredSamplesTest.Run("ce", d -> null, new CrossEntropy(), false, 0.1);
        IgnoredSamplesTest.Trained a = IgnoredSamplesTest.train(ce, data, 2);
        IgnoredSamplesTest.Trained b = IgnoredSamplesTest.train(ce, ignored, 2);
        assertArrayEquals(b.params(), a.params(), "parameters, bit for bit");
        assertEquals(b.result().epochs().get(1).loss(), a.result().epochs().get(1).loss(), 0.0);
        EpochMetrics m = a.result().epochs().get(1);
        assertEquals(data.labeledSize(), m.samplesPerSecond() * m.trainSeconds(), 1e-6 * data.labeledSize(),
                "samples/s counts the labeled samples that trained");
    }

    /** Unlabeled test samples are not evaluated: accuracy, agreement and KL are those of the test data without them. */
    @Test
    void unlabeledTestSamplesAreNotEvaluated() {
        Dataset data = DistillerTest.blobs(N, 21, "blobs");
        Dataset test = withUnlabeled(DistillerTest.blobs(257, 22, "blobs/test"), 83);
        int[] keep = java.util.stream.IntStream.range(0, test.size()).filter(test::isLabeled).toArray();
        Dataset labeledTest = test.subset(keep, "blobs/test-labeled");
        List<DistillResult> results = new ArrayList<>();
        for (Dataset t : new Dataset[]{test, labeledTest}) {
            results.add(Distiller.builder().teacher(Dl4jTeacher.of(TEACHER)).student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K,
                            new Adam(5e-3), 11, 0))).loss(new SoftTargetKd(4, 0.2)).trainData(data).testData(t).epochs(1)
                    .batchSize(BATCH).seed(SEED).backend(new CpuBackend()).stepEngines(List.of()).build().run());
        }
        EpochMetrics a = results.get(0).epochs().get(0);
        EpochMetrics b = results.get(1).epochs().get(0);
        assertEquals(b.testAccuracy(), a.testAccuracy(), 0.0);
        assertEquals(b.teacherAgreement(), a.teacherAgreement(), 0.0);
        assertEquals(b.teacherKl(), a.teacherKl(), 1e-6 * b.teacherKl());
        assertTrue(keep.length < test.size() - 80, "many unlabeled test samples: " + keep.length);
    }

    /**
     * Data that leaves nothing to train is refused before training, naming the loss and the counts: a teacherless loss on
     * data without a labeled sample; a hard-label term (also one an alpha schedule brings in at a later epoch) on such data;
     * test data without a labeled sample; dkd (in a weighted sum, under logit-std), which splits every row at its label,
     * on data with an unlabeled sample.
     */
    @Test
    void dataThatLeavesATermNothingToTrainOnIsAClearError() {
        Dataset data = DistillerTest.blobs(50, 21, "blobs");
        Dataset none = data.withoutLabels("transfer");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0))).loss(new CrossEntropy())
                .trainData(none).build());
        assertTrue(e.getMessage().contains("loss 'ce' has no teacher term") && e.getMessage().contains("(50 UNLABELED, 0 IGNORE_INDEX)"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder().teacher(Dl4jTeacher.of(TEACHER))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0))).loss(new SoftTargetKd(4, 0.1))
                .trainData(none).build());
        assertTrue(e.getMessage().contains("loss 'kd'") && e.getMessage().contains("alpha=0.1")
                && e.getMessage().contains("has a hard-label term, but no sample of training data transfer has a label")
                && e.getMessage().contains("kd with alpha 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder().teacher(Dl4jTeacher.of(TEACHER))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0))).loss(new SoftTargetKd(4, 0))
                .alpha(Schedule.linear(0, 0.5)).epochs(3).trainData(none).build());
        assertTrue(e.getMessage().contains("at epoch 2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder().teacher(Dl4jTeacher.of(TEACHER))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0))).loss(new SoftTargetKd(4, 0))
                .trainData(data).testData(none).build());
        assertTrue(e.getMessage().contains("test data transfer has no labeled sample to evaluate")
                && e.getMessage().contains("all 50 labels are UNLABELED (-1) or IGNORE_INDEX (-100)"), e.getMessage());
        // without labels, pure kd trains
        DistillResult ok = Distiller.builder().teacher(Dl4jTeacher.of(TEACHER))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0))).loss(new SoftTargetKd(4, 0))
                .trainData(none).epochs(1).batchSize(16).backend(new CpuBackend()).stepEngines(List.of()).build().run();
        assertTrue(ok.epochs().get(0).loss() > 0);

        int[] y = data.labels().clone();
        y[17] = Dataset.UNLABELED;
        Dataset one = new Dataset("one-unlabeled", data.features(), D, y, K);
        for (LogitLoss dkd : new LogitLoss[]{WeightedSum.builder().add(1, new CrossEntropy()).add(1, new Dkd(1, 8, 4, 1)).build(),
                org.distill4j.loss.LogitStandardization.of(new Dkd(1, 8, 4, 1))}) {
            assertFalse(dkd.acceptsUnlabeledRows(), dkd.name());
            e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder().teacher(Dl4jTeacher.of(TEACHER))
                    .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0))).loss(dkd).trainData(one).epochs(1)
                    .batchSize(64).build());
            assertTrue(e.getMessage().contains("needs a hard label on every row") && e.getMessage().contains("1 samples of training"
                    + " data one-unlabeled are UNLABELED"), e.getMessage());
        }

    }
}
