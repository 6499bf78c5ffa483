package org.distill4j.student;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.weights.WeightInit;
import org.distill4j.data.Batch;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitBatch;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Nets;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.Sgd;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The external-errors path must take exactly the step DL4J's own training takes for the same loss:
 * our cross-entropy through {@link Dl4jStudent} vs DL4J's softmax + MCXENT output layer via fit().
 */
class Dl4jStudentTest {
    private static final int IN = 7;
    private static final int HIDDEN = 9;
    private static final int OUT = 5;
    private static final int N = 13;

    private static Batch batch(Random rng) {
        float[] x = Inputs.logits(rng, N, IN, 1.0);
        int[] idx = new int[N];
        for (int i = 0; i < N; i++) {
            idx[i] = i;
        }
        return new Batch(idx, x, IN, Inputs.labels(rng, N, OUT));
    }

    private static DataSet asDataSet(Batch b) {
        INDArray x = Nd4j.create(b.features(), new long[]{N, IN}, 'c');
        INDArray y = Nd4j.zeros(N, OUT);
        for (int i = 0; i < N; i++) {
            y.putScalar(i, b.labels()[i], 1.0);
        }
        return new DataSet(x, y);
    }

    private static void stepOurs(Dl4jStudent s, Batch b) {
        float[] logits = s.forward(b, true);
        float[] grad = new float[N * OUT];
        new CrossEntropy().compute(LogitBatch.ofLabels(N, OUT, logits, b.labels()), grad, 1f);
        s.backward(grad);
    }

    private void assertSameSteps(IUpdater updater) {
        Random rng = new Random(21);
        MultiLayerNetwork reference = Nets.softmaxMlp(IN, HIDDEN, OUT, updater, 1);
        MultiLayerNetwork ours = Nets.logitsMlp(IN, HIDDEN, OUT, updater.clone(), 2, 0);
        ours.setParams(reference.params().dup());
        Dl4jStudent student = Dl4jStudent.of(ours);
        for (int step = 0; step < 3; step++) {
            Batch b = batch(rng);
            reference.fit(asDataSet(b));
            stepOurs(student, b);
            assertArrayEquals(reference.params().toFloatVector(), ours.params().toFloatVector(), 2e-6f,
                    updater.getClass().getSimpleName() + " step " + step);
        }
    }

    @Test
    void sgdStepEqualsDl4jFitWithTheSameLoss() {
        assertSameSteps(new Sgd(0.3));
    }

    @Test
    void adamStepsEqualDl4jFitWithTheSameLoss() {
        // Adam normalizes the gradient, but its epsilon and the first steps still expose any scale error
        assertSameSteps(new Adam(1e-2, 0.9, 0.999, 1e-3));
    }

    @Test
    void computationGraphStepEqualsDl4jFit() {
        Random rng = new Random(5);
        ComputationGraph reference = graph(true);
        ComputationGraph ours = graph(false);
        ours.setParams(reference.params().dup());
        Dl4jStudent student = Dl4jStudent.of(ours);
        for (int step = 0; step < 3; step++) {
            Batch b = batch(rng);
            reference.fit(asDataSet(b));
            stepOurs(student, b);
            assertArrayEquals(reference.params().toFloatVector(), ours.params().toFloatVector(), 2e-6f, "step " + step);
        }
    }

    private static ComputationGraph graph(boolean softmaxOutput) {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder().seed(3).updater(new Sgd(0.2))
                .weightInit(WeightInit.XAVIER).graphBuilder().addInputs("in")
                .addLayer("h", new DenseLayer.Builder().nIn(IN).nOut(HIDDEN).activation(Activation.TANH).build(), "in")
                .addLayer("out", softmaxOutput
                        ? new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(HIDDEN).nOut(OUT)
                        .activation(Activation.SOFTMAX).build()
                        : new DenseLayer.Builder().nIn(HIDDEN).nOut(OUT).activation(Activation.IDENTITY).build(), "h")
                .setOutputs("out").build();
        ComputationGraph g = new ComputationGraph(conf);
        g.init();
        return g;
    }

    @Test
    void rejectsNetworksThatComputeTheirOwnLossOrSquashLogits() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Dl4jStudent.of(Nets.softmaxMlp(IN, HIDDEN, OUT, new Sgd(0.1), 1)));
        assertTrue(e.getMessage().contains("OutputLayer") && e.getMessage().contains("Activation.IDENTITY"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Dl4jStudent.of(graph(true)));
        assertTrue(e.getMessage().contains("OutputLayer"), e.getMessage());
    }

    @Test
    void backwardChecksItsInput() {
        Dl4jStudent s = Dl4jStudent.of(Nets.logitsMlp(IN, HIDDEN, OUT, new Sgd(0.1), 1, 0));
        IllegalStateException st = assertThrows(IllegalStateException.class, () -> s.backward(new float[N * OUT]));
        assertTrue(st.getMessage().contains("preceding forward"), st.getMessage());
        s.forward(batch(new Random(1)), true);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.backward(new float[3]));
        assertTrue(e.getMessage().contains("expected 13 x 5"), e.getMessage());
    }
}
