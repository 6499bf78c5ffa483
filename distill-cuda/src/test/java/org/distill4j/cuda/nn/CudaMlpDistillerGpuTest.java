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
            x[nanSample * Dl4jMlpTest.IN + 3] = Float.POSITIVE_INFINITY; // +-inf in the first layer, inf - inf after (a NaN would vanish in the first ReLU)
        }
        return new Dataset("blobs", x, Dl4jMlpTest.IN, y, 5);
    }

    /** cuda-mlp's provider; the state of its engine (step count, weights) is read just before the run closes it. */
    static final class Watched implements StepEngineProvider {
        long stepsAtClose = -1;
        MlpWeights weightsAtClose;

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
}
