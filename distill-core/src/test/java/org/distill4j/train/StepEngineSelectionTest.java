package org.distill4j.train;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.learning.config.Adam;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How {@link Distiller} picks what runs its steps: the first {@link StepEngineProvider} that offers an
 * engine, else the DL4J path with each provider's reason in the log and the result; {@code dl4j} or a
 * provider's name asked for explicitly. The engine here trains its own copy of the student with the DL4J
 * computations and writes its weights back at each epoch's end, so a run through it must give the DL4J
 * path's numbers exactly, and a run whose engine never wrote back would not.
 */
class StepEngineSelectionTest {
    private static final int D = 12;
    private static final int K = 5;
    private static final Dataset TRAIN = DistillerTest.blobs(230, 1, "blobs/train");
    private static final Dataset TEST = DistillerTest.blobs(150, 2, "blobs/test");
    private static final MultiLayerNetwork TEACHER = Nets.logitsMlp(D, 24, K, new Adam(1e-2), 7, 0);

    /** Trains a clone of the student's network on the CPU backend; writes its parameters back when asked. */
    static class CopyEngine implements StepEngine {
        final MultiLayerNetwork target;
        final MultiLayerNetwork copy;
        final Dl4jStudent student;
        final Teacher teacher;
        final boolean writeBack;
        final CpuBackend cpu = new CpuBackend();
        int steps;
        int syncs;
        int closes;

        CopyEngine(MultiLayerNetwork target, Teacher teacher, boolean writeBack) {
            this.target = target;
            this.copy = target.clone();
            this.student = Dl4jStudent.of(copy);
            this.teacher = teacher;
            this.writeBack = writeBack;
        }

        @Override
        public String describe() {
            return "copy-engine on the CPU";
        }

        @Override
        public LossResult step(Batch batch, LogitLoss loss) {
            steps++;
            float[] logits = student.forward(batch, true);
            LogitBatch lb = LogitBatch.of(batch.size(), K, logits, teacher.outputs(batch), teacher.values(), batch.labels());
            float[] grad = new float[logits.length];
            LossResult r = cpu.logitLoss(loss, lb, grad, 1f);
            student.backward(grad);
            return r;
        }

        @Override
        public void syncToStudent() {
            syncs++;
            if (writeBack) { // all an optimizer needs to go on, as a real engine writes back
                target.setParams(copy.params().dup());
                target.getUpdater().getStateViewArray().assign(copy.getUpdater().getStateViewArray());
                target.setIterationCount(copy.getIterationCount());
                target.setEpochCount(copy.getEpochCount());
            }
        }

        @Override
        public void close() {
            closes++;
        }
    }

    /**
     * A CopyEngine that queues its steps as a GPU would: {@link #submit} only records the batch, and a
     * result computes the queued steps up to its own, in order. It fails when the Distiller lets more than
     * two steps pend, collects out of order, or ends an epoch or closes with a step pending (a run that throws syncs with
     * steps pending: they are applied first).
     */
    static final class QueueingEngine extends CopyEngine {
        final java.util.ArrayDeque<Runnable> queued = new java.util.ArrayDeque<>();
        final List<String> events = new ArrayList<>();
        int submitted;
        int collected;
        int maxPending;
        final int nanAtStep;

        QueueingEngine(MultiLayerNetwork target, Teacher teacher, int nanAtStep) {
            super(target, teacher, true);
            this.nanAtStep = nanAtStep;
        }

        @Override
        public Pending submit(Batch batch, LogitLoss loss) {
            int mine = submitted++;
            maxPending = Math.max(maxPending, submitted - collected);
            LossResult[] out = new LossResult[1];
            queued.add(() -> out[0] = step(batch, loss));
            events.add("submit " + mine);
            return () -> {
                assertEquals(collected, mine, "results are asked for in submission order");
                while (out[0] == null) {
                    queued.remove().run();
                }
                collected++;
                events.add("result " + mine);
                return mine == nanAtStep ? new LossResult(Double.NaN, out[0].rows(), out[0].terms()) : out[0];
            };
        }

        private void nonePending(String what) {
            assertEquals(submitted, collected, what + " with a step pending");
        }

