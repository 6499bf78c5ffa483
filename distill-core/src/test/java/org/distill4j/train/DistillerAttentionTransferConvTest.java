package org.distill4j.train;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.data.Feature;
import org.distill4j.loss.AttentionTransfer;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.TeacherValues;
import org.distill4j.loss.WeightedSum;
import org.distill4j.student.Dl4jStudent;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.testing.ConvNets;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.Sgd;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Attention transfer ({@code at}) end to end through the {@link Distiller} on real DL4J CNNs: a student CNN whose first
 * convolution is a feature output ({@link Dl4jStudent#withFeatureOutputs}) and a fixed teacher CNN's first convolution
 * ({@code "layer0"}), both {C, 7, 11} maps of 2 x 7 x 11 {@code convolutionalFlat} inputs. The logit loss is
 * {@code 0 * ce}: no gradient, a value of 0, so the run trains on {@code at} alone and each batch's loss is
 * {@code weight * at}.
 *
 * <p>Tolerance: the first batch's {@code at} against a float64 reference computed here from the two networks'
 * float32 activations, {@link Tolerances#assertValueClose} (relative {@link Tolerances#F32_VALUE_REL}); the loss reads the
 * same activations and accumulates in float64.
 */
class DistillerAttentionTransferConvTest {
    private static final int C = 2;
    private static final int H = 7;
    private static final int W = 11;
    private static final int CLASSES = 5;
    private static final int SAMPLES = 23;
    private static final int BATCH = 6;
    private static final int BATCHES = 4; // 6, 6, 6, 5
    private static final int EPOCHS = 6;
    private static final double BETA = 1000;
    private static final double AT_WEIGHT = 0.75;
    private static final int STUDENT_CONV = 5;
    private static final int TEACHER_CONV = 7;

    private static Dataset data() {
        Random rng = new Random(80);
        return new Dataset("cnn-data", ConvNets.images(rng, SAMPLES, C * H * W), C * H * W,
                Inputs.labels(rng, SAMPLES, CLASSES), CLASSES);
    }

    /** 2 x 7 x 11 -> conv 5 (7 x 11) -> pool (3 x 5) [-> conv 3 (3 x 5) when {@code secondConv}] -> dense 7 -> logits. */
    private static MultiLayerNetwork student(boolean secondConv) {
        return ConvNets.cnn(DataType.FLOAT, new Adam(1e-2), 81, C, H, W, STUDENT_CONV, secondConv ? 3 : 0, 7, CLASSES);
    }

    /** 2 x 7 x 11 -> conv 7 (7 x 11) -> pool (3 x 5) -> conv 6 -> dense 9 -> logits; never trained. */
    private static MultiLayerNetwork teacher() {
        return ConvNets.cnn(DataType.FLOAT, new Sgd(0.1), 82, C, H, W, TEACHER_CONV, 6, 9, CLASSES);
    }

    /** A teacher that records the batches its features are asked for. */
    private static final class Recording implements Teacher {
        final Dl4jTeacher inner;
        final List<Batch> featureBatches = new ArrayList<>();

        Recording(Dl4jTeacher inner) {
            this.inner = inner;
        }

        @Override
        public int classes() {
            return inner.classes();
        }

        @Override
        public TeacherValues values() {
            return inner.values();
        }

        @Override
        public float[] outputs(Batch batch) {
            return inner.outputs(batch);
        }

        @Override
        public Feature feature(Batch batch, String name) {
            featureBatches.add(batch);
            return inner.feature(batch, name);
        }

        @Override
        public String describe() {
            return inner.describe();
        }
    }

    private static Distiller.Builder run(Teacher teacher, Dl4jStudent student, String studentFeature, List<Double> batchLosses) {
        return Distiller.builder().teacher(teacher).student(student)
                .loss(WeightedSum.builder().add(0.0, new CrossEntropy()).build())
                .featureLoss(AT_WEIGHT, new AttentionTransfer(BETA), studentFeature, "layer0")
                .trainData(data()).epochs(EPOCHS).batchSize(BATCH).seed(3)
                .backend(new CpuBackend()).stepEngines(List.of())
                .listener(new TrainingListener() {
                    @Override
                    public void batchFinished(int epoch, int batch, int batches, long samples, long elapsedNanos, double loss) {
                        batchLosses.add(loss);
                    }
                });
    }

    /**
     * at in float64 from activations {@code [N, C, H, W]}: per sample, the attention map of each network is the channel
     * mean of squares, divided by its Euclidean norm over the H*W positions; the value is beta/2 times the mean over samples
     * of the mean over positions of the squared difference of the two maps.
     */
    private static double attentionTransfer(INDArray student, INDArray teacher, double beta) {
        long n = student.size(0);
        long h = student.size(2);
        long w = student.size(3);
        assertEquals(n, teacher.size(0));
        double total = 0;
        for (long r = 0; r < n; r++) {
            double[][] s = attentionMap(student, r);
            double[][] t = attentionMap(teacher, r);
            double squares = 0;
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    squares += (s[y][x] - t[y][x]) * (s[y][x] - t[y][x]);
                }
            }
            total += squares / (h * w);
        }
        return beta / 2 * total / n;
    }

    /** Sample r's map: mean over channels of the squared activation, L2-normalized over the positions. */
    private static double[][] attentionMap(INDArray a, long r) {
        int channels = (int) a.size(1);
        int h = (int) a.size(2);
        int w = (int) a.size(3);
        double[][] m = new double[h][w];
        double norm2 = 0;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double sum = 0;
                for (int c = 0; c < channels; c++) {
                    double v = a.getDouble(r, c, y, x);
                    sum += v * v;
                }
                m[y][x] = sum / channels;
                norm2 += m[y][x] * m[y][x];
            }
        }
        double norm = Math.sqrt(norm2);
        assertTrue(norm > 1e-6, "sample " + r + " has an all-zero map; the reference needs attention");
        for (double[] row : m) {
            for (int x = 0; x < w; x++) {
                row[x] /= norm;
            }
        }
        return m;
    }

    @Test
    void attentionTransferAloneTrainsTheConvLayerTowardTheTeachersMaps() {
        MultiLayerNetwork net = student(false);
        double[] initial = net.params().toDoubleVector();
        ComputationGraph g = Dl4jStudent.withFeatureOutputs(net.toComputationGraph(), "0");
        Dl4jStudent student = Dl4jStudent.of(g);
        MultiLayerNetwork teacherNet = teacher();
        Recording teacher = new Recording(Dl4jTeacher.of(teacherNet));
        INDArray dense = g.getLayer("2").params().dup();
        INDArray logits = g.getLayer("3").params().dup();
        INDArray conv = g.getLayer("0").params().dup();
        List<Double> batchLosses = new ArrayList<>();
        DistillResult r = run(teacher, student, "0", batchLosses).build().run();

        // (b) the first batch's at, from the untrained student's and the teacher's activations for its samples
        assertEquals(EPOCHS * BATCHES, batchLosses.size());
        Batch first = teacher.featureBatches.get(0);
        assertEquals(BATCH, first.size());
        MultiLayerNetwork untrained = student(false);
        untrained.setParams(Nd4j.createFromArray(initial).reshape(1, initial.length).castTo(DataType.FLOAT));
        INDArray x = Nd4j.create(first.features(), new long[]{BATCH, C * H * W}, 'c');
        INDArray s = untrained.feedForward(x, false).get(1);
        INDArray t = teacherNet.feedForward(x, false).get(1);
        assertArrayEquals(new long[]{BATCH, STUDENT_CONV, H, W}, s.shape());
        assertArrayEquals(new long[]{BATCH, TEACHER_CONV, H, W}, t.shape());
        double expected = attentionTransfer(s.castTo(DataType.DOUBLE), t.castTo(DataType.DOUBLE), BETA);
        Tolerances.assertValueClose(expected, batchLosses.get(0) / AT_WEIGHT, "first batch's at (its loss / weight, 0 * ce adds 0)");

        // (a) the reported at falls clearly over the epochs: the gradient reached the conv weights with the right sign
        double[] at = new double[EPOCHS];
        for (int e = 0; e < EPOCHS; e++) {
            Double v = r.epochs().get(e).terms().get(AttentionTransfer.NAME);
            assertNotNull(v, "epoch " + e + " reports an 'at' term: " + r.epochs().get(e).terms());
            at[e] = v;
            assertEquals(AT_WEIGHT * v, r.epochs().get(e).loss(), 1e-9 * Math.max(1, v), "epoch " + e + ": the loss is weight * at");
        }
        assertTrue(at[EPOCHS - 1] < 0.5 * at[0], "at per epoch " + java.util.Arrays.toString(at) + " must fall to under half");
        for (int e = 1; e < EPOCHS; e++) {
            assertTrue(at[e] < at[e - 1], "at per epoch " + java.util.Arrays.toString(at) + " must fall every epoch");
        }
        assertTrue(g.getLayer("0").params().sub(conv).norm2Number().doubleValue() > 0, "the feature's conv layer moved");
        assertArrayEquals(dense.toFloatVector(), g.getLayer("2").params().toFloatVector(), 0f, "the dense layer took no gradient");
        assertArrayEquals(logits.toFloatVector(), g.getLayer("3").params().toFloatVector(), 0f, "the logits took no gradient");
    }

    @Test
    void mapsOfDifferentSpatialSizesStopTheRunNamingBothSizes() {
        // the student's conv after its pooling (3 x 5) against the teacher's first conv (7 x 11)
        ComputationGraph g = Dl4jStudent.withFeatureOutputs(student(true).toComputationGraph(), "2");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> run(Dl4jTeacher.of(teacher()), Dl4jStudent.of(g), "2", new ArrayList<>()).build().run());
        assertEquals("epoch 1, batch 1 of " + BATCHES + ": at needs the same spatial size; student maps are 3x5, teacher maps 7x11",
                e.getMessage());
    }
}
