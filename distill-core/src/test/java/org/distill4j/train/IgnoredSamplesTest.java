package org.distill4j.train;

import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.HintLoss;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.Reduction;
import org.distill4j.loss.RelationalKd;
import org.distill4j.loss.ReverseKl;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TopKKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.teacher.EnsembleTeacher;
import org.distill4j.teacher.Teacher;
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
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Samples labeled {@link LogitBatch#IGNORE_INDEX} (padding, e.g. the padded positions of flattened [batch, seq] rows)
 * take no part in training or evaluation: a run on data with ignored samples trains exactly as a run on the data without
 * them (the same batches of the other samples: same parameters, optimizer state, epoch loss and terms, bit for bit), for
 * logit losses with any reduction, feature losses, ensembles, top-k and stored teachers, step engines and a resumed run;
 * accuracy, agreement and KL count only the labeled test samples.
 */
class IgnoredSamplesTest {
    static final int D = 12;
    static final int K = 5;
    static final int N = 301;      // not a multiple of the batch size
    static final int BATCH = 64;
    static final long SEED = 5;
    static final MultiLayerNetwork TEACHER = Nets.logitsMlp(D, 24, K, new Adam(1e-2), 7, 0);
    static final MultiLayerNetwork TEACHER2 = Nets.logitsMlp(D, 20, K, new Adam(1e-2), 8, 0);

    /** {@code data} with about a third of its labels (fresh random ones, never all) set to IGNORE_INDEX. */
    static Dataset withIgnored(Dataset data, long seed) {
        Random rng = new Random(seed);
        int[] y = data.labels().clone();
        for (int i = 0; i < y.length; i++) {
            if (rng.nextInt(3) == 0) {
                y[i] = LogitBatch.IGNORE_INDEX;
            }
        }
        y[0] = 1; // at least one labeled sample
        return new Dataset(data.name() + "+ignored", data.features(), D, y, K);
    }

    static int[] labeled(Dataset data) {
        return java.util.stream.IntStream.range(0, data.size()).filter(i -> data.labels()[i] != LogitBatch.IGNORE_INDEX).toArray();
    }

    /**
     * The labeled samples of {@code data}, placed so that the first epoch's shuffle with {@code seed} presents them in the
     * order the run on {@code data} trains them: the ignored samples dropped from that run's shuffle of all samples.
     */
    static Dataset plainInTheSameOrder(Dataset data, long seed) {
        int[] order = Dataset.permutation(data.size(), new Random(seed));
        int[] kept = java.util.Arrays.stream(order).filter(i -> data.labels()[i] != LogitBatch.IGNORE_INDEX).toArray();
        int[] plainOrder = Dataset.permutation(kept.length, new Random(seed));
        int[] at = new int[kept.length];
        for (int i = 0; i < kept.length; i++) {
            at[plainOrder[i]] = kept[i];
        }
        Dataset plain = data.subset(at, data.name() + "-plain");
        assertEquals(kept.length, labeled(plain).length);
        return plain;
    }

    /** One configuration of a run: the student, loss, teacher and feature terms for a dataset. */
    record Run(String name, Function<Dataset, Teacher> teacher, LogitLoss loss, boolean features, double dropout) {
    }

    static List<Run> runs(Path tmp) {
        return List.of(
                new Run("kd, live teacher, dropout", d -> Dl4jTeacher.of(TEACHER), new SoftTargetKd(4, 0.2), false, 0.2),
                new Run("ce with SUM, no teacher", d -> null, new CrossEntropy(Reduction.SUM), false, 0),
                new Run("reverse-kl from an ensemble", d -> EnsembleTeacher.of(Dl4jTeacher.of(TEACHER), Dl4jTeacher.of(TEACHER2)),
                        new ReverseKl(2), false, 0),
                new Run("topk-kd from a top-3 teacher", d -> TopKTeacher.of(Dl4jTeacher.of(TEACHER), 3),
                        new TopKKd(2, TopKKd.Tail.RENORMALIZE), false, 0),
                new Run("kd with hint and rkd feature terms", d -> Dl4jTeacher.of(TEACHER), new SoftTargetKd(4, 0.2), true, 0),
                new Run("kd from a stored teacher", d -> stored(d, tmp), new SoftTargetKd(3, 0.5), false, 0.1));
    }

    private static int stores;

    /**
     * A teacher whose logits of a row depend on that row alone, computed in float64 (a DL4J teacher's can move by an ulp
     * with the other rows of its batch, which differ between the labeling of two datasets).
     */
    static final class RowwiseTeacher implements Teacher {
        @Override
        public int classes() {
            return K;
        }

        @Override
        public org.distill4j.loss.TeacherValues values() {
            return org.distill4j.loss.TeacherValues.LOGITS;
        }

        @Override
        public float[] outputs(Batch batch) {
            float[] out = new float[batch.size() * K];
            for (int r = 0; r < batch.size(); r++) {
                for (int c = 0; c < K; c++) {
                    double z = 0;
                    for (int j = 0; j < D; j++) {
                        z += Math.sin(1.7 * c + 0.3 * j + 1) * batch.features()[r * D + j];
                    }
                    out[r * K + c] = (float) z;
                }
            }
            return out;
        }

        @Override
        public String describe() {
            return "row-wise test teacher";
        }
    }

    /** A store of a teacher's logits over {@code data} (f32: its values exactly), as a stored teacher. */
    static Teacher stored(Dataset data, Path tmp) {
        Path path = tmp.resolve("teacher-" + (stores++) + ".d4j");
        try {
            org.distill4j.store.Labeler.label(new RowwiseTeacher(), data, path,
                    new org.distill4j.store.Labeler.Options(0, org.distill4j.store.ValueCodec.F32, 64, 50, "t"), null);
            return org.distill4j.store.StoredTeacher.of(org.distill4j.store.SoftTargetStore.open(path), "t");
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** The model that trains, and its result. */
    record Trained(Model net, DistillResult result) {
        float[] params() {
            return net.params().toFloatVector();
        }

        float[] updaterState() {
            return net instanceof ComputationGraph g ? g.getUpdater().getStateViewArray().toFloatVector()
                    : ((MultiLayerNetwork) net).getUpdater().getStateViewArray().toFloatVector();
        }
    }

    static Trained train(Run run, Dataset data, int epochs) {
        MultiLayerNetwork net = Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, run.dropout());
        Model model = net;
        Dl4jStudent student;
        if (run.features()) {
            ComputationGraph g = Dl4jStudent.withFeatureOutputs(net.toComputationGraph(), "0");
            model = g;
            student = Dl4jStudent.of(g);
        } else {
            student = Dl4jStudent.of(net);
        }
        Distiller.Builder b = Distiller.builder().teacher(run.teacher().apply(data)).student(student).loss(run.loss())
                .trainData(data).epochs(epochs).batchSize(BATCH).seed(SEED).backend(new CpuBackend()).stepEngines(List.of());
        if (run.features()) {
            b.featureLoss(0.5, new HintLoss(16, 24, 1e-2, 3), "0", "layer0").featureLoss(0.7, new RelationalKd(25, 50), "0", "layer0");
        }
        return new Trained(model, b.build().run());
    }

    @Test
    void aRunWithIgnoredSamplesTrainsExactlyAsTheRunWithoutThem(@TempDir Path tmp) {
        Dataset data = withIgnored(DistillerTest.blobs(N, 21, "blobs"), 77);
        Dataset plain = plainInTheSameOrder(data, SEED);
        assertTrue(plain.size() > 2 * BATCH && plain.size() < N - 50 && plain.size() % BATCH != 0,
                "several batches, the last partial, and many ignored samples: " + plain.size());
        for (Run run : runs(tmp)) {
            Trained withIgnored = train(run, data, 1);
            Trained without = train(run, plain, 1);
            assertArrayEquals(without.params(), withIgnored.params(), run.name() + ": parameters, bit for bit");
            assertArrayEquals(without.updaterState(), withIgnored.updaterState(), run.name() + ": Adam's moments, bit for bit");
            EpochMetrics a = without.result().epochs().get(0);
            EpochMetrics b = withIgnored.result().epochs().get(0);
            assertEquals(a.loss(), b.loss(), 0.0, run.name() + ": epoch loss, a mean over the labeled samples");
            assertEquals(a.terms(), b.terms(), run.name() + ": epoch terms");
            assertTrue(Double.isFinite(b.loss()) && b.loss() > 0, run.name() + ": " + b.loss());
        }
    }

    /** The settings (provenance, checkpoints) say how many samples train and test when some are ignored. */
    @Test
    void theSettingsCountTheLabeledSamples() {
        Dataset data = withIgnored(DistillerTest.blobs(N, 21, "blobs"), 79);
        Dataset test = withIgnored(DistillerTest.blobs(150, 22, "blobs/test"), 80);
        assertTrue(data.labeledSize() < data.size() && test.labeledSize() < test.size());
        Map<String, Object> s = Distiller.builder().student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0)))
                .loss(new CrossEntropy()).trainData(data).testData(test).epochs(1).batchSize(BATCH).seed(SEED).build().settings();
        assertEquals(data.size(), s.get("trainSamples"));
        assertEquals(data.labeledSize(), s.get("trainLabeledSamples"));
        assertEquals(test.size(), s.get("testSamples"));
        assertEquals(test.labeledSize(), s.get("testLabeledSamples"));
        Dataset plain = plainInTheSameOrder(data, SEED);
        Map<String, Object> p = Distiller.builder().student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0)))
                .loss(new CrossEntropy()).trainData(plain).epochs(1).batchSize(BATCH).seed(SEED).build().settings();
        assertFalse(p.containsKey("trainLabeledSamples") || p.containsKey("testLabeledSamples"),
                "data without ignored samples keeps the settings it always had: " + p);
    }

    /** Later epochs shuffle all samples, then train the labeled ones: every epoch has the batches of the labeled samples. */
    @Test
    void everyEpochTrainsTheLabeledSamplesOnce() {
        Dataset data = withIgnored(DistillerTest.blobs(N, 21, "blobs"), 78);
        int[] labeled = labeled(data);
        List<Integer> batchesPerEpoch = new ArrayList<>();
        List<Long> samplesPerEpoch = new ArrayList<>();
        List<int[]> batchLabels = new ArrayList<>();
        Distiller.builder().student(new RecordingStudent(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0)), batchLabels))
                .loss(new CrossEntropy()).trainData(data).epochs(3).batchSize(BATCH).seed(SEED).backend(new CpuBackend())
                .stepEngines(List.of())
                .listener(new TrainingListener() {
                    @Override
                    public void epochStarted(int epoch, int epochs, int batches) {
                        batchesPerEpoch.add(batches);
                    }

                    @Override
                    public void batchFinished(int epoch, int batch, int batches, long samples, long elapsedNanos, double loss) {
                        if (batch + 1 == batches) {
                            samplesPerEpoch.add(samples);
                        }
                    }
                }).build().run();
        int batches = (labeled.length + BATCH - 1) / BATCH;
        assertEquals(List.of(batches, batches, batches), batchesPerEpoch);
        assertEquals(List.of((long) labeled.length, (long) labeled.length, (long) labeled.length), samplesPerEpoch);
        assertEquals(3 * batches, batchLabels.size());
        int[] count = new int[K];
        for (int[] y : batchLabels) {
            for (int label : y) {
                assertTrue(label >= 0 && label < K, "the student trains on labeled samples only, got label " + label);
                count[label]++;
            }
        }
        int[] expected = new int[K];
        for (int i : labeled) {
            expected[data.labels()[i]] += 3;
        }
        assertArrayEquals(expected, count, "every labeled sample once an epoch");
    }

    /** Records the labels of every training forward. */
    static final class RecordingStudent extends org.distill4j.testing.ForwardingStudent {
        final List<int[]> labels;

        RecordingStudent(Dl4jStudent inner, List<int[]> labels) {
            super(inner);
            this.labels = labels;
        }

        @Override
        public float[] forward(Batch batch, boolean training) {
            if (training) {
                labels.add(batch.labels().clone());
            }
            return inner.forward(batch, training);
        }

        @Override
        public String describe() {
            return "recording " + inner.describe();
        }
    }

    /** A step engine gets only labeled rows, and the run gives the DL4J path's numbers. */
    @Test
    void aStepEngineGetsOnlyTheLabeledSamples() {
        Dataset data = withIgnored(DistillerTest.blobs(N, 21, "blobs"), 79);
        List<int[]> seen = new ArrayList<>();
        MultiLayerNetwork viaEngine = Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0);
        StepEngineProvider provider = new StepEngineProvider() {
            @Override
            public String name() {
                return "recording-copy";
            }

            @Override
            public Offer offer(Setup setup) {
                return Offer.of(new StepEngineSelectionTest.CopyEngine(viaEngine, setup.teacher(), true) {
                    @Override
                    public LossResult step(Batch batch, LogitLoss loss) {
                        seen.add(batch.labels().clone());
                        return super.step(batch, loss);
                    }
                });
            }
        };
        MultiLayerNetwork viaDl4j = Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0);
        List<DistillResult> results = new ArrayList<>();
        for (Object[] r : new Object[][]{{viaDl4j, List.of()}, {viaEngine, List.of(provider)}}) {
            @SuppressWarnings("unchecked")
            List<StepEngineProvider> providers = (List<StepEngineProvider>) r[1];
            results.add(Distiller.builder().teacher(Dl4jTeacher.of(TEACHER)).student(Dl4jStudent.of((MultiLayerNetwork) r[0]))
                    .loss(new SoftTargetKd(3, 0.3)).trainData(data).epochs(2).batchSize(BATCH).seed(SEED)
                    .backend(new CpuBackend()).stepEngines(providers).build().run());
        }
        assertEquals("copy-engine on the CPU", results.get(1).engine());
        int rows = 0;
        for (int[] y : seen) {
            for (int label : y) {
                assertTrue(label >= 0 && label < K, "an engine step got label " + label);
            }
            rows += y.length;
        }
        assertEquals(2 * labeled(data).length, rows);
        assertArrayEquals(viaDl4j.params().toFloatVector(), viaEngine.params().toFloatVector());
        for (int e = 0; e < 2; e++) {
            assertEquals(results.get(0).epochs().get(e).loss(), results.get(1).epochs().get(e).loss(), 0.0);
            assertEquals(results.get(0).epochs().get(e).terms(), results.get(1).epochs().get(e).terms());
        }
    }

    /** A run with ignored samples, interrupted within an epoch and resumed, ends as the uninterrupted run. */
    @Test
    void aResumedRunWithIgnoredSamplesEqualsAnUninterruptedOne(@TempDir Path tmp) {
        Dataset data = withIgnored(DistillerTest.blobs(N, 21, "blobs"), 80);
        Dataset test = withIgnored(DistillerTest.blobs(157, 22, "blobs/test"), 81);
        Function<MultiLayerNetwork, Distiller.Builder> run = net -> Distiller.builder().teacher(Dl4jTeacher.of(TEACHER))
                .student(Dl4jStudent.of(net)).loss(new SoftTargetKd(4, 0.2)).trainData(data).testData(test).epochs(3)
                .batchSize(BATCH).seed(SEED).backend(new CpuBackend()).stepEngines(List.of());
        MultiLayerNetwork whole = Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0.2);
        DistillResult expected = run.apply(whole).build().run();
        Checkpoints c = Checkpoints.in(tmp.resolve("ckpt")).everySteps(2);
        assertThrows(DistillerCheckpointTest.Crash.class, () -> run.apply(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0.2))
                .checkpoints(c).listener(DistillerCheckpointTest.crashAfter(1, 2)).build().run());
        MultiLayerNetwork resumedNet = Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0.2);
        DistillResult resumed = run.apply(resumedNet).checkpoints(c).build().run();
        DistillerCheckpointTest.assertSameRun(expected, whole, resumed, resumedNet);
    }

    /**
     * Test accuracy, teacher agreement and KL count only the labeled test samples: the same as on the labeled subset, and
     * as counted here from the final student's predictions.
     */
    @Test
    void testMetricsCountOnlyTheLabeledSamples() {
        Dataset data = DistillerTest.blobs(N, 21, "blobs");
        Dataset test = withIgnored(DistillerTest.blobs(457, 22, "blobs/test"), 82);
        int[] labeled = labeled(test);
        Dataset labeledTest = test.subset(labeled, "blobs/test-labeled");
        List<DistillResult> results = new ArrayList<>();
        List<Dl4jStudent> students = new ArrayList<>();
        for (Dataset t : new Dataset[]{test, labeledTest}) {
            Dl4jStudent s = Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0));
            students.add(s);
            results.add(Distiller.builder().teacher(Dl4jTeacher.of(TEACHER)).student(s).loss(new SoftTargetKd(4, 0.2))
                    .trainData(data).testData(t).epochs(2).batchSize(BATCH).seed(SEED).backend(new CpuBackend())
                    .stepEngines(List.of()).build().run());
        }
        for (int e = 0; e < 2; e++) {
            EpochMetrics a = results.get(0).epochs().get(e);
            EpochMetrics b = results.get(1).epochs().get(e);
            assertEquals(b.testAccuracy(), a.testAccuracy(), 0.0, "epoch " + e + " accuracy");
            assertEquals(b.teacherAgreement(), a.teacherAgreement(), 0.0, "epoch " + e + " agreement");
            // the student's logits of a row may move by an ulp with the other rows of its inference batch
            assertEquals(b.teacherKl(), a.teacherKl(), 1e-6 * b.teacherKl(), "epoch " + e + " KL");
        }
        int[] student = Evaluation.predict(students.get(0), test);
        int[] teacher = Evaluation.predict(Dl4jTeacher.of(TEACHER), test);
        int correct = 0;
        int same = 0;
        for (int i : labeled) {
            correct += student[i] == test.labels()[i] ? 1 : 0;
            same += student[i] == teacher[i] ? 1 : 0;
        }
        assertEquals(correct / (double) labeled.length, results.get(0).testAccuracy(), 0.0);
        assertEquals(same / (double) labeled.length, results.get(0).teacherAgreement(), 0.0);
        assertTrue(labeled.length < test.size() - 100, "many ignored test samples: " + labeled.length);
    }

    /**
     * A top-k teacher of K + 2 classes whose entries depend on the sample alone: a labeled sample's mass lies in the first K
     * classes (its best entry a class of its own features), a padded one's entirely in the two extra classes, as an LLM
     * teacher predicts its own pad token at padded positions. {@link #seen} counts the rows it is asked for.
     */
    static final class PaddingAwareTopK implements org.distill4j.teacher.SparseTeacher {
        int seen;
        int seenIgnored;

        @Override
        public int k() {
            return 2;
        }

        @Override
        public TopK topK(Batch batch) {
            int[] ids = new int[batch.size() * 2];
            float[] lps = new float[batch.size() * 2];
            for (int r = 0; r < batch.size(); r++) {
                seen++;
                if (batch.labels()[r] == LogitBatch.IGNORE_INDEX) {
                    seenIgnored++;
                    ids[2 * r] = K;
                    ids[2 * r + 1] = K + 1;
                } else {
                    int best = Math.floorMod((int) (batch.features()[r * D] * 7), K);
                    ids[2 * r] = best;
                    ids[2 * r + 1] = (best + 1) % K;
                }
                lps[2 * r] = -0.2f;
                lps[2 * r + 1] = -1.9f;
            }
            return new TopK(ids, lps, 2);
        }

        @Override
        public int classes() {
            return K + 2;
        }

        @Override
        public org.distill4j.loss.TeacherValues values() {
            return org.distill4j.loss.TeacherValues.LOGITS;
        }

        @Override
        public boolean hasDenseOutputs() {
            return false;
        }

        @Override
        public float[] outputs(Batch batch) {
            throw new UnsupportedOperationException("top-k entries only");
        }

        @Override
        public String describe() {
            return "padding-aware top-k teacher";
        }
    }

    /**
     * A padded test sample is not evaluated, so it is not given to the teacher either: a truncated top-k teacher whose
     * padded rows lie wholly beyond the student's vocabulary (which the alignment refuses for a row to distill) measures
     * its agreement over the labeled test samples, as on the labeled subset.
     */
    @Test
    void anAlignedTopKTeacherIsNotAskedForIgnoredTestSamples() {
        Dataset data = DistillerTest.blobs(N, 21, "blobs");
        Dataset test = withIgnored(DistillerTest.blobs(157, 22, "blobs/test"), 83);
        int[] labeled = labeled(test);
        Dataset labeledTest = test.subset(labeled, "blobs/test-labeled");
        List<DistillResult> results = new ArrayList<>();
        List<PaddingAwareTopK> teachers = new ArrayList<>();
        for (Dataset t : new Dataset[]{test, labeledTest}) {
            PaddingAwareTopK raw = new PaddingAwareTopK();
            teachers.add(raw);
            org.distill4j.teacher.SparseTeacher aligned = org.distill4j.teacher.VocabularyAlignment.align(raw, K,
                    org.distill4j.teacher.VocabularyAlignment.Mode.TRUNCATE);
            results.add(Distiller.builder().teacher(aligned).student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0)))
                    .loss(new TopKKd(2, TopKKd.Tail.RENORMALIZE)).trainData(data).testData(t).epochs(1).batchSize(BATCH).seed(SEED)
                    .backend(new CpuBackend()).stepEngines(List.of()).build().run());
        }
        assertEquals(0, teachers.get(0).seenIgnored, "the teacher is not asked for a padded test sample");
        assertEquals(results.get(1).teacherAgreement(), results.get(0).teacherAgreement(), 0.0);
        assertEquals(results.get(1).testAccuracy(), results.get(0).testAccuracy(), 0.0);
        assertTrue(results.get(0).teacherAgreement() >= 0 && results.get(0).teacherAgreement() <= 1);
        assertTrue(labeled.length < test.size() - 20, "many ignored test samples: " + labeled.length);
    }

    /** The teacher's test predictions: a class for each labeled sample, IGNORE_INDEX for the others, which it is not asked for. */
    @Test
    void teacherPredictionsLeaveIgnoredSamplesOut() {
        Dataset test = withIgnored(DistillerTest.blobs(2345, 22, "blobs/test"), 84); // more than one inference batch
        PaddingAwareTopK raw = new PaddingAwareTopK();
        int[] pred = Evaluation.predict(org.distill4j.teacher.VocabularyAlignment.align(raw, K,
                org.distill4j.teacher.VocabularyAlignment.Mode.TRUNCATE), test);
        assertEquals(0, raw.seenIgnored);
        assertEquals(labeled(test).length, raw.seen);
        for (int i = 0; i < test.size(); i++) {
            int expected = test.isLabeled(i) ? Math.floorMod((int) (test.features()[i * D] * 7), K) : Dataset.IGNORE_INDEX;
            assertEquals(expected, pred[i], "sample " + i);
        }
        // a dense teacher likewise
        int[] counted = new int[2];
        Teacher rowwise = new RowwiseTeacher();
        Teacher dense = new Teacher() {
            @Override
            public int classes() {
                return K;
            }

            @Override
            public org.distill4j.loss.TeacherValues values() {
                return rowwise.values();
            }

            @Override
            public float[] outputs(Batch batch) {
                for (int label : batch.labels()) {
                    counted[label == LogitBatch.IGNORE_INDEX ? 1 : 0]++;
                }
                return rowwise.outputs(batch);
            }

            @Override
            public String describe() {
                return "counting " + rowwise.describe();
            }
        };
        int[] densePred = Evaluation.predict(dense, test);
        float[] lp = Evaluation.logProbabilities(dense, test);
        assertEquals(0, counted[1], "a dense teacher is not asked for a padded sample");
        assertEquals(2 * labeled(test).length, counted[0]);
        float[] all = rowwise.outputs(Batch.range(test, 0, test.size()));
        for (int i = 0; i < test.size(); i++) {
            if (!test.isLabeled(i)) {
                assertEquals(Dataset.IGNORE_INDEX, densePred[i], "sample " + i);
                for (int c = 0; c < K; c++) {
                    assertTrue(Float.isNaN(lp[i * K + c]), "sample " + i + " has no teacher log-probabilities");
                }
                continue;
            }
            assertEquals(Evaluation.argmax(all, test.size(), K)[i], densePred[i], "sample " + i);
            double[] ref = org.distill4j.testing.Float64Reference.logSoftmax(all, i * K, K, 1.0);
            for (int c = 0; c < K; c++) {
                assertEquals(ref[c], lp[i * K + c], 1e-6, "sample " + i + " class " + c);
            }
        }
    }

    @Test
    void dataWithoutALabeledSampleIsAClearError() {
        Dataset data = DistillerTest.blobs(50, 21, "blobs");
        int[] none = new int[data.size()];
        java.util.Arrays.fill(none, LogitBatch.IGNORE_INDEX);
        Dataset allIgnored = new Dataset("padding", data.features(), D, none, K);
        assertEquals(0, labeled(allIgnored).length);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0))).loss(new CrossEntropy())
                .trainData(allIgnored).build());
        assertTrue(e.getMessage().contains("training data padding has no sample to train on")
                && e.getMessage().contains("all 50 labels are IGNORE_INDEX (-100)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0))).loss(new CrossEntropy())
                .trainData(data).testData(allIgnored).build());
        assertTrue(e.getMessage().contains("test data padding has no labeled sample to evaluate")
                && e.getMessage().contains("all 50 labels are UNLABELED (-1) or IGNORE_INDEX (-100)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Evaluation.accuracy(new int[50], allIgnored));
        assertTrue(e.getMessage().contains("padding has no labeled sample"), e.getMessage());
    }
}
