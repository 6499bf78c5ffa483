package org.distill4j.cuda.nn;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.ComputeBackend;
import org.distill4j.cuda.GpuTest;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.BadRowException;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.train.Distiller;
import org.distill4j.train.StepEngine;
import org.distill4j.train.StepEngineProvider;
import org.distill4j.train.TrainingListener;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.learning.config.Adam;

import java.util.List;
import java.util.Random;
import java.util.concurrent.CancellationException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@code cuda-mlp} engine driven by the {@link Distiller}: what the student holds when a run stops early, and how a
 * bad row is reported.
 */
class CudaMlpDistillerGpuTest extends GpuTest {
    private static final int N = 128;
    private static final int BATCH = 16;
    private static final int BATCHES = N / BATCH;

    static Dataset blobs(long seed, int nanSample) {
        Random rng = new Random(seed);
        float[] x = new float[N * Dl4jMlpTest.IN];
        int[] y = new int[N];
        for (int i = 0; i < N; i++) {
            y[i] = rng.nextInt(5);
            for (int j = 0; j < Dl4jMlpTest.IN; j++) {
                x[i * Dl4jMlpTest.IN + j] = (float) rng.nextGaussian() + y[i];
            }
        }
        if (nanSample >= 0) {
            // finite features whose first layer overflows to +-inf, inf - inf after: NaN logits on the device (a NaN or
            // infinite feature is refused before the step, see aNonFiniteFeatureIsRefusedBeforeTheStep)
            for (int j = 0; j < Dl4jMlpTest.IN; j++) {
                x[nanSample * Dl4jMlpTest.IN + j] = Float.MAX_VALUE;
            }
        }
        return new Dataset("blobs", x, Dl4jMlpTest.IN, y, 5);
    }

    /** cuda-mlp's provider; the state of its engine (step count, weights) is read just before the run closes it. */
    static final class Watched implements StepEngineProvider {
        long stepsAtClose = -1;
        MlpWeights weightsAtClose;
        long stepsAtStart = -1;
        MlpWeights weightsAtStart;
        /** The student after each write-back: iteration count, parameters, updater state. */
        final List<State> syncs = new java.util.ArrayList<>();

        @Override
        public String name() {
            return CudaMlpEngineProvider.NAME;
        }

        @Override
        public Offer offer(Setup setup) {
            Offer o = new CudaMlpEngineProvider().offer(setup);
            if (o.engine() == null) {
                return o;
            }
            CudaMlpEngine e = (CudaMlpEngine) o.engine();
            stepsAtStart = e.steps();
            weightsAtStart = e.studentWeights();
            MultiLayerNetwork net = ((Dl4jStudent) setup.student()).multiLayerNetwork();
            return Offer.of(new StepEngine() {
                @Override
                public String describe() {
                    return e.describe();
                }

                @Override
                public LossResult step(Batch batch, LogitLoss loss) {
                    return e.step(batch, loss);
                }

                @Override
                public Pending submit(Batch batch, LogitLoss loss) {
                    return e.submit(batch, loss);
                }

                @Override
                public void syncToStudent() {
                    e.syncToStudent();
                    syncs.add(State.of(net));
                }

                @Override
                public void endEpoch() {
                    e.endEpoch();
                }

                @Override
                public void close() {
                    stepsAtClose = e.steps();
                    weightsAtClose = e.studentWeights();
                    e.close();
                }
            });
        }
    }

    /** A student's state as a checkpoint holds it: iteration count, parameters and Adam's moments. */
    record State(int iteration, float[] params, float[] updater) {
        static State of(MultiLayerNetwork n) {
            return new State(n.getIterationCount(), n.params().toFloatVector(), n.getUpdater().getStateViewArray().toFloatVector());
        }

        void assertSame(State expected, String what) {
            assertEquals(expected.iteration, iteration, what + ": iteration count");
            assertArrayEquals(expected.params, params, what + ": parameters, bit for bit");
            assertArrayEquals(expected.updater, updater, what + ": Adam's moments, bit for bit");
        }
    }

    private static Distiller.Builder run(MultiLayerNetwork student, Dataset data, Watched engine) {
        return Distiller.builder().teacher(Dl4jTeacher.of(Dl4jMlpTest.net(new Adam(1e-3), 5, 0, Activation.RELU)))
                .student(Dl4jStudent.of(student)).loss(new SoftTargetKd(2, 0.5)).trainData(data).epochs(3).batchSize(BATCH)
                .seed(2).backend((ComputeBackend) backend).engine(CudaMlpEngineProvider.NAME).stepEngines(List.of(engine));
    }

