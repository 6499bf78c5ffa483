package org.distill4j.train;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Dataset;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.HintLoss;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.student.Student;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.learning.config.Adam;

import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checkpoints: a run interrupted at an epoch end, within an epoch, or by {@code kill -9} and resumed ends with the
 * same student, bit for bit, and the same metrics as a run that was never interrupted.
 */
class DistillerCheckpointTest {
    private static final int D = 12;
    private static final int K = 5;
    private static final int EPOCHS = 4;
    private static final int BATCH = 64; // 300 samples: 5 batches per epoch, the last of 44
    private static Dataset train;
    private static Dataset test;
    private static MultiLayerNetwork teacherNet;

    @BeforeAll
    static void trainTeacher() {
        train = DistillerTest.blobs(300, 1, "blobs/train");
        test = DistillerTest.blobs(200, 2, "blobs/test");
        teacherNet = Nets.logitsMlp(D, 32, K, new Adam(1e-2), 7, 0.1);
        Distiller.builder().student(Dl4jStudent.of(teacherNet)).loss(new CrossEntropy()).trainData(DistillerTest.blobs(2000, 3, "t"))
                .epochs(3).batchSize(64).seed(1).backend(new CpuBackend()).build().run();
    }

    /** A fresh student, always the same initial weights; dropout makes the run depend on ND4J's random generator. */
    static MultiLayerNetwork studentNet() {
        return Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0.2);
    }

    static Distiller.Builder run(Student student, Checkpoints c, TrainingListener l) {
        Distiller.Builder b = Distiller.builder().teacher(Dl4jTeacher.of(teacherNet)).student(student)
                .loss(new SoftTargetKd(4, 0.2)).trainData(train).testData(test).epochs(EPOCHS).batchSize(BATCH).seed(5)
                .temperature(Schedule.linear(4, 2)).backend(new CpuBackend());
        if (c != null) {
            b.checkpoints(c);
        }
        if (l != null) {
            b.listener(l);
        }
        return b;
    }

    /** A crash: thrown by a listener after the given batch (or, with batch -1, after the epoch's end). */
    static final class Crash extends RuntimeException {
        Crash() {
            super("simulated crash");
        }
    }

    static TrainingListener crashAfter(int epoch, int batch) {
        return new TrainingListener() {
            @Override
            public void batchFinished(int e, int b, int batches, long samples, long elapsedNanos, double loss) {
                if (e == epoch && b == batch) {
                    throw new Crash();
                }
            }

            @Override
            public void epochFinished(EpochMetrics m) {
                if (m.epoch() == epoch && batch == -1) {
                    throw new Crash();
                }
            }
        };
    }

    static void assertSameRun(DistillResult expected, MultiLayerNetwork expectedNet, DistillResult actual, MultiLayerNetwork actualNet) {
        assertArrayEquals(expectedNet.params().toFloatVector(), actualNet.params().toFloatVector(), "parameters, bit for bit");
        assertArrayEquals(expectedNet.getUpdater().getStateViewArray().toFloatVector(),
                actualNet.getUpdater().getStateViewArray().toFloatVector(), "Adam's moments, bit for bit");
        assertEquals(expectedNet.getIterationCount(), actualNet.getIterationCount());
        assertEquals(expectedNet.getEpochCount(), actualNet.getEpochCount());
        assertEquals(expected.epochs().size(), actual.epochs().size());
        for (int e = 0; e < expected.epochs().size(); e++) {
            EpochMetrics a = expected.epochs().get(e);
            EpochMetrics b = actual.epochs().get(e);
            assertEquals(a.loss(), b.loss(), 0.0, "epoch " + e + " loss");
            assertEquals(List.copyOf(a.terms().entrySet()), List.copyOf(b.terms().entrySet()), "epoch " + e + " terms, in the loss's order");
            assertEquals(a.temperature(), b.temperature(), 0.0);
            assertEquals(a.testAccuracy(), b.testAccuracy(), 0.0);
            assertEquals(a.teacherAgreement(), b.teacherAgreement(), 0.0);
            assertEquals(a.teacherKl(), b.teacherKl(), 0.0);
        }
    }

    @Test
    void aRunResumedAfterAnEpochEndOrWithinAnEpochEqualsAnUninterruptedOne(@TempDir Path tmp) {
        MultiLayerNetwork whole = studentNet();
        DistillResult expected = run(Dl4jStudent.of(whole), null, null).build().run();

        // saves at every epoch end and every 3 steps (5 steps an epoch; none at an epoch's last step). Crashes {epoch, batch,
        // first batch the resumed run trains, counted over the run}: after epoch 2's end; at epoch 2 batch 3 (last save:
        // step 6, epoch 2 batch 1); at epoch 3 batch 3 (last save: step 12, epoch 3 batch 2)
        int[][] crashes = {{1, -1, 10}, {1, 2, 6}, {2, 2, 12}};
        for (int[] at : crashes) {
            Path dir = tmp.resolve("crash-" + at[0] + "-" + at[1]);
            Checkpoints c = Checkpoints.in(dir).everySteps(3);
            assertThrows(Crash.class, () -> run(Dl4jStudent.of(studentNet()), c, crashAfter(at[0], at[1])).build().run());
            assertTrue(Files.exists(c.file()), "a checkpoint was saved before the crash");
            List<Integer> batchesSeen = new ArrayList<>();
            MultiLayerNetwork resumedNet = studentNet();
            DistillResult resumed = run(Dl4jStudent.of(resumedNet), c, new TrainingListener() {
                @Override
                public void batchFinished(int e, int b, int batches, long samples, long elapsedNanos, double loss) {
                    batchesSeen.add(e * batches + b);
                }
            }).build().run();
            assertSameRun(expected, whole, resumed, resumedNet);
            assertTrue(batchesSeen.size() < EPOCHS * 5 && batchesSeen.get(batchesSeen.size() - 1) == EPOCHS * 5 - 1,
                    "the resumed run trained only the steps after the checkpoint: " + batchesSeen);
            assertEquals(at[2], batchesSeen.get(0), "resumed right after the last save, crash at " + at[0] + "/" + at[1]);
        }
    }

    /**
     * A listener's {@code elapsedNanos} is the time since the epoch started, and {@code samples} counts the epoch's samples
     * so far: after a resume within an epoch both include the part trained before the interruption, so a progress bar's
     * samples/s stays a rate of the epoch rather than the epoch's samples over the first resumed step.
     */
    @Test
    void aResumeWithinAnEpochTellsListenersTheWholeEpochsTime(@TempDir Path tmp) {
        Checkpoints c = Checkpoints.in(tmp).everySteps(3); // step 9 is epoch 2's batch 4: saved, then the crash at batch 5
        long[] crashedElapsed = new long[5];
        assertThrows(Crash.class, () -> run(Dl4jStudent.of(studentNet()), c, new TrainingListener() {
            @Override
            public void batchFinished(int e, int b, int batches, long samples, long elapsedNanos, double loss) {
                if (e == 1) {
                    crashedElapsed[b] = elapsedNanos;
                    if (b == 4) {
                        throw new Crash();
                    }
                    try {
                        Thread.sleep(100); // slow steps: the epoch's first 4 batches take at least 0.4 s
                    } catch (InterruptedException ie) {
                        throw new AssertionError(ie);
                    }
                }
            }
        }).build().run());
        List<long[]> seen = new ArrayList<>(); // {epoch, batch, samples, elapsedNanos}
        run(Dl4jStudent.of(studentNet()), c, new TrainingListener() {
            @Override
            public void batchFinished(int e, int b, int batches, long samples, long elapsedNanos, double loss) {
                seen.add(new long[]{e, b, samples, elapsedNanos});
            }
        }).build().run();
        long[] first = seen.get(0);
        assertArrayEquals(new long[]{1, 4, 300}, java.util.Arrays.copyOf(first, 3), "resumed at epoch 2's last batch");
        // The checkpoint after batch 4 holds the epoch's time when its save began: batches 1 to 4 with the sleeps after
        // batches 1 to 3 (batch 4's came after the save). What the crashed run spent on the save itself and after it is
        // lost with the crash, so the resumed clock is not compared with the crashed run's time after batch 4 (on a
        // loaded machine a save takes longer than the resumed batch 5: that comparison failed on a busy CI machine),
        // but with its time after batch 3, which the saved time exceeds by batch 3's sleep at least.
        assertTrue(first[3] > crashedElapsed[2] + 100_000_000L && first[3] >= 300_000_000L,
                "the epoch's time includes its 4 batches before the crash: " + first[3] / 1e6 + " ms, the crashed run was at "
                        + crashedElapsed[2] / 1e6 + " ms after batch 3");
        long[] next = seen.get(1);
        assertTrue(next[0] == 2 && next[1] == 0 && next[3] < first[3], "the next epoch starts its own clock");
    }

    /** everyEpochs(3) of 4 epochs saves after epoch 3 and after the last, not after epochs 1 and 2. */
    @Test
    void everyNthEpochSavesThoseEpochsAndTheLast(@TempDir Path tmp) {
        MultiLayerNetwork whole = studentNet();
        DistillResult expected = run(Dl4jStudent.of(whole), null, null).build().run();
        Checkpoints c = Checkpoints.in(tmp).everyEpochs(3);
        assertThrows(Crash.class, () -> run(Dl4jStudent.of(studentNet()), c, crashAfter(1, -1)).build().run());
        assertFalse(Files.exists(c.file()), "no save after epochs 1 and 2");
        assertThrows(Crash.class, () -> run(Dl4jStudent.of(studentNet()), c, crashAfter(2, -1)).build().run());
        assertTrue(Files.exists(c.file()), "saved after epoch 3");
        List<Integer> epochsSeen = new ArrayList<>();
        MultiLayerNetwork resumedNet = studentNet();
        DistillResult resumed = run(Dl4jStudent.of(resumedNet), c, new TrainingListener() {
            @Override
            public void epochStarted(int epoch, int epochs, int batches) {
                epochsSeen.add(epoch);
            }
        }).build().run();
        assertEquals(List.of(3), epochsSeen, "only the last epoch was trained again");
        assertSameRun(expected, whole, resumed, resumedNet);
    }

    /**
     * A checkpoint of this run's settings whose progress cannot be this run's (more epochs or batches than it has, another
     * count of epoch metrics, a finished run with batches of a next epoch) is refused, naming the file and the numbers.
     */
    @Test
    void aCheckpointWithImpossibleProgressIsRefused(@TempDir Path tmp) throws Exception {
        Checkpoints c = Checkpoints.in(tmp);
        assertThrows(Crash.class, () -> run(Dl4jStudent.of(studentNet()), c, crashAfter(0, -1)).build().run());
        Dl4jStudent saved = Dl4jStudent.of(studentNet());
        CheckpointFile.Progress p = CheckpointFile.read(c.file(), x -> { }, saved, List.of());
        EpochMetrics m = p.history().get(0);
        // {epochs done, batches done, epochs of metrics}
        int[][] impossible = {{1, 5, 1}, {1, -1, 1}, {-1, 0, 0}, {5, 0, 5}, {2, 0, 1}, {4, 2, 4}};
        for (int[] at : impossible) {
            List<EpochMetrics> history = java.util.Collections.nCopies(at[2], m);
            CheckpointFile.write(c.file(), new CheckpointFile.Progress(p.fingerprint(), at[0], at[1], p.trainNanosTotal(), p.samplesTotal(),
                    p.wallNanos(), 0, 0, java.util.Map.of(), p.randomRootState(), p.randomNodeState(), p.engine(), history), saved, List.of());
            MultiLayerNetwork net = studentNet();
            float[] before = net.params().toFloatVector();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(Dl4jStudent.of(net), c, null).build().run(),
                    java.util.Arrays.toString(at));
            assertEquals("the checkpoint " + c.file() + " is inconsistent: " + at[0] + " epochs and " + at[1] + " batches done with "
                    + at[2] + " epochs of metrics, in a run of 4 epochs of 5 batches", e.getMessage());
            assertArrayEquals(before, net.params().toFloatVector(), "a refused checkpoint changes nothing");
        }
        // the last batch of an epoch, and a finished run, are possible: the run resumes (here: restores the finished one)
        CheckpointFile.write(c.file(), new CheckpointFile.Progress(p.fingerprint(), 4, 0, p.trainNanosTotal(), p.samplesTotal(),
                p.wallNanos(), 0, 0, java.util.Map.of(), p.randomRootState(), p.randomNodeState(), p.engine(),
                java.util.Collections.nCopies(4, m)), saved, List.of());
        assertEquals(4, run(Dl4jStudent.of(studentNet()), c, null).build().run().epochs().size());
    }

    /** A run that differs in many settings names the first three and counts the rest. */
    @Test
    void manyChangedSettingsAreNamedThreeAndCounted(@TempDir Path tmp) {
        Checkpoints c = Checkpoints.in(tmp);
        assertThrows(Crash.class, () -> run(Dl4jStudent.of(studentNet()), c, crashAfter(0, -1)).build().run());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(Dl4jStudent.of(studentNet()), c, null)
                .epochs(3).batchSize(32).seed(6).testData(train).build().run());
        assertTrue(e.getMessage().startsWith("the checkpoint " + c.file() + " was written by a run with other settings: epochs was 4,"
                + " now 3; batchSize was 64, now 32; seed was 5, now 6 (and 2 more). Resume with the same settings"), e.getMessage());
    }

    @Test
    void aFinishedRunIsRestoredWithoutTrainingAndOtherSettingsAreRefused(@TempDir Path tmp) {
        Checkpoints c = Checkpoints.in(tmp);
        MultiLayerNetwork first = studentNet();
        DistillResult done = run(Dl4jStudent.of(first), c, null).build().run();

        MultiLayerNetwork again = studentNet();
        List<Integer> batches = new ArrayList<>();
        DistillResult restored = run(Dl4jStudent.of(again), c, new TrainingListener() {
            @Override
            public void batchFinished(int e, int b, int n, long samples, long elapsedNanos, double loss) {
                batches.add(b);
            }
        }).build().run();
        assertTrue(batches.isEmpty(), "nothing trained");
        assertSameRun(done, first, restored, again);
        assertEquals(done.samplesPerSecond(), restored.samplesPerSecond(), 0.0);

        // other settings: refused, naming what differs, and the student is left as it was
        MultiLayerNetwork other = studentNet();
        float[] before = other.params().toFloatVector();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> run(Dl4jStudent.of(other), c, null).batchSize(32).build().run());
        assertTrue(e.getMessage().contains("batchSize was 64, now 32") && e.getMessage().contains(c.file().toString()),
                e.getMessage());
        assertArrayEquals(before, other.params().toFloatVector(), "a refused checkpoint changes nothing");
        IllegalArgumentException t = assertThrows(IllegalArgumentException.class,
                () -> run(Dl4jStudent.of(studentNet()), c, null).temperature(Schedule.constant(4)).build().run());
        assertTrue(t.getMessage().contains("temperatureSchedule was "), t.getMessage());

        // another network configuration of the same size (learning rate): refused by the student
        MultiLayerNetwork otherLr = Nets.logitsMlp(D, 16, K, new Adam(1e-3), 11, 0.2);
        float[] lrBefore = otherLr.params().toFloatVector();
        IllegalArgumentException lr = assertThrows(IllegalArgumentException.class, () -> run(Dl4jStudent.of(otherLr), c, null).build().run());
        assertTrue(lr.getMessage().contains("network configuration differs") && lr.getMessage().contains("learningRate")
                && lr.getMessage().contains(c.file().toString()) && lr.getMessage().contains("startOver()"), lr.getMessage());
        assertArrayEquals(lrBefore, otherLr.params().toFloatVector());

        // start over: trains from the start and replaces the checkpoint
        MultiLayerNetwork fresh = studentNet();
        DistillResult over = run(Dl4jStudent.of(fresh), c.startOver(), null).build().run();
        assertSameRun(done, first, over, fresh);
    }

    @Test
    void aDamagedOrTruncatedCheckpointIsRefusedAndChangesNothing(@TempDir Path tmp) throws Exception {
        Checkpoints c = Checkpoints.in(tmp);
        assertThrows(Crash.class, () -> run(Dl4jStudent.of(studentNet()), c, crashAfter(0, -1)).build().run());
        byte[] good = Files.readAllBytes(c.file());
        byte[] flipped = good.clone();
        flipped[good.length / 2] ^= 0x10;
        Files.write(c.file(), flipped);
        MultiLayerNetwork net = studentNet();
        float[] before = net.params().toFloatVector();
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> run(Dl4jStudent.of(net), c, null).build().run());
        assertTrue(e.getMessage().contains("is damaged") && e.getMessage().contains(c.file().toString()), e.getMessage());
        assertArrayEquals(before, net.params().toFloatVector());

        Files.write(c.file(), java.util.Arrays.copyOf(good, good.length - 1000));
        UncheckedIOException cut = assertThrows(UncheckedIOException.class, () -> run(Dl4jStudent.of(net), c, null).build().run());
        assertTrue(cut.getMessage().contains(c.file().toString()), cut.getMessage());
        assertArrayEquals(before, net.params().toFloatVector());

        Files.writeString(c.file(), "not a checkpoint at all, but long enough to have a checksum");
        UncheckedIOException other = assertThrows(UncheckedIOException.class, () -> run(Dl4jStudent.of(net), c, null).build().run());
        assertTrue(other.getMessage().contains(c.file().toString()) && other.getMessage().contains("is not a Distill4J checkpoint"),
                "a foreign file is named as such, not as a damaged checkpoint: " + other.getMessage());

        byte[] newer = good.clone(); // a later format, whose checksum this version may not even know how to check
        newer[8 + 3] = (byte) (CheckpointFile.VERSION + 1);
        Files.write(c.file(), newer);
        UncheckedIOException version = assertThrows(UncheckedIOException.class, () -> run(Dl4jStudent.of(net), c, null).build().run());
        assertTrue(version.getMessage().contains(c.file() + " is a version " + (CheckpointFile.VERSION + 1) + " checkpoint"),
                version.getMessage());
        assertArrayEquals(before, net.params().toFloatVector());

        Files.write(c.file(), good); // the intact file resumes
        try (var files = Files.list(tmp)) {
            assertEquals(List.of(c.file()), files.toList(), "no temporary files are left behind");
        }
    }

    /** With a minimum interval no due save happens early in the run, but the last epoch's always does. */
    @Test
    void aMinimumIntervalSkipsEarlySavesButNotTheLast(@TempDir Path tmp) {
        Checkpoints c = Checkpoints.in(tmp).everySteps(1).minInterval(java.time.Duration.ofHours(1));
        assertThrows(Crash.class, () -> run(Dl4jStudent.of(studentNet()), c, crashAfter(2, -1)).build().run());
        assertFalse(Files.exists(c.file()), "no save within the first hour");
        MultiLayerNetwork net = studentNet();
        DistillResult r = run(Dl4jStudent.of(net), c, null).build().run();
        assertTrue(Files.exists(c.file()), "the end of the run is saved");
        MultiLayerNetwork restored = studentNet();
        assertSameRun(r, net, run(Dl4jStudent.of(restored), c, null).build().run(), restored);
    }

    /** A graph student with a FitNets hint: the hint's regressor and Adam state are saved and restored too. */
    @Test
    void aGraphStudentWithATrainableHintResumesExactly(@TempDir Path tmp) {
        ComputationGraph whole = graphStudent();
        HintLoss wholeHint = new HintLoss(16, 32, 1e-2, 1);
        DistillResult expected = hintRun(whole, wholeHint, null, null).build().run();

        Checkpoints c = Checkpoints.in(tmp).everySteps(4);
        assertThrows(Crash.class, () -> hintRun(graphStudent(), new HintLoss(16, 32, 1e-2, 1), c, crashAfter(1, 3)).build().run());
        ComputationGraph resumed = graphStudent();
        HintLoss resumedHint = new HintLoss(16, 32, 1e-2, 1);
        DistillResult r = hintRun(resumed, resumedHint, c, null).build().run();
        assertArrayEquals(whole.params().toFloatVector(), resumed.params().toFloatVector());
        assertArrayEquals(whole.getUpdater().getStateViewArray().toFloatVector(), resumed.getUpdater().getStateViewArray().toFloatVector());
        assertArrayEquals(wholeHint.weights(), resumedHint.weights(), 0.0);
        assertArrayEquals(wholeHint.bias(), resumedHint.bias(), 0.0);
        for (int e = 0; e < EPOCHS; e++) {
            assertEquals(expected.epochs().get(e).loss(), r.epochs().get(e).loss(), 0.0);
            assertEquals(expected.epochs().get(e).terms(), r.epochs().get(e).terms());
        }
        // a second feature term: refused by the settings before anything changes
        ComputationGraph other = graphStudent();
        float[] before = other.params().toFloatVector();
        HintLoss first = new HintLoss(16, 32, 1e-2, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                .teacher(Dl4jTeacher.of(teacherNet)).student(Dl4jStudent.of(other)).loss(new SoftTargetKd(4, 0.2))
                .featureLoss(0.5, first, "0", "layer0").featureLoss(0.5, new HintLoss(16, 32, 1e-2, 2), "0", "layer0")
                .trainData(train).testData(test).epochs(EPOCHS).batchSize(BATCH).seed(5).backend(new CpuBackend())
                .checkpoints(c).build().run());
        assertTrue(e.getMessage().contains("featureLosses was"), e.getMessage());
        assertArrayEquals(before, other.params().toFloatVector());
        assertArrayEquals(new HintLoss(16, 32, 1e-2, 1).weights(), first.weights(), 0.0);
    }

    /** A hint's state goes into a hint of the same sizes only; a refused state changes nothing. */
    @Test
    void aHintStateFitsOnlyAHintOfTheSameSizes() throws Exception {
        HintLoss trained = new HintLoss(6, 9, 1e-2, 3);
        org.distill4j.loss.FeatureBatch fb = org.distill4j.loss.FeatureBatch.of(4, DistillerTest.blobs(4, 1, "x").features(),
                new int[]{12}, new float[4 * 9], new int[]{9});
        HintLoss sized = new HintLoss(12, 9, 1e-2, 3);
        sized.compute(fb, new float[4 * 12], 0.7f);
        sized.step();
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        sized.writeState(new java.io.DataOutputStream(bytes));
        HintLoss copy = new HintLoss(12, 9, 1e-2, 4);
        copy.readState(new java.io.DataInputStream(new java.io.ByteArrayInputStream(bytes.toByteArray()))).apply();
        assertArrayEquals(sized.weights(), copy.weights(), 0.0);
        assertArrayEquals(sized.bias(), copy.bias(), 0.0);
        float[] g1 = new float[4 * 12];
        float[] g2 = new float[4 * 12];
        sized.compute(fb, g1, 1f);
        sized.step();
        copy.compute(fb, g2, 1f);
        copy.step();
        assertArrayEquals(sized.weights(), copy.weights(), 0.0, "the next Adam step too (moments and step count restored)");
        double[] w = trained.weights();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> trained.readState(new java.io.DataInputStream(new java.io.ByteArrayInputStream(bytes.toByteArray()))));
        assertTrue(e.getMessage().contains("maps 12 student values to 9") && e.getMessage().contains("maps 6 to 9"), e.getMessage());
        assertArrayEquals(w, trained.weights(), 0.0);
    }

    /** A trainable feature loss that refuses its saved state: the student, read before it, must stay as it was. */
    static final class Refusing implements org.distill4j.loss.FeatureLoss, org.distill4j.loss.FeatureLoss.Trainable,
            org.distill4j.checkpoint.Checkpointable {
        final HintLoss inner = new HintLoss(16, 32, 1e-2, 1);
        final boolean refuse;

        Refusing(boolean refuse) {
            this.refuse = refuse;
        }

        public String name() {
            return "refusing-hint";
        }

        public java.util.Map<String, Object> settings() {
            return inner.settings();
        }

        public org.distill4j.loss.LossResult compute(org.distill4j.loss.FeatureBatch batch, float[] gradOut, float upstream) {
            return inner.compute(batch, gradOut, upstream);
        }

        public void step() {
            inner.step();
        }

        public long parameterCount() {
            return inner.parameterCount();
        }

        public void writeState(java.io.DataOutputStream out) throws java.io.IOException {
            inner.writeState(out);
        }

        public Restore readState(java.io.DataInputStream in) throws java.io.IOException {
            Restore r = inner.readState(in);
            if (refuse) {
                throw new IllegalArgumentException("this state is refused");
            }
            return r;
        }
    }

    @Test
    void aCheckpointThatOnePartRefusesChangesNoPartAndNamesTheFile(@TempDir Path tmp) {
        Checkpoints c = Checkpoints.in(tmp);
        assertThrows(Crash.class, () -> Distiller.builder().teacher(Dl4jTeacher.of(teacherNet)).student(Dl4jStudent.of(graphStudent()))
                .loss(new SoftTargetKd(4, 0.2)).featureLoss(0.5, new Refusing(false), "0", "layer0").trainData(train).epochs(EPOCHS)
                .batchSize(BATCH).seed(5).backend(new CpuBackend()).checkpoints(c).listener(crashAfter(1, -1)).build().run());
        ComputationGraph g = graphStudent();
        float[] before = g.params().toFloatVector();
        Refusing refusing = new Refusing(true);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Distiller.builder()
                .teacher(Dl4jTeacher.of(teacherNet)).student(Dl4jStudent.of(g)).loss(new SoftTargetKd(4, 0.2))
                .featureLoss(0.5, refusing, "0", "layer0").trainData(train).epochs(EPOCHS).batchSize(BATCH).seed(5)
                .backend(new CpuBackend()).checkpoints(c).build().run());
        assertTrue(e.getMessage().contains(c.file().toString()) && e.getMessage().contains("this state is refused"), e.getMessage());
        // a setting to change, as every other mismatch (the CLI says it in one line, exit 2), not a failure of the run
        assertTrue(e instanceof org.distill4j.checkpoint.CheckpointMismatchException, e.getClass().getName());
        assertArrayEquals(before, g.params().toFloatVector(), "the student was read first but not changed");
        assertEquals(0, g.getIterationCount());
        assertArrayEquals(new HintLoss(16, 32, 1e-2, 1).weights(), refusing.inner.weights(), 0.0);
    }

    /**
     * Dropout whose retain probability follows an epoch schedule: DL4J reads each layer's own epoch count, which a
     * resume must restore too (it moves only at epoch ends).
     */
    @Test
    void scheduledDropoutResumesExactly(@TempDir Path tmp) {
        MultiLayerNetwork whole = scheduledDropoutNet();
        DistillResult expected = run(Dl4jStudent.of(whole), null, null).build().run();
        Checkpoints c = Checkpoints.in(tmp).everySteps(4);
        assertThrows(Crash.class, () -> run(Dl4jStudent.of(scheduledDropoutNet()), c, crashAfter(2, 3)).build().run());
        MultiLayerNetwork resumed = scheduledDropoutNet();
        assertSameRun(expected, whole, run(Dl4jStudent.of(resumed), c, null).build().run(), resumed);
        for (int i = 0; i < whole.getnLayers(); i++) {
            assertEquals(whole.getLayer(i).getEpochCount(), resumed.getLayer(i).getEpochCount(), "layer " + i + " epoch count");
        }
    }

    static MultiLayerNetwork scheduledDropoutNet() {
        org.nd4j.linalg.schedule.ISchedule retain = new org.nd4j.linalg.schedule.MapSchedule.Builder(
                org.nd4j.linalg.schedule.ScheduleType.EPOCH).add(0, 0.95).add(1, 0.5).add(3, 0.8).build();
        org.deeplearning4j.nn.conf.MultiLayerConfiguration conf = new org.deeplearning4j.nn.conf.NeuralNetConfiguration.Builder()
                .seed(11).updater(new Adam(5e-3)).weightInit(org.deeplearning4j.nn.weights.WeightInit.XAVIER).list()
                .layer(new org.deeplearning4j.nn.conf.layers.DenseLayer.Builder().nIn(D).nOut(16)
                        .activation(org.nd4j.linalg.activations.Activation.RELU)
                        .dropOut(new org.deeplearning4j.nn.conf.dropout.Dropout(retain)).build())
                .layer(new org.deeplearning4j.nn.conf.layers.DenseLayer.Builder().nIn(16).nOut(K)
                        .activation(org.nd4j.linalg.activations.Activation.IDENTITY).build())
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        return net;
    }

    /** Other data under the same name, or another teacher of the same shape: refused, naming which. */
    @Test
    void otherDataOrAnotherTeacherOfTheSameShapeIsRefused(@TempDir Path tmp) {
        Checkpoints c = Checkpoints.in(tmp);
        run(Dl4jStudent.of(studentNet()), c, null).build().run();
        Dataset sameName = DistillerTest.blobs(300, 77, "blobs/train");
        IllegalArgumentException d = assertThrows(IllegalArgumentException.class,
                () -> run(Dl4jStudent.of(studentNet()), c, null).trainData(sameName).build().run());
        assertTrue(d.getMessage().contains("trainData was blobs/train, 300 samples, crc32c "), d.getMessage());
        MultiLayerNetwork otherTeacher = Nets.logitsMlp(D, 32, K, new Adam(1e-2), 8, 0.1); // same shape, other weights
        IllegalArgumentException t = assertThrows(IllegalArgumentException.class,
                () -> run(Dl4jStudent.of(studentNet()), c, null).teacher(Dl4jTeacher.of(otherTeacher)).build().run());
        assertTrue(t.getMessage().contains("teacherIdentity was ") && t.getMessage().contains("parameters crc32c"), t.getMessage());
    }

    /**
     * A stored teacher is the same teacher wherever its file lies: a run whose store was moved (another folder and
     * name) between the crash and the resume resumes, and ends as an uninterrupted run does.
     */
    @Test
    void aStoreMovedBetweenCrashAndResumeIsTheSameTeacher(@TempDir Path tmp) throws Exception {
        Path first = tmp.resolve("labels/teacher.d4js");
        Files.createDirectories(first.getParent());
        org.distill4j.store.Labeler.label(Dl4jTeacher.of(teacherNet), train, first,
                new org.distill4j.store.Labeler.Options(0, org.distill4j.store.ValueCodec.F32, 64, 50, "mlp"), null);
        MultiLayerNetwork whole = studentNet();
        DistillResult expected;
        try (org.distill4j.store.SoftTargetStore s = org.distill4j.store.SoftTargetStore.open(first)) {
            expected = run(Dl4jStudent.of(whole), null, null).teacher(org.distill4j.store.StoredTeacher.of(s, "mlp")).build().run();
        }
        Checkpoints c = Checkpoints.in(tmp.resolve("ckpt")).everySteps(3);
        try (org.distill4j.store.SoftTargetStore s = org.distill4j.store.SoftTargetStore.open(first)) {
            assertThrows(Crash.class, () -> run(Dl4jStudent.of(studentNet()), c, crashAfter(1, 2))
                    .teacher(org.distill4j.store.StoredTeacher.of(s, "mlp")).build().run());
        }
        Path moved = Files.createDirectories(tmp.resolve("elsewhere")).resolve("renamed.d4js");
        Files.move(first, moved);
        MultiLayerNetwork resumedNet = studentNet();
        DistillResult resumed;
        try (org.distill4j.store.SoftTargetStore s = org.distill4j.store.SoftTargetStore.open(moved)) {
            resumed = run(Dl4jStudent.of(resumedNet), c, null).teacher(org.distill4j.store.StoredTeacher.of(s, "mlp")).build().run();
        }
        assertSameRun(expected, whole, resumed, resumedNet);
    }

    /** Starting over deletes the old checkpoint at once, and leftovers of interrupted saves are cleaned up. */
    @Test
    void startOverDeletesTheOldCheckpointAndLeftoversAreCleanedUp(@TempDir Path tmp) throws Exception {
        Checkpoints c = Checkpoints.in(tmp);
        run(Dl4jStudent.of(studentNet()), c, null).build().run();
        Path leftover = tmp.resolve("." + Checkpoints.FILE_NAME + "12345.tmp");
        Files.write(leftover, new byte[1000]);
        Checkpoints late = c.startOver().minInterval(java.time.Duration.ofHours(1));
        assertThrows(Crash.class, () -> run(Dl4jStudent.of(studentNet()), late, crashAfter(0, 2)).build().run());
        assertFalse(Files.exists(c.file()), "the previous run's checkpoint is gone, so a later resume cannot pick it up");
        assertFalse(Files.exists(leftover), "an interrupted save's temporary file is deleted");
    }

    /** A student of 1.4M parameters (Adam: 2.9M state values), so arrays span several 1M-value blocks. */
    @Test
    void aStudentOfSeveralBlocksRoundTrips(@TempDir Path tmp) {
        Checkpoints c = Checkpoints.in(tmp);
        MultiLayerNetwork big = Nets.logitsMlp(D, 80_000, K, new Adam(1e-3), 3, 0);
        DistillResult r = run(Dl4jStudent.of(big), c, null).epochs(1).temperature(Schedule.constant(4)).build().run();
        MultiLayerNetwork back = Nets.logitsMlp(D, 80_000, K, new Adam(1e-3), 3, 0);
        assertSameRun(r, big, run(Dl4jStudent.of(back), c, null).epochs(1).temperature(Schedule.constant(4)).build().run(), back);
    }

    private static ComputationGraph graphStudent() {
        return Dl4jStudent.withFeatureOutputs(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0.2).toComputationGraph(), "0");
    }

    private static Distiller.Builder hintRun(ComputationGraph g, HintLoss hint, Checkpoints c, TrainingListener l) {
        Distiller.Builder b = Distiller.builder().teacher(Dl4jTeacher.of(teacherNet)).student(Dl4jStudent.of(g))
                .loss(new SoftTargetKd(4, 0.2)).featureLoss(0.5, hint, "0", "layer0")
                .trainData(train).testData(test).epochs(EPOCHS).batchSize(BATCH).seed(5).backend(new CpuBackend());
        if (c != null) {
            b.checkpoints(c);
        }
        if (l != null) {
            b.listener(l);
        }
        return b;
    }

    /** A checkpoint directory that cannot be made fails the run before its first step, not at the first save an epoch later. */
    @Test
    void aCheckpointDirectoryThatCannotBeMadeFailsBeforeTraining(@TempDir Path tmp) throws Exception {
        Path notADir = Files.writeString(tmp.resolve("a-file"), "in the way");
        List<Integer> steps = new ArrayList<>();
        TrainingListener counting = new TrainingListener() {
            @Override
            public void batchFinished(int e, int b, int batches, long samples, long elapsedNanos, double loss) {
                steps.add(b);
            }
        };
        for (Path dir : new Path[]{notADir, notADir.resolve("below")}) {
            UncheckedIOException e = assertThrows(UncheckedIOException.class,
                    () -> run(Dl4jStudent.of(studentNet()), Checkpoints.in(dir), counting).build().run());
            assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
            assertEquals(List.of(), steps, "no step trained before the failure");
        }
    }

    @Test
    void whatCannotBeCheckpointedIsRefusedBeforeTraining(@TempDir Path tmp) {
        Student plain = new Student() {
            public int classes() {
                return K;
            }

            public float[] forward(org.distill4j.data.Batch batch, boolean training) {
                return new float[batch.size() * K];
            }

            public void backward(float[] dLogits) {
            }

            public void endEpoch() {
            }

            public long parameterCount() {
                return 0;
            }

            public String describe() {
                return "a test student";
            }
        };
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(plain, Checkpoints.in(tmp), null).build());
        assertThrows(IllegalArgumentException.class, () -> Checkpoints.in(tmp).minInterval(java.time.Duration.ofSeconds(-1)));
        assertTrue(e.getMessage().contains("a test student cannot"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Checkpoints.in(tmp).everyEpochs(0));
        assertThrows(IllegalArgumentException.class, () -> Checkpoints.in(tmp).everySteps(-1));
    }

    /**
     * {@code kill -9} of a child process that saves after every step: the checkpoint it leaves is whole, and the run
     * resumed from it here ends with the uninterrupted run's student.
     */
    @Test
    void aRunKilledWithSigkillResumesExactly(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("ckpt");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), DistillChild.class.getName(), dir.toString())
                .redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile()).start();
        Path file = dir.resolve(Checkpoints.FILE_NAME);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!Files.exists(file) && System.nanoTime() < deadline && p.isAlive()) {
            Thread.sleep(5);
        }
        Thread.sleep(300); // well into the run, saving after every step
        assertTrue(p.isAlive(), "the child was still training when killed: " + Files.readString(tmp.resolve("child.log")));
        p.destroyForcibly(); // SIGKILL on Linux
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));

        MultiLayerNetwork whole = DistillChild.student();
        DistillResult expected = DistillChild.builder(whole, null).build().run();
        MultiLayerNetwork resumed = DistillChild.student();
        int[] stepsHere = {0};
        DistillResult r = DistillChild.builder(resumed, Checkpoints.in(dir)).listener(new TrainingListener() {
            @Override
            public void batchFinished(int e, int b, int batches, long samples, long elapsedNanos, double loss) {
                stepsHere[0]++;
            }
        }).build().run();
        assertTrue(stepsHere[0] > 0 && stepsHere[0] < DistillChild.STEPS, "the child had trained some steps, not all: "
                + (DistillChild.STEPS - stepsHere[0]) + " of " + DistillChild.STEPS);
        assertArrayEquals(whole.params().toFloatVector(), resumed.params().toFloatVector(), "parameters, bit for bit");
        assertEquals(expected.epochs().get(expected.epochs().size() - 1).loss(), r.epochs().get(r.epochs().size() - 1).loss(), 0.0);
        try (var files = Files.list(dir)) {
            assertFalse(files.anyMatch(f -> !f.equals(file) && !f.getFileName().toString().endsWith(".tmp")),
                    "only the checkpoint (and at most a temporary file the kill interrupted)");
        }
    }
}