        @Override
        public void endEpoch() {
            nonePending("endEpoch");
            events.add("endEpoch");
        }

        @Override
        public void syncToStudent() {
            // a run that goes on syncs with none pending; one that throws syncs with its pending steps applied, as a GPU's
            while (!queued.isEmpty()) {
                queued.remove().run();
            }
            super.syncToStudent();
        }

        @Override
        public void close() {
            if (nanAtStep < 0) {
                nonePending("close");
            }
            super.close();
        }
    }

    /** Offers a CopyEngine, or declines with a fixed reason. */
    static final class Provider implements StepEngineProvider {
        final String name;
        final String decline;
        final boolean writeBack;
        final List<CopyEngine> made = new ArrayList<>();
        int offers;
        int queueingNanAt = Integer.MIN_VALUE; // > MIN_VALUE: offer a QueueingEngine (a NaN loss at that step when >= 0)

        Provider(String name, String decline, boolean writeBack) {
            this.name = name;
            this.decline = decline;
            this.writeBack = writeBack;
        }

        Provider queueing(int nanAtStep) {
            queueingNanAt = nanAtStep;
            return this;
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public Offer offer(Setup setup) {
            offers++;
            if (decline != null) {
                return Offer.decline(decline);
            }
            assertEquals(64, setup.batchSize());
            assertEquals("cpu", setup.backend().name());
            CopyEngine e = queueingNanAt > Integer.MIN_VALUE ? new QueueingEngine(current, setup.teacher(), queueingNanAt)
                    : new CopyEngine(current, setup.teacher(), writeBack);
            made.add(e);
            return Offer.of(e);
        }
    }

    private static MultiLayerNetwork current;

    private static DistillResult run(List<StepEngineProvider> providers, String engine) {
        return run(providers, engine, null, null);
    }

    private static DistillResult run(List<StepEngineProvider> providers, String engine, Checkpoints c, TrainingListener l) {
        current = Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0); // the same initial weights every run
        Distiller.Builder b = Distiller.builder().teacher(Dl4jTeacher.of(TEACHER)).student(Dl4jStudent.of(current))
                .loss(new SoftTargetKd(3, 0.3)).trainData(TRAIN).testData(TEST).epochs(3).batchSize(64).seed(5)
                .backend(new CpuBackend()).stepEngines(providers);
        if (engine != null) {
            b.engine(engine);
        }
        if (c != null) {
            b.checkpoints(c);
        }
        if (l != null) {
            b.listener(l);
        }
        return b.build().run();
    }