    private static void assertStudentHas(MultiLayerNetwork student, Watched engine, long steps) {
        assertEquals(steps, engine.stepsAtClose, "the engine's steps when it closed");
        assertEquals(steps, student.getIterationCount(), "the student's iteration count: the engine's");
        MlpWeights w = Dl4jMlp.importFrom(student).weights();
        for (int l = 0; l < w.w().length; l++) {
            assertArrayEquals(engine.weightsAtClose.w()[l], w.w()[l], "W" + l + ": the engine's last, bit for bit");
            assertArrayEquals(engine.weightsAtClose.b()[l], w.b()[l], "b" + l + ": the engine's last, bit for bit");
        }
    }

    /**
     * A run cancelled mid-epoch (from a listener, as an application's stop button would) leaves the student with the
     * engine's last step: its iteration count and weights, not those written back at the end of the first epoch. The
     * listener stops it after batch 2 of epoch 2 is accounted, with batch 3 submitted: 8 + 3 steps.
     */
    @Test
    void aCancelledRunLeavesTheEnginesLastStepInTheStudent() {
        MultiLayerNetwork student = Dl4jMlpTest.net(new Adam(1e-2), 3, 0, Activation.RELU);
        Watched engine = new Watched();
        TrainingListener stop = new TrainingListener() {
            @Override
            public void batchFinished(int epoch, int batch, int batches, long samplesDone, long nanos, double loss) {
                if (epoch == 1 && batch == 1) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        try {
            assertThrows(CancellationException.class, () -> run(student, blobs(4, -1), engine).listener(stop).build().run());
        } finally {
            Thread.interrupted();
        }
        assertStudentHas(student, engine, BATCHES + 3);
    }

    /**
     * A step whose loss flags a row fails as the DL4J path does: an argument error naming the epoch, the batch and the
     * training sample the row holds; the student then holds the last good step's state.
     */
    @Test
    void aFlaggedRowNamesItsEpochBatchAndSampleAndTheStudentKeepsTheLastGoodStep() {
        int nanSample = 77;
        MultiLayerNetwork student = Dl4jMlpTest.net(new Adam(1e-2), 3, 0, Activation.RELU);
        Watched engine = new Watched();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> run(student, blobs(4, nanSample), engine).build().run());
        assertTrue(e.getMessage().matches("epoch 1, batch [1-8] of 8: cuda-mlp step [1-8]: row \\d+ has a student logit that is not "
                + "finite.*; row \\d+ of this batch is sample 77 of blobs"), e.getMessage());
        BadRowException bad = assertInstanceOf(BadRowException.class, e.getCause());
        int batch = Integer.parseInt(e.getMessage().substring("epoch 1, batch ".length(), "epoch 1, batch ".length() + 1));
        assertTrue(e.getMessage().contains("step " + batch + ": row " + bad.row() + " "), e.getMessage());
        assertStudentHas(student, engine, batch - 1);
    }

    /**
     * A NaN feature would vanish in the device's first ReLU and the run would train on; the engine refuses it (and an
     * infinite one) before the step, named as the DL4J path names a bad row, and the student keeps the steps before it.
     */
    @Test
    void aNonFiniteFeatureIsRefusedBeforeTheStep() {
        for (float value : new float[]{Float.NaN, Float.NEGATIVE_INFINITY}) {
            Dataset clean = blobs(4, -1);
            float[] x = clean.features().clone();
            x[77 * Dl4jMlpTest.IN + 3] = value;
            Dataset data = new Dataset("blobs", x, Dl4jMlpTest.IN, clean.labels(), 5);
            MultiLayerNetwork student = Dl4jMlpTest.net(new Adam(1e-2), 3, 0, Activation.RELU);
            Watched engine = new Watched();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(student, data, engine).build().run());
            assertTrue(e.getMessage().matches("epoch 1, batch [1-8] of 8: cuda-mlp step [1-8]: feature 3 of row \\d+ is " + value
                    + ", expected a finite value; row \\d+ of this batch is sample 77 of blobs"), e.getMessage());
            BadRowException bad = assertInstanceOf(BadRowException.class, e.getCause());
            int batch = Integer.parseInt(e.getMessage().substring("epoch 1, batch ".length(), "epoch 1, batch ".length() + 1));
            assertTrue(e.getMessage().contains("step " + batch + ": feature 3 of row " + bad.row() + " "), e.getMessage());
            assertStudentHas(student, engine, batch - 1);
        }
    }

    /** A crash, from a listener, after the checkpoint at step 10 (epoch 2, batch 2) was saved. */
    static final class Crash extends RuntimeException {
        Crash() {
            super("simulated crash");
        }
    }

    private static TrainingListener crashAfterTheSecondCheckpoint() {
        return new TrainingListener() {
            @Override
            public void batchFinished(int epoch, int batch, int batches, long samplesDone, long nanos, double loss) {
                if (epoch == 1 && batch == 3) {
                    throw new Crash();
                }
            }
        };
    }

