package org.distill4j.teacher;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.data.Batch;
import org.distill4j.loss.TeacherValues;
import org.distill4j.testing.Float64Reference;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Sgd;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class Dl4jTeacherTest {
    private static Batch batch(int n, int in, long seed) {
        Random rng = new Random(seed);
        int[] idx = new int[n];
        return new Batch(idx, Inputs.logits(rng, n, in, 1.0), in, new int[n]);
    }

    @Test
    void softmaxNetworkGivesExactPreSoftmaxLogits() {
        MultiLayerNetwork net = Nets.softmaxMlp(6, 8, 11, new Sgd(0.1), 4);
        Dl4jTeacher t = Dl4jTeacher.of(net);
        assertEquals(TeacherValues.LOGITS, t.values());
        Batch b = batch(5, 6, 1);
        float[] logits = t.outputs(b);
        float[] probs = net.output(Nd4j.create(b.features(), new long[]{5, 6}, 'c'), false).ravel().toFloatVector();
        for (int r = 0; r < 5; r++) {
            double[] lp = Float64Reference.logSoftmax(logits, r * 11, 11, 1.0);
            for (int i = 0; i < 11; i++) {
                assertEquals(probs[r * 11 + i], Math.exp(lp[i]), 1e-6, "row " + r + " class " + i);
            }
        }
    }

    @Test
    void identityNetworkGivesItsOutput() {
        MultiLayerNetwork net = Nets.logitsMlp(6, 8, 11, new Sgd(0.1), 4, 0.5);
        Batch b = batch(4, 6, 2);
        float[] expected = net.output(Nd4j.create(b.features(), new long[]{4, 6}, 'c'), false).ravel().toFloatVector();
        // inference mode: dropout is off, so two calls agree and equal DL4J's inference output
        assertArrayEquals(expected, Dl4jTeacher.of(net).outputs(b), 0f);
        assertArrayEquals(expected, Dl4jTeacher.of(net).outputs(b), 0f);
    }

    @Test
    void softmaxGraphGivesProbabilities() {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder().seed(1).graphBuilder().addInputs("in")
                .addLayer("h", new DenseLayer.Builder().nIn(6).nOut(8).activation(Activation.RELU).build(), "in")
                .addLayer("out", new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(8).nOut(3)
                        .activation(Activation.SOFTMAX).build(), "h")
                .setOutputs("out").build();
        ComputationGraph g = new ComputationGraph(conf);
        g.init();
        Dl4jTeacher t = Dl4jTeacher.of(g);
        assertEquals(TeacherValues.PROBABILITIES, t.values());
        Batch b = batch(3, 6, 3);
        assertArrayEquals(g.output(false, Nd4j.create(b.features(), new long[]{3, 6}, 'c'))[0].ravel().toFloatVector(), t.outputs(b), 0f);
    }

    @Test
    void singleLayerSoftmaxTeacherGivesPreSoftmaxLogits() {
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(2).list()
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(6).nOut(4).activation(Activation.SOFTMAX).build())
                .build());
        Dl4jTeacher t = Dl4jTeacher.of(net);
        Batch b = batch(3, 6, 4);
        float[] logits = t.outputs(b);
        float[] probs = net.output(Nd4j.create(b.features(), new long[]{3, 6}, 'c'), false).ravel().toFloatVector();
        for (int r = 0; r < 3; r++) {
            double[] lp = Float64Reference.logSoftmax(logits, r * 4, 4, 1.0);
            for (int i = 0; i < 4; i++) {
                assertEquals(probs[r * 4 + i], Math.exp(lp[i]), 1e-6);
            }
        }
    }

    /**
     * The pre-softmax logits of heads DL4J accepts beyond the default: one without a bias ({@code hasBias(false)}), and a
     * float64 network whose only layer is the head (its input is the batch's float32 features).
     */
    @Test
    void preSoftmaxLogitsOfABiasFreeHeadAndOfAFloat64Network() {
        MultiLayerNetwork noBias = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(3).list()
                .layer(new DenseLayer.Builder().nIn(6).nOut(7).activation(Activation.TANH).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(7).nOut(5).hasBias(false)
                        .activation(Activation.SOFTMAX).build())
                .build());
        MultiLayerNetwork dbl = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(4)
                .dataType(org.nd4j.linalg.api.buffer.DataType.DOUBLE).list()
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(6).nOut(5).activation(Activation.SOFTMAX).build())
                .build());
        for (MultiLayerNetwork net : new MultiLayerNetwork[]{noBias, dbl}) {
            Dl4jTeacher t = Dl4jTeacher.of(net);
            assertEquals(TeacherValues.LOGITS, t.values());
            Batch b = batch(9, 6, 8);
            float[] logits = t.outputs(b);
            double[] probs = net.output(Nd4j.create(b.features(), new long[]{9, 6}, 'c'), false).ravel().toDoubleVector();
            for (int r = 0; r < 9; r++) {
                double[] lp = Float64Reference.logSoftmax(logits, r * 5, 5, 1.0);
                for (int i = 0; i < 5; i++) {
                    assertEquals(probs[r * 5 + i], Math.exp(lp[i]), 1e-6, net.getLayerWiseConfigurations().getDataType() + " row " + r
                            + " class " + i);
                }
            }
        }
    }

    @Test
    void softmaxHeadBehindAPreprocessorGivesProbabilities() {
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(2).list()
                .layer(new org.deeplearning4j.nn.conf.layers.ConvolutionLayer.Builder(2, 2).nOut(2).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nOut(3).activation(Activation.SOFTMAX).build())
                .setInputType(org.deeplearning4j.nn.conf.inputs.InputType.convolutionalFlat(4, 4, 1)).build());
        Dl4jTeacher t = Dl4jTeacher.of(net);
        assertEquals(TeacherValues.PROBABILITIES, t.values());
        Batch b = batch(2, 16, 5);
        assertArrayEquals(net.output(Nd4j.create(b.features(), new long[]{2, 16}, 'c'), false).ravel().toFloatVector(),
                t.outputs(b), 0f);
    }

    @Test
    void namedFeaturesAreTheLayersActivations() {
        MultiLayerNetwork net = Nets.softmaxMlp(6, 8, 11, new Sgd(0.1), 4);
        Batch b = batch(3, 6, 7);
        org.distill4j.data.Feature f = Dl4jTeacher.of(net).feature(b, "layer0");
        assertArrayEquals(new int[]{8}, f.shape());
        org.nd4j.linalg.api.ndarray.INDArray x = Nd4j.create(b.features(), new long[]{3, 6}, 'c');
        float[] expected = org.nd4j.linalg.ops.transforms.Transforms.relu(
                x.mmul(net.getLayer(0).getParam("W")).addiRowVector(net.getLayer(0).getParam("b"))).ravel().toFloatVector();
        assertArrayEquals(expected, f.values(), 1e-6f);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dl4jTeacher.of(net).feature(b, "fc9"));
        assertEquals(true, e.getMessage().contains("no layer 'fc9'"), e.getMessage());
    }

    /**
     * A softmax LossLayer head records no output size (nOut 0): it has the size of the layer before it, in a
     * MultiLayerNetwork and in a graph, and a head with no sized layer before it is refused at once (not with 0 classes).
     */
    @Test
    void aLossLayerHeadHasTheSizeOfTheLayerBeforeIt() {
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(5).list()
                .layer(new DenseLayer.Builder().nIn(6).nOut(5).activation(Activation.IDENTITY).build())
                .layer(new org.deeplearning4j.nn.conf.layers.LossLayer.Builder(LossFunctions.LossFunction.MCXENT)
                        .activation(Activation.SOFTMAX).build())
                .build());
        net.init();
        Dl4jTeacher t = Dl4jTeacher.of(net);
        assertEquals(5, t.classes());
        assertEquals(TeacherValues.PROBABILITIES, t.values());
        Batch b = batch(3, 6, 9);
        assertArrayEquals(net.output(Nd4j.create(b.features(), new long[]{3, 6}, 'c'), false).ravel().toFloatVector(), t.outputs(b), 0f);

        ComputationGraph g = new ComputationGraph(new NeuralNetConfiguration.Builder().seed(6).graphBuilder().addInputs("in")
                .addLayer("h", new DenseLayer.Builder().nIn(6).nOut(7).activation(Activation.IDENTITY).build(), "in")
                .addLayer("out", new org.deeplearning4j.nn.conf.layers.LossLayer.Builder(LossFunctions.LossFunction.MCXENT)
                        .activation(Activation.SOFTMAX).build(), "h")
                .setOutputs("out").build());
        g.init();
        Dl4jTeacher tg = Dl4jTeacher.of(g);
        assertEquals(7, tg.classes());
        assertArrayEquals(g.output(false, Nd4j.create(b.features(), new long[]{3, 6}, 'c'))[0].ravel().toFloatVector(), tg.outputs(b), 0f);

        MultiLayerNetwork bare = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().list()
                .layer(new org.deeplearning4j.nn.conf.layers.LossLayer.Builder(LossFunctions.LossFunction.MCXENT)
                        .activation(Activation.SOFTMAX).build())
                .build());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dl4jTeacher.of(bare));
        assertEquals("teacher's last layer LossLayer has no output size (nOut 0) and no sized DenseLayer or OutputLayer right "
                + "before it; end the network in one", e.getMessage());
    }

    @Test
    void rejectsOutputsThatAreNotADistribution() {
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().list()
                .layer(new DenseLayer.Builder().nIn(4).nOut(3).activation(Activation.SIGMOID).build()).build());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dl4jTeacher.of(net));
        assertEquals(true, e.getMessage().contains("must end in softmax or identity"), e.getMessage());
    }
}
