package org.distill4j.student;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.data.Batch;
import org.distill4j.data.Feature;
import org.distill4j.testing.ConvNets;
import org.distill4j.testing.Inputs;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Sgd;

import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Feature gradients at a convolutional layer of a float64 DL4J CNN ({@code convolutionalFlat} input, 3x3 convolutions with
 * padding 1, 2x2 max pooling), exposed with {@link Dl4jStudent#withFeatureOutputs}: the feature is the layer's NCHW
 * activation {C, H, W}, and one SGD step with an upstream gradient {@code eps} at it moves every parameter by exactly
 * {@code -lr * d(sum(eps * feature))/d(theta)}, checked on every bias and a spread of weights against central finite
 * differences of the network's own float64 forward pass; the layers above the feature do not move.
 *
 * <p>Tolerances: the network is piecewise linear in each single parameter (ReLU, max pooling, linear layers), so a central
 * difference is exact up to rounding, about 1e-16 * |objective| / {@link #FD_STEP}; each parameter's step must be within
 * {@link #FD_TOL} of the largest step of its layer. The feature is the float64 activation rounded to float32: within
 * {@link #FEATURE_TOL} relative. Steps with SGD are linear in the gradients: sums of steps within {@link #LINEAR_TOL}.
 */
class Dl4jStudentConvTest {
    // input 2 x 7 x 11 -> conv 3 (7 x 11) -> max pool (3 x 5) -> conv 5 (3 x 5) -> dense 6 -> 5 logits
    private static final int C = 2;
    private static final int H = 7;
    private static final int W = 11;
    private static final int CONV1 = 3;
    private static final int CONV2 = 5;
    private static final int PH = 3;
    private static final int PW = 5;
    private static final int DENSE = 6;
    private static final int CLASSES = 5;
    private static final int N = 5;
    private static final double LR = 0.05;

    /** At most about this many weights per layer are checked by finite differences (every bias is). */
    private static final int MAX_CHECKED = 50;
    private static final double FD_STEP = 1e-7;
    private static final double FD_TOL = 1e-6;
    private static final double FEATURE_TOL = 1e-6;
    private static final double LINEAR_TOL = 1e-12;

    private static MultiLayerNetwork net() {
        return ConvNets.cnn(DataType.DOUBLE, new Sgd(LR), 11, C, H, W, CONV1, CONV2, DENSE, CLASSES);
    }

    private static Batch batch(long seed) {
        Random rng = new Random(seed);
        int[] idx = new int[N];
        for (int i = 0; i < N; i++) {
            idx[i] = i;
        }
        return new Batch(idx, ConvNets.images(rng, N, C * H * W), C * H * W, Inputs.labels(rng, N, CLASSES));
    }

    private static INDArray input(Batch b) {
        return Nd4j.create(b.features(), new long[]{N, C * H * W}, 'c').castTo(DataType.DOUBLE);
    }

    /** The per-sample {C, H, W} of the output of layer {@code layer} (0 and 2 are convolutions, 1 the pooling). */
    private static int[] shapeOf(int layer) {
        return switch (layer) {
            case 0 -> new int[]{CONV1, H, W};
            case 1 -> new int[]{CONV1, PH, PW};
            case 2 -> new int[]{CONV2, PH, PW};
            default -> throw new IllegalArgumentException("layer " + layer);
        };
    }

    @Test
    void aConvFeatureIsTheLayersNchwActivation() {
        MultiLayerNetwork net = net();
        ComputationGraph g = Dl4jStudent.withFeatureOutputs(net.toComputationGraph(), "0", "1", "2");
        assertArrayEquals(net.params().toDoubleVector(), g.params().toDoubleVector(), 0.0, "the graph's parameters are the network's");
        Dl4jStudent s = Dl4jStudent.of(g);
        assertEquals(List.of("0", "1", "2"), s.featureOutputs());
        Batch b = batch(31);
        s.forward(b, true);
        List<INDArray> acts = net.feedForward(input(b), false);
        for (int layer = 0; layer <= 2; layer++) {
            Feature f = s.feature(String.valueOf(layer));
            int[] shape = shapeOf(layer);
            assertArrayEquals(shape, f.shape(), "feature of vertex " + layer);
            assertEquals(N, f.rows());
            INDArray a = acts.get(layer + 1);
            assertArrayEquals(new long[]{N, shape[0], shape[1], shape[2]}, a.shape(), "DL4J's activation of layer " + layer);
            int i = 0;
            for (int r = 0; r < N; r++) {
                for (int c = 0; c < shape[0]; c++) {
                    for (int y = 0; y < shape[1]; y++) {
                        for (int x = 0; x < shape[2]; x++, i++) {
                            double expected = a.getDouble(r, c, y, x);
                            if (!(Math.abs(f.values()[i] - expected) <= FEATURE_TOL * Math.max(1, Math.abs(expected)))) {
                                fail("vertex " + layer + " value " + i + " (row " + r + ", channel " + c + ", y " + y + ", x " + x
                                        + "): " + f.values()[i] + ", the activation is " + expected);
                            }
                        }
                    }
                }
            }
        }
    }

    /** sum(eps * activation of layer) + sum(dLogits * logits), in float64, with the network's current parameters. */
    private static double objective(MultiLayerNetwork net, INDArray x, int layer, float[] eps, float[] dLogits) {
        List<INDArray> acts = net.feedForward(x, false);
        double sum = dot(acts.get(layer + 1), eps);
        if (dLogits != null) {
            sum += dot(acts.get(acts.size() - 1), dLogits);
        }
        return sum;
    }

    private static double dot(INDArray a, float[] e) {
        double[] v = Nd4j.toFlattened('c', a).toDoubleVector();
        assertEquals(v.length, e.length);
        double s = 0;
        for (int i = 0; i < v.length; i++) {
            s += v[i] * e[i];
        }
        return s;
    }

    /**
     * Checks that the parameters moved from {@code before} to {@code after} by {@code -LR} times the central difference of
     * the objective, for every bias and a spread of weights (all of a small layer) of layers {@code 0..lastLayer}, and that
     * no parameter above moved at all.
     */
    private static void assertFiniteDifferenceStep(double[] before, double[] after, int layer, float[] eps, float[] dLogits,
                                                   Batch b, int lastLayer, String what) {
        MultiLayerNetwork ref = net();
        ref.setParams(Nd4j.createFromArray(before).reshape(1, before.length));
        INDArray x = input(b);
        INDArray p = ref.params();
        int offset = 0;
        for (int l = 0; l < ref.getnLayers(); l++) {
            int count = Math.toIntExact(ref.getLayer(l).numParams());
            if (l > lastLayer) {
                for (int k = 0; k < count; k++) {
                    assertEquals(before[offset + k], after[offset + k], 0.0, what + ": layer " + l + " param " + k + " must not move");
                }
            } else if (count > 0) {
                double[] expected = new double[count];
                double max = 0;
                int stride = (count + MAX_CHECKED - 1) / MAX_CHECKED;
                for (int k = 0; k < count; k++) {
                    if (!checked(ref, l, k, stride)) {
                        continue;
                    }
                    int i = offset + k;
                    p.putScalar(i, before[i] + FD_STEP);
                    double up = objective(ref, x, layer, eps, dLogits);
                    p.putScalar(i, before[i] - FD_STEP);
                    double down = objective(ref, x, layer, eps, dLogits);
                    p.putScalar(i, before[i]);
                    expected[k] = -LR * (up - down) / (2 * FD_STEP);
                    max = Math.max(max, Math.abs(expected[k]));
                }
                if (max < 1e-3) {
                    fail(what + ": layer " + l + " has finite-difference steps of at most " + max + "; the check needs a gradient");
                }
                for (int k = 0; k < count; k++) {
                    if (!checked(ref, l, k, stride)) {
                        continue;
                    }
                    double moved = after[offset + k] - before[offset + k];
                    if (!(Math.abs(moved - expected[k]) <= FD_TOL * max)) {
                        fail(what + ": layer " + l + " param " + k + " (" + paramName(ref, l, k) + ") moved " + moved
                                + ", -lr * finite difference " + expected[k] + " (tolerance " + FD_TOL * max + ")");
                    }
                }
            }
            offset += count;
        }
        assertEquals(before.length, offset);
    }

    /** Every bias, and every {@code stride}-th parameter of the layer. */
    private static boolean checked(MultiLayerNetwork net, int layer, int k, int stride) {
        return k % stride == 0 || paramName(net, layer, k).startsWith("b");
    }

    /** "W[i]" or "b[i]", for messages: DL4J's convolution layers keep b before W in their parameters, dense layers W first. */
    private static String paramName(MultiLayerNetwork net, int layer, int k) {
        int bias = Math.toIntExact(net.getLayer(layer).getParam("b").length());
        int weights = Math.toIntExact(net.getLayer(layer).getParam("W").length());
        boolean biasFirst = net.getLayer(layer).conf().getLayer() instanceof org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
        if (biasFirst) {
            return k < bias ? "b[" + k + "]" : "W[" + (k - bias) + "]";
        }
        return k < weights ? "W[" + k + "]" : "b[" + (k - weights) + "]";
    }

    /** The parameters after one step with dLogits and the gradient eps at vertex {@code vertex} of a fresh student. */
    private static double[] stepAt(String vertex, float[] dLogits, float[] eps, Batch b) {
        ComputationGraph g = Dl4jStudent.withFeatureOutputs(net().toComputationGraph(), vertex);
        Dl4jStudent s = Dl4jStudent.of(g);
        s.forward(b, true);
        s.backward(dLogits, Map.of(vertex, eps));
        return g.params().toDoubleVector();
    }

    @Test
    void aFeatureGradientAtAConvLayerStepsByItsFiniteDifference() {
        double[] before = net().params().toDoubleVector();
        for (int layer : new int[]{2, 0}) {
            String vertex = String.valueOf(layer);
            Batch b = batch(40 + layer);
            int[] shape = shapeOf(layer);
            float[] eps = Inputs.logits(new Random(50 + layer), N, shape[0] * shape[1] * shape[2], 1.0);
            double[] after = stepAt(vertex, new float[N * CLASSES], eps, b);
            assertFiniteDifferenceStep(before, after, layer, eps, null, b, layer, "feature gradient at conv vertex " + vertex);
        }
    }

    /**
     * A conv layer exposed as a feature output still passes the logits' gradient back to itself and the layers below: with a
     * zero feature gradient the step is the plain network's, both gradients together step by the sum of the steps of each
     * (SGD is linear), and that step is the finite difference of sum(eps * feature) + sum(dLogits * logits).
     */
    @Test
    void aConvFeatureGradientAddsToTheLogitsGradient() {
        Batch b = batch(60);
        Random rng = new Random(61);
        float[] dLogits = Inputs.logits(rng, N, CLASSES, 0.5);
        float[] eps = Inputs.logits(rng, N, CONV2 * PH * PW, 1.0);
        double[] before = net().params().toDoubleVector();
        MultiLayerNetwork plainNet = net();
        Dl4jStudent plainStudent = Dl4jStudent.of(plainNet);
        plainStudent.forward(b, true);
        plainStudent.backward(dLogits);
        double[] plain = plainNet.params().toDoubleVector();
        assertArrayEquals(plain, stepAt("2", dLogits, new float[N * CONV2 * PH * PW], b), LINEAR_TOL,
                "a zero feature gradient: the plain network's step");
        double[] onlyFeature = stepAt("2", new float[N * CLASSES], eps, b);
        double[] both = stepAt("2", dLogits, eps, b);
        double[] sum = new double[before.length];
        for (int i = 0; i < sum.length; i++) {
            sum[i] = plain[i] + onlyFeature[i] - before[i];
        }
        assertArrayEquals(sum, both, LINEAR_TOL, "the two gradients add up");
        assertFiniteDifferenceStep(before, both, 2, eps, dLogits, b, Integer.MAX_VALUE, "feature and logits gradients");
    }
}
