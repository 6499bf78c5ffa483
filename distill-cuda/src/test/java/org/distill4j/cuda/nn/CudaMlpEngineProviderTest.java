package org.distill4j.cuda.nn;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.CpuBackend;
import org.distill4j.cuda.CudaBackend;
import org.distill4j.data.Dataset;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.GeneralizedJsd;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.train.DistillResult;
import org.distill4j.train.Distiller;
import org.distill4j.train.StepEngineProvider;
import org.distill4j.train.StepEngineProvider.Setup;
import org.distill4j.train.StepEngines;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.learning.config.Adam;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * When the GPU MLP engine is offered, on the CPU: the provider is found by the Distiller, and each setup
 * it cannot run is declined with the reason (checked in the order a user would fix them). A
 * {@code CudaBackend} over no device stands for the cuda backend; nothing here touches a GPU.
 */
class CudaMlpEngineProviderTest {
    private static final CudaBackend CUDA = new CudaBackend(null);

    private static Setup setup(Teacher teacher, MultiLayerNetwork student, LogitLoss loss, org.distill4j.backend.ComputeBackend be,
                               List<Distiller.FeatureTerm> features) {
        return new Setup(teacher, Dl4jStudent.of(student), loss, be, 64, features, 1);
    }

    private static MultiLayerNetwork mlp(Activation... hidden) {
        return Dl4jMlpTest.net(new Adam(1e-3), 3, 0, hidden);
    }

    /**
     * A teacher only runs forward, so what only its training used does not keep the engine off: a teacher trained with
     * Nesterovs and l2 is taken with kd, where the same network as the student is declined for its updater.
     */
    @Test
    void aTeacherTrainedWithAnUpdaterOrRegularizationTheEngineCannotApplyIsTaken() {
        MultiLayerNetwork student = mlp(Activation.RELU);
        MultiLayerNetwork nesterovs = new MultiLayerNetwork(new org.deeplearning4j.nn.conf.NeuralNetConfiguration.Builder().seed(2)
                .updater(new org.nd4j.linalg.learning.config.Nesterovs(0.1, 0.9)).l2(1e-4).list()
                .layer(new org.deeplearning4j.nn.conf.layers.DenseLayer.Builder().nIn(13).nOut(8).activation(Activation.TANH).build())
                .layer(new org.deeplearning4j.nn.conf.layers.DenseLayer.Builder().nIn(8).nOut(5).activation(Activation.IDENTITY).build())
                .build());
        nesterovs.init();
        SoftTargetKd kd = new SoftTargetKd(4, 0.1);
        assertNull(CudaMlpEngineProvider.unsupported(setup(Dl4jTeacher.of(nesterovs), student, kd, CUDA, List.of())),
                "a Nesterovs + l2 teacher with kd on cuda");
        String s = CudaMlpEngineProvider.unsupported(setup(Dl4jTeacher.of(student), nesterovs, kd, CUDA, List.of()));
        assertTrue(s != null && s.startsWith("student: layer 0 (DenseLayer) has regularization"), s);
    }

    @Test
    void eachUnsupportedSetupIsDeclinedWithItsReason() {
        MultiLayerNetwork student = mlp(Activation.RELU);
        Dl4jTeacher teacher = Dl4jTeacher.of(mlp(Activation.RELU, Activation.TANH));
        SoftTargetKd kd = new SoftTargetKd(4, 0.1);
        assertEquals("the compute backend is 'cpu', not cuda",
                CudaMlpEngineProvider.unsupported(setup(teacher, student, kd, new CpuBackend(), List.of())));
        // the same reason before any run (StepEngines.checkRequested(backend)); the cuda backend may take some runs
        assertEquals("the compute backend is 'cpu', not cuda", new CudaMlpEngineProvider().unavailableOn(new CpuBackend()));
        assertNull(new CudaMlpEngineProvider().unavailableOn(CUDA));
        assertEquals("loss 'gjsd' has no GPU step (kd and ce do)",
                CudaMlpEngineProvider.unsupported(setup(teacher, student, new GeneralizedJsd(0.5, 1.0), CUDA, List.of())));
        String elu = CudaMlpEngineProvider.unsupported(setup(teacher, mlp(Activation.ELU), kd, CUDA, List.of()));
        assertTrue(elu.startsWith("student: layer 0 (DenseLayer) has activation elu"), elu);
        String teacherElu = CudaMlpEngineProvider.unsupported(setup(Dl4jTeacher.of(mlp(Activation.ELU)), student, kd, CUDA, List.of()));
        assertTrue(teacherElu.startsWith("teacher: layer 0"), teacherElu);
        assertEquals("loss 'kd' needs a teacher", CudaMlpEngineProvider.unsupported(setup(null, student, kd, CUDA, List.of())));
        assertNull(CudaMlpEngineProvider.unsupported(setup(teacher, student, kd, CUDA, List.of())), "an MLP pair with kd on cuda");
        assertNull(CudaMlpEngineProvider.unsupported(setup(null, student, new CrossEntropy(), CUDA, List.of())), "a student alone on ce");
        StepEngineProvider.Offer o = new CudaMlpEngineProvider().offer(setup(teacher, student, kd, CUDA, List.of()));
        assertNull(o.engine());
        // a setup the engine runs, on a backend without a device: the engine cannot start, and says so
        assertTrue(o.reason().startsWith("the engine could not start on the cuda backend (no device context)"), o.reason());
    }

