package org.distill4j.train;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Dataset;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.learning.config.Adam;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DistillerTest {
    private static final int D = 12;
    private static final int K = 5;
    private static Dataset train;
    private static Dataset test;
    private static MultiLayerNetwork teacherNet;

    /** Gaussian blobs around K random centres: learnable, not trivially separable. */
    static Dataset blobs(int n, long seed, String name) {
        Random centres = new Random(99);
        double[][] c = new double[K][D];
        for (double[] row : c) {
            for (int j = 0; j < D; j++) {
                row[j] = centres.nextGaussian() * 1.2;
            }
        }
        Random rng = new Random(seed);
        float[] x = new float[n * D];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = rng.nextInt(K);
            for (int j = 0; j < D; j++) {
                x[i * D + j] = (float) (c[y[i]][j] + rng.nextGaussian());
            }
        }
        return new Dataset(name, x, D, y, K);
    }

    @BeforeAll
    static void trainTeacher() {
        train = blobs(300, 1, "blobs/train");
        test = blobs(200, 2, "blobs/test");
        teacherNet = Nets.logitsMlp(D, 32, K, new Adam(1e-2), 7, 0.1);
        DistillResult r = Distiller.builder().student(Dl4jStudent.of(teacherNet)).loss(new CrossEntropy())
                .trainData(blobs(2000, 3, "blobs/teacher")).testData(test).epochs(5).batchSize(64).seed(1)
                .backend(new CpuBackend()).build().run();
        assertTrue(r.testAccuracy() > 0.7, "the teacher learns the blobs: " + r.testAccuracy());
    }

    private static DistillResult distill(long seed, TrainingListener listener, Schedule temperature) {
        Distiller.Builder b = Distiller.builder()
                .teacher(Dl4jTeacher.of(teacherNet))
                // dropout makes the run depend on ND4J's RNG, which the seed must fix
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0.2)))
                .loss(new SoftTargetKd(4, 0.2))
                .trainData(train).testData(test).epochs(4).batchSize(64).seed(seed)
                .backend(new CpuBackend());
        if (listener != null) {
            b.listener(listener);
        }
        if (temperature != null) {
            b.temperature(temperature);
        }
        return b.build().run();
    }

    @Test
    void distillationLowersTheLossAndReportsEveryMetric() {
        DistillResult r = distill(5, null, null);
        List<EpochMetrics> e = r.epochs();
        assertEquals(4, e.size());
        assertTrue(e.get(3).loss() < e.get(0).loss(), "loss falls: " + e.get(0).loss() + " -> " + e.get(3).loss());
        for (EpochMetrics m : e) {
            assertTrue(m.terms().containsKey("kd") && m.terms().containsKey("ce"), m.terms().toString());
            assertEquals(0.2 * m.terms().get("ce") + 0.8 * m.terms().get("kd"), m.loss(), 1e-9);
            assertTrue(m.testAccuracy() >= 0 && m.testAccuracy() <= 1);
            assertTrue(m.teacherAgreement() > 0 && m.teacherAgreement() <= 1);
            assertTrue(m.samplesPerSecond() > 0);
        }
        assertEquals("cpu", r.backend());
        assertTrue(r.teacherAgreement() > 0.6, "student follows the teacher: " + r.teacherAgreement());
        assertTrue(e.get(3).teacherKl() < e.get(0).teacherKl() && e.get(3).teacherKl() > 0,
                "KL to the teacher falls: " + e.get(0).teacherKl() + " -> " + e.get(3).teacherKl());
    }

    /**
     * A NaN in one training sample makes NaN teacher and student logits in whatever batch and row the shuffle puts it: the
     * error names the epoch, the batch and that sample, which is what a user can look up in their data.
     */
    @Test
    void aBadSampleIsNamedByItsIndexInTheTrainingData() {
        Dataset clean = blobs(300, 1, "blobs/train");
        float[] x = clean.features().clone();
        int bad = 217;
        x[bad * D + 3] = Float.NaN;
        Dataset withNan = new Dataset("blobs/nan", x, D, clean.labels(), K);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                .teacher(Dl4jTeacher.of(teacherNet))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0.0)))
                .loss(new SoftTargetKd(4, 0.2)).trainData(withNan).epochs(1).batchSize(64).seed(5)
                .backend(new CpuBackend()).build().run());
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("^epoch 1, batch (\\d) of 5: .*\\brow (\\d+)\\b.*"
                + "; row (\\d+) of this batch is sample 217 of blobs/nan$").matcher(e.getMessage());
        assertTrue(m.matches(), e.getMessage());
        assertEquals(m.group(2), m.group(3), "the row named is the row the loss named");
        int[] order = Dataset.permutation(300, new Random(5));
        int batch = Integer.parseInt(m.group(1)) - 1;
        assertEquals(bad, order[batch * 64 + Integer.parseInt(m.group(3))], "the batch and row where the shuffle put sample 217");
    }

    /**
     * The built-in loss's error carries its row as data (a BadRowException), and the sample named is the one at that
     * row; the loss's own text is kept as it was.
     */
    @Test
    void aBuiltInLossCarriesTheBadRowAsData() {
        Dataset clean = blobs(300, 1, "blobs/train");
        float[] x = clean.features().clone();
        x[42 * D] = Float.NaN;
        Dataset withNan = new Dataset("blobs/nan", x, D, clean.labels(), K);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                .teacher(Dl4jTeacher.of(teacherNet))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0.0)))
                .loss(new SoftTargetKd(4, 0.2)).trainData(withNan).epochs(1).batchSize(64).seed(5)
                .backend(new CpuBackend()).build().run());
        org.distill4j.loss.BadRowException bad = assertInstanceOf(org.distill4j.loss.BadRowException.class, e.getCause(),
                e.getMessage());
        assertTrue(bad.getMessage().matches("(student logit|teacher logit) at row " + bad.row() + ", class \\d+ is NaN, expected a finite value.*"),
                bad.getMessage());
        assertTrue(e.getMessage().endsWith(bad.getMessage() + "; row " + bad.row() + " of this batch is sample 42 of blobs/nan"),
                e.getMessage());
    }

    /**
     * A loss of the user's that throws a plain IllegalArgumentException whose text says "row 5" in another sense (a row
     * of its own matrix) gets no sample named from that text: the batch and the loss's message, as they are. One that
     * throws a BadRowException gets its row traced to the sample like a built-in loss.
     */
    @Test
    void aRowNumberInAForeignLossMessageIsNotTakenForABatchRow() {
        int[] order = Dataset.permutation(300, new Random(5));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> runWith(new FailingLoss(() -> new IllegalArgumentException("row 5 of the projection matrix is NaN"))));
        assertEquals("epoch 1, batch 1 of 5: row 5 of the projection matrix is NaN", e.getMessage());

        e = assertThrows(IllegalArgumentException.class,
                () -> runWith(new FailingLoss(() -> new org.distill4j.loss.BadRowException("my loss: row ", 5, " is odd"))));
        assertEquals("epoch 1, batch 1 of 5: my loss: row 5 is odd; row 5 of this batch is sample " + order[5] + " of blobs/train",
                e.getMessage());
    }

    private static void runWith(org.distill4j.loss.LogitLoss loss) {
        Distiller.builder().teacher(Dl4jTeacher.of(teacherNet))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0.0)))
                .loss(loss).trainData(train).epochs(1).batchSize(64).seed(5)
                .backend(new CpuBackend()).build().run();
    }

    /** A user's loss that fails on every batch with the exception given. */
    private record FailingLoss(java.util.function.Supplier<IllegalArgumentException> failure) implements org.distill4j.loss.LogitLoss {
        @Override
        public String name() {
            return "failing";
        }

        @Override
        public Map<String, Object> settings() {
            return Map.of();
        }

        @Override
        public boolean needsTeacher() {
            return true;
        }

        @Override
        public boolean needsLabels() {
            return false;
        }

        @Override
        public org.distill4j.loss.Reduction reduction() {
            return org.distill4j.loss.Reduction.MEAN;
        }

        @Override
        public org.distill4j.loss.LossResult compute(org.distill4j.loss.LogitBatch batch, float[] gradOut, float upstream) {
            throw failure.get();
        }
    }

    /** The per-epoch KL equals a float64 reference from the final student's and the teacher's outputs. */
    @Test
    void theTestKlMatchesAFloat64Reference() {
        org.deeplearning4j.nn.multilayer.MultiLayerNetwork net = Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0);
        Dl4jStudent student = Dl4jStudent.of(net);
        DistillResult r = Distiller.builder().teacher(Dl4jTeacher.of(teacherNet)).student(student)
                .loss(new SoftTargetKd(4, 0.2)).trainData(train).testData(test).epochs(2).batchSize(64).seed(3)
                .backend(new CpuBackend()).build().run();
        org.distill4j.data.Batch all = org.distill4j.data.Batch.range(test, 0, test.size());
        float[] t = Dl4jTeacher.of(teacherNet).outputs(all);
        float[] st = student.forward(all, false);
        double kl = 0;
        for (int row = 0; row < test.size(); row++) {
            double[] lt = org.distill4j.testing.Float64Reference.logSoftmax(t, row * K, K, 1);
            double[] ls = org.distill4j.testing.Float64Reference.logSoftmax(st, row * K, K, 1);
            for (int c = 0; c < K; c++) {
                kl += Math.exp(lt[c]) * (lt[c] - ls[c]);
            }
        }
        kl /= test.size();
        // the teacher's log-probabilities are kept as floats: relative 1e-5
        assertEquals(kl, r.epochs().get(1).teacherKl(), 1e-5 * kl);
        // a stored teacher that has no test outputs, and a run without a teacher: no KL
        DistillResult alone = Distiller.builder().student(Dl4jStudent.of(Nets.logitsMlp(D, 8, K, new Adam(1e-3), 1, 0)))
                .loss(new CrossEntropy()).trainData(train).testData(test).epochs(1).seed(1).backend(new CpuBackend()).build().run();
        assertTrue(Double.isNaN(alone.epochs().get(0).teacherKl()));
    }

    @Test
    void theSameSeedGivesTheSameNumbers() {
        DistillResult a = distill(5, null, null);
        DistillResult b = distill(5, null, null);
        for (int i = 0; i < a.epochs().size(); i++) {
            assertEquals(a.epochs().get(i).loss(), b.epochs().get(i).loss(), 0.0, "epoch " + i);
            assertEquals(a.epochs().get(i).testAccuracy(), b.epochs().get(i).testAccuracy(), 0.0);
        }
        DistillResult c = distill(6, null, null);
        assertTrue(a.epochs().get(0).loss() != c.epochs().get(0).loss(), "another seed shuffles differently");
    }

    @Test
    void schedulesAndListenersSeeEveryEpochAndBatch() {
        List<String> events = new ArrayList<>();
        TrainingListener l = new TrainingListener() {
            @Override
            public void epochStarted(int epoch, int epochs, int batches) {
                events.add("start " + epoch + "/" + epochs + " batches " + batches);
            }

            @Override
            public void batchFinished(int epoch, int batch, int batches, long samples, long elapsedNanos, double loss) {
                if (batch == batches - 1) {
                    events.add("last batch " + epoch + " samples " + samples);
                }
            }

            @Override
            public void epochFinished(EpochMetrics m) {
                events.add("end " + m.epoch() + " T=" + m.temperature());
            }
        };
        DistillResult r = distill(5, l, Schedule.linear(4, 1));
        assertEquals(List.of("start 0/4 batches 5", "last batch 0 samples 300", "end 0 T=4.0",
                "start 1/4 batches 5", "last batch 1 samples 300", "end 1 T=3.0",
                "start 2/4 batches 5", "last batch 2 samples 300", "end 2 T=2.0",
                "start 3/4 batches 5", "last batch 3 samples 300", "end 3 T=1.0"), events);
        assertEquals(0.2, r.epochs().get(0).alpha(), 0.0);
    }

    @Test
    void epochLossIsAMeanPerSampleWhateverTheReduction() {
        double[] losses = new double[2];
        org.distill4j.loss.Reduction[] reductions = {org.distill4j.loss.Reduction.MEAN, org.distill4j.loss.Reduction.SUM};
        for (int i = 0; i < 2; i++) {
            // learning rate 0: both runs see the same weights, so their per-sample losses must agree
            losses[i] = Distiller.builder().teacher(Dl4jTeacher.of(teacherNet))
                    .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new org.nd4j.linalg.learning.config.Sgd(0.0), 11, 0)))
                    .loss(new SoftTargetKd(3, 0.4, reductions[i])).trainData(train).epochs(1).batchSize(64).seed(3)
                    .backend(new CpuBackend()).build().run().epochs().get(0).loss();
        }
        assertEquals(losses[0], losses[1], 1e-9 * losses[0]);
    }

    @Test
    void aScheduleLeavingTheValidRangeFailsBeforeTraining() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                .teacher(Dl4jTeacher.of(teacherNet)).student(Dl4jStudent.of(Nets.logitsMlp(D, 8, K, new Adam(1e-3), 1, 0)))
                .loss(new SoftTargetKd(4, 0.1)).temperature(Schedule.linear(4, 0)).trainData(train).epochs(5).build());
        assertTrue(e.getMessage().contains("at epoch 5 of 5") && e.getMessage().contains("temperature"), e.getMessage());
    }

    @Test
    void aBatchLargerThanTheDataIsOneBatch() {
        for (int batchSize : new int[]{301, Integer.MAX_VALUE - 100, Integer.MAX_VALUE}) {
            MultiLayerNetwork net = Nets.logitsMlp(D, 8, K, new Adam(1e-3), 1, 0);
            float[] before = net.params().toFloatVector();
            List<String> batches = new ArrayList<>();
            DistillResult r = Distiller.builder().student(Dl4jStudent.of(net))
                    .loss(new CrossEntropy()).trainData(train).epochs(1).batchSize(batchSize).seed(1)
                    .backend(new CpuBackend()).listener(new TrainingListener() {
                        @Override
                        public void batchFinished(int epoch, int batch, int n, long samples, long elapsedNanos, double loss) {
                            batches.add(batch + "/" + n + " samples " + samples);
                        }
                    }).build().run();
            assertEquals(List.of("0/1 samples 300"), batches, "batch size " + batchSize);
            assertTrue(r.epochs().get(0).loss() > 0, "the epoch's loss is that of its one batch: " + r.epochs().get(0).loss());
            assertEquals(1, net.getIterationCount(), "one optimizer step");
            assertFalse(java.util.Arrays.equals(before, net.params().toFloatVector()), "the step changed the weights");
        }
    }

    /** DIST, which looks across each batch, trains through the Distiller: its relations to the teacher improve. */
    @Test
    void distWithCrossEntropyTrainsTowardTheTeachersRelations() {
        org.distill4j.loss.LogitLoss loss = org.distill4j.loss.WeightedSum.builder()
                .add(0.5, new CrossEntropy()).add(1.0, new org.distill4j.loss.Dist(2, 2, 4)).build();
        DistillResult r = Distiller.builder().teacher(Dl4jTeacher.of(teacherNet))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0)))
                .loss(loss).trainData(train).testData(test).epochs(4).batchSize(61).seed(2)
                .backend(new CpuBackend()).build().run();
        Map<String, Double> first = r.epochs().get(0).terms();
        Map<String, Double> last = r.epochs().get(3).terms();
        assertTrue(first.keySet().containsAll(List.of("ce", "dist", "inter", "intra")), first.toString());
        assertTrue(last.get("inter") < first.get("inter") && last.get("intra") < first.get("intra"),
                "both correlations move toward the teacher's: " + first + " -> " + last);
        EpochMetrics e0 = r.epochs().get(0);
        EpochMetrics e3 = r.epochs().get(3);
        assertTrue(e3.teacherAgreement() > e0.teacherAgreement() + 0.15 && e3.teacherKl() < e0.teacherKl(),
                "agreement " + e0.teacherAgreement() + " -> " + e3.teacherAgreement() + ", KL " + e0.teacherKl() + " -> " + e3.teacherKl());
    }

    @Test
    void dkdWithCrossEntropyWarmsUpAndReportsItsParts() {
        org.distill4j.loss.LogitLoss loss = org.distill4j.loss.WeightedSum.builder()
                .add(1.0, new CrossEntropy()).add(1.0, new org.distill4j.loss.Dkd(1, 8, 4, 4)).build();
        DistillResult r = Distiller.builder().teacher(Dl4jTeacher.of(teacherNet))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0)))
                .loss(loss).trainData(train).testData(test).epochs(4).batchSize(64).seed(2)
                .backend(new CpuBackend()).build().run();
        for (EpochMetrics m : r.epochs()) {
            assertTrue(m.terms().keySet().containsAll(List.of("ce", "dkd", "tckd", "nckd")), m.terms().toString());
            assertEquals(4.0, m.temperature());
        }
        // warm-up 1/4, 2/4, 3/4, 4/4 of alpha*TCKD + beta*NCKD
        for (int e = 0; e < 4; e++) {
            Map<String, Double> t = r.epochs().get(e).terms();
            assertEquals((e + 1) / 4.0 * (t.get("tckd") + 8 * t.get("nckd")), t.get("dkd"), 1e-9 * t.get("dkd"));
        }
        Map<String, Double> first = r.epochs().get(0).terms();
        Map<String, Double> last = r.epochs().get(3).terms();
        assertTrue(last.get("nckd") < first.get("nckd") && last.get("ce") < first.get("ce"),
                "the student learns the teacher's non-target structure and the labels: " + first + " -> " + last);
    }

    @Test
    void topKDistillationFromALiveTeacherTrains() {
        Dl4jStudent student = Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0));
        DistillResult r = Distiller.builder().teacher(org.distill4j.teacher.TopKTeacher.of(Dl4jTeacher.of(teacherNet), 3))
                .student(student)
                .loss(new org.distill4j.loss.TopKKd(2, org.distill4j.loss.TopKKd.Tail.REST_BUCKET))
                .trainData(train).testData(test).epochs(4).batchSize(64).seed(2).backend(new CpuBackend()).build().run();
        assertTrue(r.epochs().get(3).loss() < r.epochs().get(0).loss());
        assertTrue(r.teacherAgreement() > 0.6, "agreement " + r.teacherAgreement());
        // the top-k view of a live teacher still has its dense rows, so the KL to that teacher is measured, not skipped
        double kl = Evaluation.evaluate(student, test, Evaluation.logProbabilities(Dl4jTeacher.of(teacherNet), test)).teacherKl();
        assertTrue(kl > 0 && Double.isFinite(kl), "KL " + kl);
        assertEquals(kl, r.epochs().get(3).teacherKl(), 1e-12 * kl);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                .teacher(Dl4jTeacher.of(teacherNet)).student(Dl4jStudent.of(Nets.logitsMlp(D, 8, K, new Adam(1e-3), 1, 0)))
                .loss(new org.distill4j.loss.TopKKd(1, org.distill4j.loss.TopKKd.Tail.RENORMALIZE)).trainData(train).build());
        assertTrue(e.getMessage().contains("needs a top-k teacher"), e.getMessage());
    }

    @Test
    void anEnsembleOfTwoTeachersDistills() {
        MultiLayerNetwork second = Nets.logitsMlp(D, 24, K, new Adam(1e-2), 8, 0);
        Distiller.builder().student(Dl4jStudent.of(second)).loss(new CrossEntropy()).trainData(blobs(1000, 4, "b"))
                .epochs(3).batchSize(64).seed(3).backend(new CpuBackend()).build().run();
        DistillResult r = Distiller.builder()
                .teacher(org.distill4j.teacher.EnsembleTeacher.of(Dl4jTeacher.of(teacherNet), Dl4jTeacher.of(second)))
                .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0)))
                .loss(new org.distill4j.loss.ReverseKl(2)).trainData(train).testData(test).epochs(3).batchSize(64).seed(2)
                .backend(new CpuBackend()).build().run();
        assertTrue(r.epochs().get(2).loss() < r.epochs().get(0).loss());
    }

    @Test
    void featureLossesTrainThroughExtraGraphOutputs() {
        for (org.distill4j.loss.FeatureLoss f : new org.distill4j.loss.FeatureLoss[]{
                new org.distill4j.loss.HintLoss(16, 32, 1e-2, 1), new org.distill4j.loss.RelationalKd(25, 50)}) {
            org.deeplearning4j.nn.graph.ComputationGraph g = Dl4jStudent.withFeatureOutputs(
                    Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0).toComputationGraph(), "0");
            DistillResult r = Distiller.builder().teacher(Dl4jTeacher.of(teacherNet)).student(Dl4jStudent.of(g))
                    .loss(new SoftTargetKd(4, 0.2)).featureLoss(0.5, f, "0", "layer0")
                    .trainData(train).testData(test).epochs(4).batchSize(64).seed(2).backend(new CpuBackend()).build().run();
            double first = r.epochs().get(0).terms().get(f.name());
            double last = r.epochs().get(3).terms().get(f.name());
            assertTrue(last < first, f.name() + " falls: " + first + " -> " + last);
            double kd = r.epochs().get(3).terms().get("kd");
            double ce = r.epochs().get(3).terms().get("ce");
            assertEquals(0.2 * ce + 0.8 * kd + 0.5 * last, r.epochs().get(3).loss(), 1e-9 * r.epochs().get(3).loss(),
                    "the epoch loss adds the weighted feature loss");
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                .teacher(Dl4jTeacher.of(teacherNet)).student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(1e-3), 1, 0)))
                .loss(new SoftTargetKd(4, 0.2)).featureLoss(1, new org.distill4j.loss.RelationalKd(1, 0), "layer0", "layer0")
                .trainData(train).epochs(1).backend(new CpuBackend()).build().run());
        assertTrue(e.getMessage().contains("toComputationGraph()"), e.getMessage());
    }

    @Test
    void trainingFromAStoreEqualsTrainingFromTheLiveTeacher(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        java.nio.file.Path store = tmp.resolve("teacher.d4j");
        org.distill4j.store.Labeler.label(Dl4jTeacher.of(teacherNet), train, store,
                new org.distill4j.store.Labeler.Options(0, org.distill4j.store.ValueCodec.F32, 64, 50, "blob-teacher"), null);
        DistillResult live = distill(5, null, null);
        try (org.distill4j.store.SoftTargetStore s = org.distill4j.store.SoftTargetStore.open(store)) {
            DistillResult stored = Distiller.builder().teacher(org.distill4j.store.StoredTeacher.of(s, "blob-teacher"))
                    .student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0.2)))
                    .loss(new SoftTargetKd(4, 0.2)).trainData(train).testData(test).epochs(4).batchSize(64).seed(5)
                    .backend(new CpuBackend()).build().run();
            for (int e = 0; e < 4; e++) {
                assertEquals(live.epochs().get(e).loss(), stored.epochs().get(e).loss(), 1e-6 * live.epochs().get(e).loss(),
                        "epoch " + e + " loss");
                assertEquals(live.epochs().get(e).testAccuracy(), stored.epochs().get(e).testAccuracy(), 0.0);
            }
            assertTrue(Double.isNaN(stored.teacherAgreement()), "a train-set store has no test-set outputs");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                    .teacher(org.distill4j.store.StoredTeacher.of(s, null)).student(Dl4jStudent.of(Nets.logitsMlp(D, 8, K, new Adam(1e-3), 1, 0)))
                    .loss(new SoftTargetKd(4, 0.2)).trainData(test).build());
            assertTrue(e.getMessage().contains("serves only the samples it was labeled on (the same features"), e.getMessage());
            IllegalArgumentException v = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                    .teacher(org.distill4j.store.StoredTeacher.of(s, null))
                    .student(Dl4jStudent.of(Nets.logitsMlp(D, 8, K + 2, new Adam(1e-3), 1, 0)))
                    .loss(new SoftTargetKd(4, 0.2)).trainData(train).build());
            assertTrue(v.getMessage().contains("teacher has 5 classes but the student has 7"), v.getMessage());
        }
    }

    @Test
    void misconfigurationsFailBeforeTraining() {
        Dl4jStudent wrongWidth = Dl4jStudent.of(Nets.logitsMlp(D, 8, K + 1, new Adam(1e-3), 1, 0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                .teacher(Dl4jTeacher.of(teacherNet)).student(wrongWidth).loss(new SoftTargetKd(2, 0.5))
                .trainData(train).build());
        assertTrue(e.getMessage().contains("teacher has 5 classes but the student has 6"), e.getMessage());
        Dl4jStudent ok = Dl4jStudent.of(Nets.logitsMlp(D, 8, K, new Adam(1e-3), 1, 0));
        e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder().student(ok)
                .loss(new SoftTargetKd(2, 0.5)).trainData(train).build());
        assertTrue(e.getMessage().contains("loss 'kd' needs a teacher"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder().student(ok).loss(new CrossEntropy())
                .trainData(train).alpha(Schedule.constant(0.5)).build());
        assertTrue(e.getMessage().contains("schedules apply to loss 'kd'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder().student(ok).loss(new CrossEntropy())
                .trainData(train).temperature(Schedule.constant(2)).build());
        assertTrue(e.getMessage().contains("loss 'ce' has no temperature"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder().student(ok).loss(new CrossEntropy())
                .trainData(train).epochs(0).build());
        assertTrue(e.getMessage().contains("epochs must be > 0"), e.getMessage());
        // test labels of classes the student does not have would count as wrong: a test set of other classes is refused
        Dataset otherClasses = new Dataset("blobs/test7", test.features(), D, test.labels(), K + 2);
        e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder().student(ok).loss(new CrossEntropy())
                .trainData(train).testData(otherClasses).build());
        assertTrue(e.getMessage().contains("blobs/test7 has 7 classes") && e.getMessage().contains("5"), e.getMessage());
        NullPointerException npe = assertThrows(NullPointerException.class, () -> Distiller.builder().student(ok).build());
        assertTrue(npe.getMessage().contains("loss is required"), npe.getMessage());
    }
}