    /** The student's state when the resumed run starts its first epoch: what it restored (the engine has not written back yet). */
    private static TrainingListener restoredInto(MultiLayerNetwork student, State[] restored) {
        return new TrainingListener() {
            @Override
            public void epochStarted(int epoch, int epochs, int batches) {
                if (restored[0] == null) {
                    restored[0] = State.of(student);
                }
            }
        };
    }

    private static final int CHECKPOINT_STEP = 10; // everySteps(5): after steps 5 and 10, then the crash in step 12

    /**
     * A run on cuda-mlp that saved checkpoints and crashed, resumed on the DL4J path: the student restored holds the state
     * cuda-mlp wrote back for the checkpoint at step 10 (iteration count, parameters and Adam's moments, bit for bit), and
     * the resumed run finishes the three epochs.
     */
    @Test
    void aCudaMlpCheckpointResumesOnTheDl4jPath(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
        org.distill4j.train.Checkpoints c = org.distill4j.train.Checkpoints.in(tmp).everySteps(5);
        Watched crashed = new Watched();
        assertThrows(Crash.class, () -> run(Dl4jMlpTest.net(new Adam(1e-2), 3, 0, Activation.RELU), blobs(4, -1), crashed)
                .checkpoints(c).listener(crashAfterTheSecondCheckpoint()).build().run());
        State saved = crashed.syncs.stream().filter(st -> st.iteration() == CHECKPOINT_STEP).findFirst().orElseThrow();

        MultiLayerNetwork student = Dl4jMlpTest.net(new Adam(1e-2), 3, 0, Activation.RELU);
        State[] restored = new State[1];
        org.distill4j.train.DistillResult r = run(student, blobs(4, -1), new Watched()).engine("dl4j").checkpoints(c)
                .listener(restoredInto(student, restored)).build().run();
        restored[0].assertSame(saved, "restored on the DL4J path");
        assertEquals(3, r.epochs().size());
        assertEquals(3 * BATCHES, student.getIterationCount(), "the resumed run finished every step");
        assertTrue(r.engine().startsWith("dl4j"), r.engine());
    }

    /**
     * A DL4J-path run that saved checkpoints and crashed, resumed on cuda-mlp: the engine starts from the state saved at
     * step 10 (its step count and weights are the student's at the checkpoint, bit for bit), and the run finishes.
     */
    @Test
    void aDl4jCheckpointResumesOnCudaMlp(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
        org.distill4j.train.Checkpoints c = org.distill4j.train.Checkpoints.in(tmp).everySteps(5);
        MultiLayerNetwork first = Dl4jMlpTest.net(new Adam(1e-2), 3, 0, Activation.RELU);
        State[] saved = new State[1];
        TrainingListener atCheckpoint = new TrainingListener() {
            @Override
            public void batchFinished(int epoch, int batch, int batches, long samplesDone, long nanos, double loss) {
                if (epoch * batches + batch + 1 == CHECKPOINT_STEP) {
                    saved[0] = State.of(first); // on the DL4J path the step is done before the checkpoint is saved
                }
            }
        };
        assertThrows(Crash.class, () -> run(first, blobs(4, -1), new Watched()).engine("dl4j").checkpoints(c)
                .listener(atCheckpoint).listener(crashAfterTheSecondCheckpoint()).build().run());
        assertEquals(CHECKPOINT_STEP, saved[0].iteration());

        MultiLayerNetwork student = Dl4jMlpTest.net(new Adam(1e-2), 3, 0, Activation.RELU);
        State[] restored = new State[1];
        Watched resumed = new Watched();
        org.distill4j.train.DistillResult r = run(student, blobs(4, -1), resumed).checkpoints(c).listener(restoredInto(student, restored))
                .build().run();
        restored[0].assertSame(saved[0], "restored for cuda-mlp");
        assertEquals(CHECKPOINT_STEP, resumed.stepsAtStart, "the engine's step count at its start");
        assertEquals(3, r.epochs().size());
        assertEquals(3 * BATCHES, resumed.stepsAtClose, "the resumed run finished every step on the engine");
        assertEquals(3 * BATCHES, student.getIterationCount());
        assertTrue(r.engine().startsWith("cuda-mlp"), r.engine());
        MlpWeights start = resumed.weightsAtStart;
        MultiLayerNetwork savedNet = Dl4jMlpTest.net(new Adam(1e-2), 3, 0, Activation.RELU);
        savedNet.setParams(org.nd4j.linalg.factory.Nd4j.create(saved[0].params()).reshape(1, saved[0].params().length));
        MlpWeights want = Dl4jMlp.importFrom(savedNet).weights();
        for (int l = 0; l < want.w().length; l++) {
            assertArrayEquals(want.w()[l], start.w()[l], "W" + l + " the engine started from: the checkpoint's, bit for bit");
            assertArrayEquals(want.b()[l], start.b()[l], "b" + l + " the engine started from: the checkpoint's, bit for bit");
        }
    }
}
