package org.distill4j.teacher;

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
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A CNN teacher's intermediate features ({@code convolutionalFlat} input, 3x3 convolutions with padding 1, 2x2 max
 * pooling): {@code feature(batch, "layer<i>")} of a MultiLayerNetwork, and of its ComputationGraph by vertex name, is the
 * layer's activation {C, H, W} in NCHW order, the values DL4J's own {@code feedForward} gives, read index by index.
 * Tolerance: none; the teacher runs the same float32 forward pass in inference mode.
 */
class Dl4jTeacherConvTest {
    // input 3 x 11 x 7 -> conv 7 (11 x 7) -> max pool (5 x 3) -> conv 6 (5 x 3) -> dense 9 -> 5 logits
    private static final int C = 3;
    private static final int H = 11;
    private static final int W = 7;
    private static final int N = 7;
    private static final int[][] SHAPES = {{7, 11, 7}, {7, 5, 3}, {6, 5, 3}};

    private static Batch batch(long seed) {
        Random rng = new Random(seed);
        int[] idx = new int[N];
        for (int i = 0; i < N; i++) {
            idx[i] = i;
        }
        return new Batch(idx, ConvNets.images(rng, N, C * H * W), C * H * W, Inputs.labels(rng, N, 5));
    }

    private static void assertNchw(INDArray expected, Feature f, int[] shape, String what) {
        assertArrayEquals(shape, f.shape(), what + ": per-sample shape");
        assertEquals(N, f.rows(), what + ": rows");
        assertArrayEquals(new long[]{N, shape[0], shape[1], shape[2]}, expected.shape(), what + ": DL4J's activation");
        int i = 0;
        for (int r = 0; r < N; r++) {
            for (int c = 0; c < shape[0]; c++) {
                for (int y = 0; y < shape[1]; y++) {
                    for (int x = 0; x < shape[2]; x++, i++) {
                        float e = expected.getFloat(r, c, y, x);
                        if (Float.compare(e, f.values()[i]) != 0) {
                            fail(what + " value " + i + " (row " + r + ", channel " + c + ", y " + y + ", x " + x + "): "
                                    + f.values()[i] + ", the activation is " + e);
                        }
                    }
                }
            }
        }
    }

    @Test
    void aConvTeachersLayerFeatureIsItsNchwActivation() {
        MultiLayerNetwork net = ConvNets.cnn(DataType.FLOAT, new Sgd(0.1), 5, C, H, W, 7, 6, 9, 5);
        Dl4jTeacher mlnTeacher = Dl4jTeacher.of(net);
        Dl4jTeacher graphTeacher = Dl4jTeacher.of(net.toComputationGraph());
        for (long seed : new long[]{70, 71}) {
            Batch b = batch(seed);
            List<INDArray> acts = net.feedForward(Nd4j.create(b.features(), new long[]{N, C * H * W}, 'c'), false);
            for (int layer = 0; layer < SHAPES.length; layer++) {
                assertNchw(acts.get(layer + 1), mlnTeacher.feature(b, "layer" + layer), SHAPES[layer],
                        "MultiLayerNetwork layer" + layer + ", batch " + seed);
                assertNchw(acts.get(layer + 1), graphTeacher.feature(b, String.valueOf(layer)), SHAPES[layer],
                        "ComputationGraph vertex " + layer + ", batch " + seed);
            }
        }
    }
}