    /**
     * Cross-entropy does not use the teacher: a run that has one the engine could not run (another kind of
     * model, or a DL4J network it refuses) still gets the engine, whose ce step never reads a teacher; kd with
     * the same teachers is still declined with the teacher's reason.
     */
    @Test
    void ceIsNotDeclinedForATeacherItDoesNotUse() {
        MultiLayerNetwork student = mlp(Activation.RELU);
        Teacher notDl4j = new Teacher() {
            @Override
            public int classes() {
                return 5;
            }

            @Override
            public org.distill4j.loss.TeacherValues values() {
                return org.distill4j.loss.TeacherValues.LOGITS;
            }

            @Override
            public float[] outputs(org.distill4j.data.Batch batch) {
                throw new AssertionError("a ce run asked the teacher for outputs");
            }

            @Override
            public String describe() {
                return "a stored teacher";
            }
        };
        Dl4jTeacher elu = Dl4jTeacher.of(mlp(Activation.ELU));
        CrossEntropy ce = new CrossEntropy();
        assertNull(CudaMlpEngineProvider.unsupported(setup(notDl4j, student, ce, CUDA, List.of())), "ce with a teacher that is no DL4J MLP");
        assertNull(CudaMlpEngineProvider.unsupported(setup(elu, student, ce, CUDA, List.of())), "ce with a DL4J teacher the engine cannot run");
        String kd = CudaMlpEngineProvider.unsupported(setup(notDl4j, student, new SoftTargetKd(4, 0.1), CUDA, List.of()));
        assertTrue(kd != null && kd.startsWith("the teacher (a stored teacher) is not a DL4J MultiLayerNetwork"), kd);
        String kdElu = CudaMlpEngineProvider.unsupported(setup(elu, student, new SoftTargetKd(4, 0.1), CUDA, List.of()));
        assertTrue(kdElu != null && kdElu.startsWith("teacher: layer 0"), kdElu);
        // the offer goes as far as starting the engine (which needs a device here), not declining for the teacher
        StepEngineProvider.Offer o = new CudaMlpEngineProvider().offer(setup(notDl4j, student, ce, CUDA, List.of()));
        assertTrue(o.reason().startsWith("the engine could not start on the cuda backend (no device context)"), o.reason());
    }

    /** A student or teacher layer without a bias is declined with the reason (it threw a NullPointerException out of the offer). */
    @Test
    void aLayerWithoutBiasIsDeclinedNotACrash() {
        MultiLayerNetwork noBias = new MultiLayerNetwork(new org.deeplearning4j.nn.conf.NeuralNetConfiguration.Builder()
                .updater(new Adam(1e-3)).list()
                .layer(new org.deeplearning4j.nn.conf.layers.DenseLayer.Builder().nIn(Dl4jMlpTest.IN).nOut(6).activation(Activation.RELU)
                        .hasBias(false).build())
                .layer(new org.deeplearning4j.nn.conf.layers.DenseLayer.Builder().nIn(6).nOut(5).activation(Activation.IDENTITY).build())
                .build());
        noBias.init();
        SoftTargetKd kd = new SoftTargetKd(4, 0.1);
        String s = CudaMlpEngineProvider.unsupported(setup(Dl4jTeacher.of(mlp(Activation.RELU)), noBias, kd, CUDA, List.of()));
        assertTrue(s != null && s.startsWith("student: layer 0 (DenseLayer) has no bias"), s);
        String t = CudaMlpEngineProvider.unsupported(setup(Dl4jTeacher.of(noBias), mlp(Activation.RELU), kd, CUDA, List.of()));
        assertTrue(t != null && t.startsWith("teacher: layer 0 (DenseLayer) has no bias"), t);
    }