    /** An engine sizes its buffers by the setup's batch size, documented as the largest batch a run submits. */
    @Test
    void theSetupsBatchSizeIsTheLargestBatchNotTheRequestedOne() {
        List<Integer> seen = new ArrayList<>();
        StepEngineProvider recording = provider("recording", setup -> {
            seen.add(setup.batchSize());
            return StepEngineProvider.Offer.decline("records only");
        }, be -> null);
        for (int batchSize : new int[]{64, 230, 1000, Integer.MAX_VALUE}) {
            Distiller.builder().teacher(Dl4jTeacher.of(TEACHER)).student(Dl4jStudent.of(Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0)))
                    .loss(new SoftTargetKd(3, 0.3)).trainData(TRAIN).epochs(1).batchSize(batchSize).seed(5)
                    .backend(new CpuBackend()).stepEngines(List.of(recording)).build().run();
        }
        assertEquals(List.of(64, 230, 230, 230), seen, "230 training rows");
    }

    @Test
    void anOfferedEngineRunsEveryStepAndGivesTheDl4jPathsNumbers() {
        DistillResult dl4j = run(List.of(), null);
        assertEquals("dl4j", dl4j.engine());
        Provider declines = new Provider("gpu-like", "no device here", true);
        Provider offers = new Provider("copy", null, true);
        DistillResult viaEngine = run(List.of(declines, offers), null);
        assertEquals("copy-engine on the CPU", viaEngine.engine());
        CopyEngine e = offers.made.get(0);
        assertEquals(3 * 4, e.steps, "3 epochs of 4 batches (230 rows, batch 64)");
        assertEquals(3, e.syncs, "weights written back before each epoch's evaluation");
        assertEquals(1, e.closes);
        for (int i = 0; i < 3; i++) {
            assertEquals(dl4j.epochs().get(i).loss(), viaEngine.epochs().get(i).loss(), 0.0, "epoch " + i + " loss");
            assertEquals(dl4j.epochs().get(i).terms(), viaEngine.epochs().get(i).terms());
            assertEquals(dl4j.epochs().get(i).testAccuracy(), viaEngine.epochs().get(i).testAccuracy(), 0.0);
            assertEquals(dl4j.epochs().get(i).teacherKl(), viaEngine.epochs().get(i).teacherKl(), 0.0);
        }
    }

    /**
     * A pipelined engine run checkpointed within epochs: each save collects the pending step and syncs the engine
     * first (the QueueingEngine fails otherwise), and a run resumed after a crash, with a new engine made from the
     * restored student, ends with the uninterrupted run's student and metrics.
     */
    @Test
    void aPipelinedEngineRunResumesFromACheckpointExactly(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
        Provider whole = new Provider("queue", null, true).queueing(-1);
        DistillResult expected = run(List.of(whole), null);
        float[] expectedParams = current.params().toFloatVector();

        Checkpoints c = Checkpoints.in(tmp).everySteps(3); // 4 steps an epoch: saves after steps 3, 6 (epoch 2, batch 2), 9
        Provider crashed = new Provider("queue", null, true).queueing(-1);
        assertThrows(DistillerCheckpointTest.Crash.class, () -> run(List.of(crashed), null, c, DistillerCheckpointTest.crashAfter(1, 3)));
        Provider resumed = new Provider("queue", null, true).queueing(-1);
        DistillResult r = run(List.of(resumed), null, c, null);
        assertEquals(3 * 4 - 6, resumed.made.get(0).steps, "the resumed engine ran the steps after the save of step 6");
        org.junit.jupiter.api.Assertions.assertArrayEquals(expectedParams, current.params().toFloatVector(), "parameters, bit for bit");
        for (int i = 0; i < 3; i++) {
            assertEquals(expected.epochs().get(i).loss(), r.epochs().get(i).loss(), 0.0, "epoch " + i + " loss");
            assertEquals(expected.epochs().get(i).testAccuracy(), r.epochs().get(i).testAccuracy(), 0.0);
        }
    }

    @Test
    void stepsArePipelinedOneAheadAndGiveTheSameNumbers() {
        DistillResult dl4j = run(List.of(), null);
        Provider p = new Provider("queue", null, true).queueing(-1);
        DistillResult viaQueue = run(List.of(p), null);
        QueueingEngine e = (QueueingEngine) p.made.get(0);
        assertEquals(12, e.submitted);
        assertEquals(2, e.maxPending, "batch i+1 is submitted before batch i's result is asked for, never more");
        assertEquals(List.of("submit 0", "submit 1", "result 0", "submit 2", "result 1", "submit 3", "result 2", "result 3", "endEpoch",
                "submit 4", "submit 5", "result 4"), e.events.subList(0, 12));
        for (int i = 0; i < 3; i++) {
            assertEquals(dl4j.epochs().get(i).loss(), viaQueue.epochs().get(i).loss(), 0.0, "epoch " + i + " loss");
            assertEquals(dl4j.epochs().get(i).terms(), viaQueue.epochs().get(i).terms());
            assertEquals(dl4j.epochs().get(i).teacherKl(), viaQueue.epochs().get(i).teacherKl(), 0.0);
        }
    }

    @Test
    void aNonFiniteLossFromAPendingStepNamesItsBatchAndStillClosesTheEngine() {
        Provider p = new Provider("queue", null, true).queueing(5); // epoch 2's second batch
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> run(List.of(p), null));
        assertEquals("loss became NaN at epoch 2, batch 2; lower the learning rate or check the inputs", e.getMessage());
        assertEquals(1, p.made.get(0).closes);
    }

    @Test
    void runsWithFeatureLossesKeepTheDl4jPath() {
        Provider offers = new Provider("copy", null, true);
        current = Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0);
        StepEngineProvider.Setup withFeatures = new StepEngineProvider.Setup(Dl4jTeacher.of(TEACHER), Dl4jStudent.of(current),
                new SoftTargetKd(3, 0.3), new CpuBackend(), 64,
                List.of(new Distiller.FeatureTerm(0.5, new org.distill4j.loss.AttentionTransfer(2), "0", "0")), 5);
        StepEngines.Choice auto = StepEngines.choose(List.of(offers), withFeatures, "auto");
        assertEquals(null, auto.engine());
        assertEquals("dl4j (feature losses run on the DL4J path)", auto.description());
        assertEquals(0, offers.offers, "the providers are not asked");
        StepEngines.UnavailableEngineException forced = assertThrows(StepEngines.UnavailableEngineException.class,
                () -> StepEngines.choose(List.of(offers), withFeatures, "copy", "-Ddistill.engine=copy"));
        assertEquals("step engine 'copy' was requested (-Ddistill.engine=copy) but declined: feature losses run on the DL4J path"
                + " (an engine computes only the logit loss); available: dl4j, auto (request one of them; auto takes the first engine"
                + " that offers, else dl4j)", forced.getMessage());
        assertEquals(0, offers.offers, "the provider is not asked");
        assertThrows(StepEngines.UnknownEngineException.class, () -> StepEngines.choose(List.of(offers), withFeatures, "tpu"));
    }

    @Test
    void anEngineThatNeverWritesBackIsSeenInTheEvaluation() {
        DistillResult dl4j = run(List.of(), null);
        DistillResult stale = run(List.of(new Provider("copy", null, false)), null);
        assertEquals(dl4j.epochs().get(2).loss(), stale.epochs().get(2).loss(), 0.0, "the training itself is the same");
        assertNotEquals(dl4j.epochs().get(2).teacherKl(), stale.epochs().get(2).teacherKl(), "but the evaluated student is not");
    }

    @Test
    void withoutAnOfferTheRunSaysWhyInItsResult() {
        DistillResult r = run(List.of(new Provider("gpu-like", "no device here", true), new Provider("other", "not an MLP", true)), null);
        assertEquals("dl4j (gpu-like: no device here; other: not an MLP)", r.engine());
    }

    @Test
    void askingForDl4jSkipsTheProviders() {
        Provider offers = new Provider("copy", null, true);
        DistillResult r = run(List.of(offers), "dl4j");
        assertEquals(0, offers.offers);
        assertEquals("dl4j (asked for by Distiller.Builder.engine(\"dl4j\"))", r.engine(), "the request's origin, as given");
        String before = System.getProperty(StepEngines.PROPERTY);
        System.setProperty(StepEngines.PROPERTY, "dl4j");
        try {
            assertEquals("dl4j (asked for by -Ddistill.engine=dl4j)", run(List.of(offers), null).engine());
        } finally {
            if (before == null) {
                System.clearProperty(StepEngines.PROPERTY);
            } else {
                System.setProperty(StepEngines.PROPERTY, before);
            }
        }
        assertEquals(0, offers.offers);
    }

    /**
     * An engine asked for by name that declines, or a name no provider has, fails with a type of its own (still an
     * IllegalStateException or IllegalArgumentException) whose one-line message names the setting it came from, the
     * reason, and the engines that can be asked for, so an application can report it as a setting to change.
     */
    @Test
    void askingForAnEngineThatDeclinesOrDoesNotExistFails() {
        Provider declines = new Provider("gpu-like", "no device here", true);
        StepEngines.UnavailableEngineException no = assertThrows(StepEngines.UnavailableEngineException.class,
                () -> run(List.of(declines), "gpu-like"));
        assertEquals("step engine 'gpu-like' was requested (Distiller.Builder.engine(\"gpu-like\")) but declined: no device here;"
                + " available: dl4j, auto (request one of them; auto takes the first engine that offers, else dl4j)", no.getMessage());
        assertEquals(List.of("no device here"), no.reasons());
        assertEquals(List.of("dl4j", "auto"), no.available());
        assertEquals("gpu-like", no.requested());
        assertTrue(no instanceof IllegalStateException);
        assertEquals(1, declines.offers);
        StepEngines.UnknownEngineException unknown = assertThrows(StepEngines.UnknownEngineException.class,
                () -> run(List.of(declines), "tpu"));
        assertEquals("unknown step engine 'tpu' (from Distiller.Builder.engine(\"tpu\")); known engines: dl4j, auto, gpu-like",
                unknown.getMessage());
        assertEquals(List.of("dl4j", "auto", "gpu-like"), unknown.known());
        assertTrue(unknown instanceof IllegalArgumentException);
        assertEquals(1, declines.offers, "an unknown name asks no provider");
    }

    /**
     * Before its runs, an application asks the engine named by the setting whether it can run anything on the backend: one
     * that cannot (a GPU engine on the cpu backend) fails then, with its reason, before any data is read; one that may (or
     * that only {@code offer} can tell, the default) passes, as do dl4j, auto and every other provider's refusal.
     */
    @Test
    void anEngineThatCanRunNothingOnTheBackendFailsBeforeTheRuns() {
        CpuBackend cpu = new CpuBackend();
        StepEngineProvider gpuOnly = checkedOnly("gpu-like", be -> "the compute backend is '" + be.name() + "', not a gpu");
        StepEngineProvider throwing = checkedOnly("odd", be -> {
            throw new IllegalStateException("cannot tell");
        });
        Provider plain = new Provider("plain", "never offers", true);
        List<StepEngineProvider> providers = List.of(gpuOnly, throwing, plain);
        StepEngines.UnavailableEngineException e = assertThrows(StepEngines.UnavailableEngineException.class,
                () -> StepEngines.checkRequested(providers, cpu, "GPU-like"));
        assertEquals("step engine 'GPU-like' was requested (Distiller.Builder.engine(\"GPU-like\")) but declined: the compute"
                + " backend is 'cpu', not a gpu; available: dl4j, auto (request one of them; auto takes the first engine that"
                + " offers, else dl4j)", e.getMessage());
        assertEquals(List.of("the compute backend is 'cpu', not a gpu"), e.reasons());
        for (String fine : List.of("plain", "odd", "dl4j", "auto", "AUTO")) {
            StepEngines.checkRequested(providers, cpu, fine); // the default (null), a provider that throws, the built-in names
        }
        assertEquals(0, plain.offers, "the check asks for no offer");
        assertThrows(StepEngines.UnknownEngineException.class, () -> StepEngines.checkRequested(providers, cpu, "tpu"));
    }

    /** A provider that answers {@code unavailableOn} with {@code why} and fails the test if asked for an offer. */
    private static StepEngineProvider checkedOnly(String name, java.util.function.Function<org.distill4j.backend.ComputeBackend, String> why) {
        return provider(name, setup -> {
            throw new AssertionError("the check asks for no offer");
        }, why);
    }

    /** A provider named {@code name} whose offers and answers to {@code unavailableOn} are the functions'. */
    private static StepEngineProvider provider(String name, java.util.function.Function<StepEngineProvider.Setup, StepEngineProvider.Offer> offer,
                                               java.util.function.Function<org.distill4j.backend.ComputeBackend, String> unavailable) {
        return new StepEngineProvider() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Offer offer(Setup setup) {
                return offer.apply(setup);
            }

            @Override
            public String unavailableOn(org.distill4j.backend.ComputeBackend backend) {
                return unavailable.apply(backend);
            }
        };
    }

    /** From -Ddistill.engine or DISTILL_ENGINE, the exceptions name that setting, as given (the property wins, as for the name). */
    @Test
    void theRequestsOriginIsTheSettingThatNamedIt() {
        java.util.Map<String, String> props = java.util.Map.of(StepEngines.PROPERTY, " cuda-mlp ");
        java.util.Map<String, String> env = java.util.Map.of(StepEngines.ENV, "TPU");
        assertEquals("-Ddistill.engine=cuda-mlp", StepEngines.requestOrigin(props::get, env::get));
        assertEquals("DISTILL_ENGINE=TPU", StepEngines.requestOrigin(k -> null, env::get));
        assertEquals("DISTILL_ENGINE=TPU", StepEngines.requestOrigin(java.util.Map.of(StepEngines.PROPERTY, " ")::get, env::get));
        assertEquals(null, StepEngines.requestOrigin(k -> null, k -> null));

        String before = System.getProperty(StepEngines.PROPERTY);
        System.setProperty(StepEngines.PROPERTY, "TPU");
        try {
            StepEngines.UnknownEngineException e = assertThrows(StepEngines.UnknownEngineException.class, () -> run(List.of(), null));
            assertEquals("unknown step engine 'TPU' (from -Ddistill.engine=TPU); known engines: dl4j, auto", e.getMessage());
            assertEquals("-Ddistill.engine=TPU", e.origin());
            e = assertThrows(StepEngines.UnknownEngineException.class, StepEngines::checkRequested);
            assertEquals("-Ddistill.engine=TPU", e.origin());
            assertTrue(e.known().contains("dl4j") && e.known().contains("auto"), e.known().toString());
            System.setProperty(StepEngines.PROPERTY, "DL4J");
            StepEngines.checkRequested(); // dl4j and auto are always known
        } finally {
            if (before == null) {
                System.clearProperty(StepEngines.PROPERTY);
            } else {
                System.setProperty(StepEngines.PROPERTY, before);
            }
        }
    }

    @Test
    void aProviderThatThrowsIsADeclineNotAFailedRun() {
        StepEngineProvider broken = provider("broken", setup -> {
            throw new IllegalStateException("driver exploded");
        }, be -> null);
        DistillResult r = run(List.of(broken), null);
        assertEquals("dl4j (broken: failed: java.lang.IllegalStateException: driver exploded)", r.engine());
        assertThrows(NullPointerException.class, () -> StepEngineProvider.Offer.decline(null));
        assertThrows(IllegalArgumentException.class, () -> new StepEngineProvider.Offer(null, null));
    }
    /**
     * An engine's step of a sum-reduced loss is already a sum over its rows: the epoch's loss and terms are the DL4J path's
     * (a mean-reduced one is scaled by its rows; the test above), and listeners see each batch's time since the epoch began.
     */
    @Test
    void aSumReducedLossThroughAnEngineGivesTheDl4jPathsNumbersAndBatchTimes() {
        DistillResult[] r = new DistillResult[2];
        List<Long> elapsed = new ArrayList<>();
        long[] wall = new long[1];
        for (int i = 0; i < 2; i++) {
            Provider offers = new Provider("copy", null, true);
            current = Nets.logitsMlp(D, 16, K, new Adam(5e-3), 11, 0);
            Distiller.Builder b = Distiller.builder().teacher(Dl4jTeacher.of(TEACHER)).student(Dl4jStudent.of(current))
                    .loss(new SoftTargetKd(3, 0.3, org.distill4j.loss.Reduction.SUM)).trainData(TRAIN).epochs(2).batchSize(64).seed(5)
                    .backend(new CpuBackend()).stepEngines(i == 0 ? List.of() : List.of(offers));
            if (i == 1) {
                b.listener(new TrainingListener() {
                    @Override
                    public void batchFinished(int epoch, int batch, int batches, long samples, long elapsedNanos, double loss) {
                        elapsed.add(elapsedNanos);
                    }
                });
            }
            long t0 = System.nanoTime();
            r[i] = b.build().run();
            wall[0] = System.nanoTime() - t0;
        }
        assertEquals("copy-engine on the CPU", r[1].engine());
        for (int e = 0; e < 2; e++) {
            assertEquals(r[0].epochs().get(e).loss(), r[1].epochs().get(e).loss(), 0.0, "epoch " + e + " loss");
            assertEquals(r[0].epochs().get(e).terms(), r[1].epochs().get(e).terms());
        }
        assertEquals(8, elapsed.size());
        for (long t : elapsed) {
            assertTrue(t >= 0 && t <= wall[0], "a batch's time since its epoch began, " + t + " ns, within the run's " + wall[0]);
        }
    }
}