    /**
     * An Adam student that has taken steps but comes without its moments would go on from zeroed moments with the
     * bias correction of a later step, which no DL4J run does: the engine refuses that start (and moments of
     * another shape) before it touches the device.
     */
    @Test
    void anAdamStartWithoutItsMomentsIsRefusedBeforeTheDevice() {
        Dl4jMlp.Imported s = Dl4jMlp.importFrom(mlp(Activation.RELU));
        CudaMlpEngine.Options options = new CudaMlpEngine.Options(MlpProgram.Precision.F32, true, false);
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new CudaMlpEngine(null, s.spec(), s.weights(), new MlpOptimizerState(3, 1, null, null), null, null, 8, options, 1,
                        (w, st) -> { }));
        assertTrue(e.getMessage().contains("Adam, 3 steps taken, but the state holds no moments"), e.getMessage());
        MlpWeights wrong = new MlpWeights(new float[][] {new float[3]}, new float[][] {new float[1]});
        e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new CudaMlpEngine(null, s.spec(), s.weights(), new MlpOptimizerState(3, 1, wrong, wrong), null, null, 8, options, 1,
                        (w, st) -> { }));
        assertTrue(e.getMessage().contains("weights for 1 layers, the spec has 2"), e.getMessage());
    }

    /**
     * A teacher's spec without its weights (or weights without a spec) and a missing write-back target are
     * refused up front with what is missing, before the device: they threw a NullPointerException, or were
     * ignored, or failed only at the first write-back, after an epoch of training.
     */
    @Test
    void aTeacherWithoutWeightsOrNoWriteBackIsRefusedBeforeTheDevice() {
        Dl4jMlp.Imported s = Dl4jMlp.importFrom(mlp(Activation.RELU));
        Dl4jMlp.Imported t = Dl4jMlp.importFrom(mlp(Activation.TANH));
        CudaMlpEngine.Options options = new CudaMlpEngine.Options(MlpProgram.Precision.F32, true, false);
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new CudaMlpEngine(null, s.spec(), s.weights(), t.spec(), null, 8, options, 1, (w, st) -> { }));
        assertEquals("a teacher spec comes with its weights and weights with their spec; got a spec and no weights", e.getMessage());
        e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new CudaMlpEngine(null, s.spec(), s.weights(), null, t.weights(), 8, options, 1, (w, st) -> { }));
        assertEquals("a teacher spec comes with its weights and weights with their spec; got weights and no spec", e.getMessage());
        NullPointerException n = org.junit.jupiter.api.Assertions.assertThrows(NullPointerException.class,
                () -> new CudaMlpEngine(null, s.spec(), s.weights(), null, null, 8, options, 1, null));
        assertEquals("sink (where syncToStudent writes the weights)", n.getMessage());
    }

    /**
     * Options without a precision were accepted (with or without fused epilogues) and failed later, in the engine, after
     * it had taken the device, with a bare NullPointerException: they are refused where they are made, naming the field.
     */
    @Test
    void engineOptionsWithoutAPrecisionAreRefusedWhereTheyAreMade() {
        for (boolean fused : new boolean[] {false, true}) {
            NullPointerException e = org.junit.jupiter.api.Assertions.assertThrows(NullPointerException.class,
                    () -> new CudaMlpEngine.Options(null, fused, true));
            assertEquals("precision", e.getMessage());
            e = org.junit.jupiter.api.Assertions.assertThrows(NullPointerException.class, () -> new CudaMlpEngine.Options(null, fused));
            assertEquals("precision", e.getMessage());
        }
    }

    @Test
    void engineOptionsComeFromTheirPropertiesAndBadValuesAreNamed() {
        String[] keys = {"distill.cuda.mlp.precision", "distill.cuda.mlp.epilogues", "distill.cuda.mlp.graphs"};
        try {
            assertEquals(new CudaMlpEngine.Options(MlpProgram.Precision.F32, true, true), CudaMlpEngine.Options.fromSystemProperties(),
                    "defaults: f32, fused epilogues, steps replayed from CUDA graphs");
            System.setProperty(keys[0], "bf16");
            System.setProperty(keys[2], "false");
            assertEquals(new CudaMlpEngine.Options(MlpProgram.Precision.BF16, false, false), CudaMlpEngine.Options.fromSystemProperties(),
                    "bf16 fuses in its own kernels; graphs off");
            System.setProperty(keys[2], "yes");
            String msg = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    CudaMlpEngine.Options::fromSystemProperties).getMessage();
            assertEquals("distill.cuda.mlp.graphs is 'yes'; expected true or false", msg);
        } finally {
            for (String k : keys) {
                System.clearProperty(k);
            }
        }
    }

    /**
     * A malformed option fails the run naming the property, its value and what it may be, also under auto and on the CPU
     * backend, where the engine declines every run: it used to be a decline, logged at INFO, and the run went on on DL4J.
     */
    @Test
    void aMalformedOptionFailsTheRunEvenWhereTheEngineCouldNotRun() {
        Random rng = new Random(4);
        int n = 32;
        float[] x = new float[n * Dl4jMlpTest.IN];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = rng.nextInt(5);
            x[i * Dl4jMlpTest.IN] = (float) rng.nextGaussian() + y[i];
        }
        Dataset data = new Dataset("blobs", x, Dl4jMlpTest.IN, y, 5);
        try {
            System.setProperty("distill.cuda.mlp.precision", "BF61");
            org.distill4j.train.StepEngineProvider.InvalidSettingException e = org.junit.jupiter.api.Assertions.assertThrows(
                    org.distill4j.train.StepEngineProvider.InvalidSettingException.class,
                    () -> Distiller.builder().teacher(Dl4jTeacher.of(mlp(Activation.RELU))).student(Dl4jStudent.of(mlp(Activation.RELU)))
                            .loss(new SoftTargetKd(2, 0.5)).trainData(data).epochs(1).batchSize(32).seed(2).backend(new CpuBackend())
                            .build().run());
            assertEquals("distill.cuda.mlp.precision is 'BF61'; expected f32 or bf16", e.getMessage());
        } finally {
            System.clearProperty("distill.cuda.mlp.precision");
        }
    }

    /** What a replayed graph reads each step is what the kernel-by-kernel launches pass: the seed, then alphaT. */
    @Test
    void stepScalarsHoldTheSeedAndAdamsStepSize() {
        MlpSpec.Optimizer adam = MlpSpec.Optimizer.adam(0.01);
        int[] words = DeviceMlpRunner.stepScalars(41, adam, 6);
        assertEquals(DeviceMlpRunner.STEP_SCALARS_BYTES, 4 * words.length);
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * words.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int w : words) {
            b.putInt(w);
        }
        assertEquals(MlpDropoutMask.stepSeed(41, 6), b.getLong(0), "the seed as the kernel reads an unsigned long long at +0");
        assertEquals(DeviceMlpRunner.adamAlphaT(adam, 7), b.getFloat(8), 0f, "step 6 is Adam's 7th");
        assertEquals(0f, Float.intBitsToFloat(DeviceMlpRunner.stepScalars(41, MlpSpec.Optimizer.sgd(0.1), 6)[2]), 0f,
                "SGD has no step size to vary");
        long big = -3L; // a seed whose high word matters
        assertEquals(MlpDropoutMask.stepSeed(big, 0), ((long) DeviceMlpRunner.stepScalars(big, adam, 0)[1] << 32)
                | (DeviceMlpRunner.stepScalars(big, adam, 0)[0] & 0xffffffffL));
    }

    @Test
    void theDistillerFindsTheProviderAndRecordsWhyTheCpuRunKeepsTheDl4jPath() {
        assertTrue(StepEngines.providers().stream().anyMatch(p -> p.name().equals(CudaMlpEngineProvider.NAME)),
                "registered under META-INF/services");
        Random rng = new Random(4);
        int n = 96;
        float[] x = new float[n * Dl4jMlpTest.IN];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = rng.nextInt(5);
            for (int j = 0; j < Dl4jMlpTest.IN; j++) {
                x[i * Dl4jMlpTest.IN + j] = (float) rng.nextGaussian() + y[i];
            }
        }
        Dataset data = new Dataset("blobs", x, Dl4jMlpTest.IN, y, 5);
        DistillResult r = Distiller.builder().teacher(Dl4jTeacher.of(mlp(Activation.RELU))).student(Dl4jStudent.of(mlp(Activation.RELU)))
                .loss(new SoftTargetKd(2, 0.5)).trainData(data).epochs(1).batchSize(32).seed(2).backend(new CpuBackend()).build().run();
        assertEquals("dl4j (cuda-mlp: the compute backend is 'cpu', not cuda)", r.engine());
    }
}
