package org.distill4j.student;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.constraint.MaxNormConstraint;
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
import static org.junit.jupiter.api.Assertions.assertEquals;
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

    /**
     * Weight constraints (here a max-norm on every layer's weights) are part of DL4J's step: fit() applies them after the
     * update. The external-errors path must too, for a MultiLayerNetwork and a ComputationGraph; with a learning rate
     * large enough that the constraint binds, so a step without it would differ.
     */
    @Test
    void weightConstraintsApplyAfterEachStepAsInDl4jFit() {
        MaxNormConstraint maxNorm = new MaxNormConstraint(0.4, 1);
        for (boolean asGraph : new boolean[]{false, true}) {
            Random rng = new Random(17);
            org.deeplearning4j.nn.api.Model reference;
            org.deeplearning4j.nn.api.Model ours;
            Dl4jStudent student;
            if (asGraph) {
                ComputationGraph r = constrainedGraph(true, maxNorm);
                ComputationGraph o = constrainedGraph(false, maxNorm);
                o.setParams(r.params().dup());
                reference = r;
                ours = o;
                student = Dl4jStudent.of(o);
            } else {
                MultiLayerNetwork r = constrainedMlp(true, maxNorm);
                MultiLayerNetwork o = constrainedMlp(false, maxNorm);
                o.setParams(r.params().dup());
                reference = r;
                ours = o;
                student = Dl4jStudent.of(o);
            }
            for (int step = 0; step < 3; step++) {
                Batch b = batch(rng);
                if (reference instanceof MultiLayerNetwork m) {
                    m.fit(asDataSet(b));
                } else {
                    ((ComputationGraph) reference).fit(asDataSet(b));
                }
                stepOurs(student, b);
                assertArrayEquals(reference.params().toFloatVector(), ours.params().toFloatVector(), 2e-6f,
                        (asGraph ? "graph" : "MultiLayerNetwork") + " step " + step);
            }
            // the constraint bound: each norm along W's dimension 1 (of the weights [nIn, nOut] from one input) is at most 0.4,
            // some exactly
            INDArray w = ours instanceof MultiLayerNetwork m ? m.getLayer(0).getParam("W") : ((ComputationGraph) ours).getLayer("h").getParam("W");
            INDArray norms = w.norm2(1);
            assertTrue(norms.maxNumber().doubleValue() <= 0.4 + 1e-6, "norms " + norms);
            assertTrue(norms.maxNumber().doubleValue() > 0.4 - 1e-4, "the constraint binds: norms " + norms);
        }
    }

    /**
     * Layers read their schedules (here dropout: none at iteration 0, half from iteration 1) at the network's iteration,
     * which DL4J's fit() gives them before each forward pass: after one step a training forward drops units, for a
     * MultiLayerNetwork and a ComputationGraph (it kept the epoch start's count, 0, until the epoch ended).
     */
    @Test
    void layersSeeTheStepsIterationForTheirSchedules() {
        org.nd4j.linalg.schedule.ISchedule keep = new org.nd4j.linalg.schedule.MapSchedule.Builder(
                org.nd4j.linalg.schedule.ScheduleType.ITERATION).add(0, 1.0).add(1, 0.5).build();
        for (boolean asGraph : new boolean[]{false, true}) {
            NeuralNetConfiguration.Builder base = new NeuralNetConfiguration.Builder().seed(8).updater(new Sgd(0.1))
                    .weightInit(WeightInit.XAVIER);
            DenseLayer hidden = new DenseLayer.Builder().nIn(IN).nOut(HIDDEN).activation(Activation.TANH)
                    .dropOut(new org.deeplearning4j.nn.conf.dropout.Dropout(keep)).build();
            DenseLayer out = new DenseLayer.Builder().nIn(HIDDEN).nOut(OUT).activation(Activation.IDENTITY).build();
            Dl4jStudent student;
            if (asGraph) {
                ComputationGraph g = new ComputationGraph(base.graphBuilder().addInputs("in").addLayer("h", hidden, "in")
                        .addLayer("out", out, "h").setOutputs("out").build());
                g.init();
                student = Dl4jStudent.of(g);
            } else {
                MultiLayerNetwork n = new MultiLayerNetwork(base.list().layer(hidden).layer(out).build());
                n.init();
                student = Dl4jStudent.of(n);
            }
            Batch b = batch(new Random(3));
            String what = asGraph ? "graph" : "MultiLayerNetwork";
            float[] inference = student.forward(b, false);
            assertArrayEquals(inference, student.forward(b, true), 1e-6f, what + ": no dropout at iteration 0");
            student.backward(new float[N * OUT]); // a step of zero gradient: the iteration count moves on, the weights not
            inference = student.forward(b, false);
            float[] training = student.forward(b, true);
            double diff = 0;
            for (int i = 0; i < training.length; i++) {
                diff = Math.max(diff, Math.abs(training[i] - inference[i]));
            }
            assertTrue(diff > 1e-3, what + ": dropout from iteration 1 (largest difference " + diff + ")");
        }
    }

    private static MultiLayerNetwork constrainedMlp(boolean softmaxOutput, MaxNormConstraint c) {
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(4).updater(new Sgd(2.0))
                .weightInit(WeightInit.XAVIER).constrainWeights(c).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(HIDDEN).activation(Activation.TANH).build())
                .layer(softmaxOutput
                        ? new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(HIDDEN).nOut(OUT).activation(Activation.SOFTMAX).build()
                        : new DenseLayer.Builder().nIn(HIDDEN).nOut(OUT).activation(Activation.IDENTITY).build())
                .build());
        net.init();
        return net;
    }

    private static ComputationGraph constrainedGraph(boolean softmaxOutput, MaxNormConstraint c) {
        return graph(softmaxOutput, new NeuralNetConfiguration.Builder().seed(4).updater(new Sgd(2.0)).constrainWeights(c));
    }

    private static ComputationGraph graph(boolean softmaxOutput) {
        return graph(softmaxOutput, new NeuralNetConfiguration.Builder().seed(3).updater(new Sgd(0.2)));
    }

    /** in -> h (tanh) -> out (softmax + MCXENT, or identity logits), the network-wide settings from {@code base}. */
    private static ComputationGraph graph(boolean softmaxOutput, NeuralNetConfiguration.Builder base) {
        ComputationGraphConfiguration conf = base.weightInit(WeightInit.XAVIER).graphBuilder().addInputs("in")
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
    void aFeatureGradientAtAnExtraOutputReachesEarlierLayersExactly() {
        ComputationGraph base = graph(false); // in -> h (tanh) -> out (identity), SGD 0.2
        ComputationGraph g = Dl4jStudent.withFeatureOutputs(base, "h");
        assertArrayEquals(base.params().toFloatVector(), g.params().toFloatVector(), 0f, "same parameters");
        Dl4jStudent s = Dl4jStudent.of(g);
        assertEquals(java.util.List.of("h"), s.featureOutputs());
        Batch b = batch(new Random(9));
        s.forward(b, true);
        org.distill4j.data.Feature h = s.feature("h");
        assertArrayEquals(new int[]{HIDDEN}, h.shape());
        float[] eps = Inputs.logits(new Random(10), N, HIDDEN, 1.0);
        INDArray w = g.getLayer("h").getParam("W").dup();
        INDArray bias = g.getLayer("h").getParam("b").dup();
        INDArray wOut = g.getLayer("out").getParam("W").dup();
        s.backward(new float[N * OUT], java.util.Map.of("h", eps));
        // d/dW = x^T (eps * (1 - h^2)), d/db = sum over rows; SGD applies -0.2 times that
        double[] delta = new double[N * HIDDEN];
        for (int i = 0; i < delta.length; i++) {
            delta[i] = eps[i] * (1 - h.values()[i] * h.values()[i]);
        }
        for (int in = 0; in < IN; in++) {
            for (int o = 0; o < HIDDEN; o++) {
                double grad = 0;
                for (int r = 0; r < N; r++) {
                    grad += b.features()[r * IN + in] * delta[r * HIDDEN + o];
                }
                assertEquals(w.getDouble(in, o) - 0.2 * grad, g.getLayer("h").getParam("W").getDouble(in, o), 1e-5, "W " + in + "," + o);
            }
        }
        for (int o = 0; o < HIDDEN; o++) {
            double grad = 0;
            for (int r = 0; r < N; r++) {
                grad += delta[r * HIDDEN + o];
            }
            assertEquals(bias.ravel().getDouble(o) - 0.2 * grad, g.getLayer("h").getParam("b").ravel().getDouble(o), 1e-5, "b " + o);
        }
        assertArrayEquals(wOut.ravel().toFloatVector(), g.getLayer("out").getParam("W").ravel().toFloatVector(), 0f,
                "no gradient reached the output layer");
    }

    /** A float64 network: the float32 gradients from the losses are taken in the network's own type. */
    @Test
    void float64NetworksTakeTheSameStepsAsDl4jFit() {
        org.nd4j.linalg.api.buffer.DataType f64 = org.nd4j.linalg.api.buffer.DataType.DOUBLE;
        java.util.function.Function<Boolean, MultiLayerNetwork> mlp = softmax -> {
            MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(6).dataType(f64)
                    .updater(new Adam(1e-2)).weightInit(WeightInit.XAVIER).list()
                    .layer(new DenseLayer.Builder().nIn(IN).nOut(HIDDEN).activation(Activation.TANH).build())
                    .layer(softmax ? new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(HIDDEN).nOut(OUT)
                            .activation(Activation.SOFTMAX).build()
                            : new DenseLayer.Builder().nIn(HIDDEN).nOut(OUT).activation(Activation.IDENTITY).build())
                    .build());
            net.init();
            return net;
        };
        MultiLayerNetwork reference = mlp.apply(true);
        MultiLayerNetwork ours = mlp.apply(false);
        ours.setParams(reference.params().dup());
        ComputationGraph referenceGraph = reference.toComputationGraph();
        ComputationGraph oursGraph = ours.toComputationGraph();
        Dl4jStudent student = Dl4jStudent.of(ours);
        Dl4jStudent graphStudent = Dl4jStudent.of(oursGraph);
        Random rng = new Random(17);
        // our gradient comes from a float32 loss, DL4J's from its float64 one: the parameters agree to float32 precision
        for (int step = 0; step < 3; step++) {
            Batch b = batch(rng);
            reference.fit(asDataSet(b));
            referenceGraph.fit(asDataSet(b));
            stepOurs(student, b);
            stepOurs(graphStudent, b);
            assertArrayEquals(reference.params().toDoubleVector(), ours.params().toDoubleVector(), 1e-6, "MultiLayerNetwork step " + step);
            assertArrayEquals(referenceGraph.params().toDoubleVector(), oursGraph.params().toDoubleVector(), 1e-6, "graph step " + step);
        }
        // a feature gradient at an extra output of a float64 graph: d/db of the tanh layer is the sum over rows of eps * (1 - h^2)
        ComputationGraph g = Dl4jStudent.withFeatureOutputs(mlp.apply(false).toComputationGraph(), "0");
        Dl4jStudent s = Dl4jStudent.of(g);
        Batch b = batch(new Random(18));
        s.forward(b, true);
        float[] h = s.feature("0").values();
        float[] eps = Inputs.logits(new Random(19), N, HIDDEN, 1.0);
        INDArray bias = g.getLayer("0").getParam("b").dup();
        s.backward(new float[N * OUT], java.util.Map.of("0", eps));
        Adam first = new Adam(1e-2);
        for (int o = 0; o < HIDDEN; o++) {
            double grad = 0;
            for (int r = 0; r < N; r++) {
                grad += eps[r * HIDDEN + o] * (1 - (double) h[r * HIDDEN + o] * h[r * HIDDEN + o]);
            }
            // Adam's first step moves each parameter by lr * g / (|g| + epsilon): lr in the direction of the gradient
            double moved = bias.ravel().getDouble(o) - g.getLayer("0").getParam("b").ravel().getDouble(o);
            assertEquals(Math.signum(grad) * first.getLearningRate(0, 0), moved, 1e-5, "b " + o);
        }
    }

    /**
     * DL4J's TransferLearning builds its graph in float32 whatever the original's data type: the copy with feature outputs
     * must keep a float64 graph float64, its parameters not rounded to float32.
     */
    @Test
    void featureOutputsKeepAFloat64GraphFloat64() {
        org.nd4j.linalg.api.buffer.DataType f64 = org.nd4j.linalg.api.buffer.DataType.DOUBLE;
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(7).dataType(f64)
                .updater(new Sgd(0.1)).weightInit(WeightInit.XAVIER).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(HIDDEN).activation(Activation.TANH).build())
                .layer(new DenseLayer.Builder().nIn(HIDDEN).nOut(OUT).activation(Activation.IDENTITY).build())
                .build());
        net.init();
        ComputationGraph base = net.toComputationGraph();
        ComputationGraph g = Dl4jStudent.withFeatureOutputs(base, "0");
        assertEquals(f64, g.getConfiguration().getDataType(), "the copy's configured data type");
        assertEquals(f64, g.params().dataType(), "the copy's parameters");
        assertArrayEquals(base.params().toDoubleVector(), g.params().toDoubleVector(), 0.0,
                "the float64 parameters, not rounded to float32");
        INDArray x = Nd4j.create(Inputs.logits(new Random(8), N, IN, 1.0), new long[]{N, IN}, 'c').castTo(f64);
        assertEquals(f64, g.output(false, x)[0].dataType(), "the copy computes in float64");
        assertArrayEquals(base.output(false, x)[0].ravel().toDoubleVector(), g.output(false, x)[0].ravel().toDoubleVector(), 0.0,
                "the copy's logits are the graph's");
    }

    /** IN -> 9 (tanh) -> 6 (relu) -> OUT logits, SGD: a step is linear in the gradients it is given. */
    private static MultiLayerNetwork twoHidden(long seed) {
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(seed).updater(new Sgd(0.1))
                .weightInit(WeightInit.XAVIER).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(HIDDEN).activation(Activation.TANH).build())
                .layer(new DenseLayer.Builder().nIn(HIDDEN).nOut(6).activation(Activation.RELU).build())
                .layer(new DenseLayer.Builder().nIn(6).nOut(OUT).activation(Activation.IDENTITY).build())
                .build());
        net.init();
        return net;
    }

    /** The parameters after one step of dLogits and, at vertex {@code feature} (null: none), the feature gradient. */
    private static double[] stepWithFeature(String feature, float[] dLogits, float[] dFeature, Batch b) {
        MultiLayerNetwork net = twoHidden(21);
        Dl4jStudent s;
        ComputationGraph g = null;
        if (feature == null) {
            s = Dl4jStudent.of(net);
        } else {
            g = Dl4jStudent.withFeatureOutputs(net.toComputationGraph(), feature);
            s = Dl4jStudent.of(g);
        }
        s.forward(b, true);
        s.backward(dLogits, dFeature == null ? java.util.Map.of() : java.util.Map.of(feature, dFeature));
        return (g != null ? g.params() : net.params()).toDoubleVector();
    }

    /**
     * A hidden layer exposed as a feature output still passes the logits' gradient back to itself and the layers below:
     * with a zero feature gradient the step is the plain network's, and the step of both gradients is the sum of the steps
     * of each (SGD is linear). DL4J replaces the gradient that flows back into an output vertex with the external one, so an
     * exposed hidden layer froze the layers up to it for the logit loss.
     */
    @Test
    void aFeatureOutputAddsItsGradientToTheLogitsGradient() {
        Random rng = new Random(23);
        Batch b = batch(rng);
        float[] dLogits = Inputs.logits(rng, N, OUT, 0.3);
        double[] before = twoHidden(21).params().toDoubleVector();
        double[] plain = stepWithFeature(null, dLogits, null, b);
        for (String feature : new String[]{"0", "1"}) {
            int width = feature.equals("0") ? HIDDEN : 6;
            float[] dFeature = Inputs.logits(rng, N, width, 0.3);
            assertArrayEquals(plain, stepWithFeature(feature, dLogits, new float[N * width], b), 1e-6,
                    "feature " + feature + " at zero: the plain network's step");
            double[] both = stepWithFeature(feature, dLogits, dFeature, b);
            double[] onlyFeature = stepWithFeature(feature, new float[N * OUT], dFeature, b);
            double[] sum = new double[before.length];
            for (int i = 0; i < sum.length; i++) {
                sum[i] = plain[i] + onlyFeature[i] - before[i];
            }
            assertArrayEquals(sum, both, 1e-6, "feature " + feature + ": the two gradients add up");
        }
    }

    /** A student with a feature output at its first hidden layer also runs in inference (evaluation) mode. */
    @Test
    void aStudentWithAnEarlyFeatureOutputEvaluates() {
        ComputationGraph g = Dl4jStudent.withFeatureOutputs(twoHidden(3).toComputationGraph(), "0");
        Dl4jStudent s = Dl4jStudent.of(g);
        Batch b = batch(new Random(5));
        float[] train = s.forward(b, true);
        s.backward(new float[N * OUT], java.util.Map.of("0", new float[N * HIDDEN]));
        float[] eval = s.forward(b, false);
        assertEquals(N * OUT, eval.length);
        MultiLayerNetwork copy = twoHidden(3);
        copy.setParams(g.params());
        assertArrayEquals(Nd4jOutputs.of(copy, b), eval, 1e-6f, "the graph's logits are the network's");
        assertEquals(train.length, eval.length);
    }

    /** The plain network's logits for a batch, as floats. */
    private static final class Nd4jOutputs {
        static float[] of(MultiLayerNetwork net, Batch b) {
            return net.output(Nd4j.create(b.features(), new long[]{b.size(), IN}, 'c'), false).dup('c').data().asFloat();
        }
    }

    @Test
    void featureGradientsNeedAnExtraOutput() {
        Dl4jStudent s = Dl4jStudent.of(graph(false));
        s.forward(batch(new Random(1)), true);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> s.backward(new float[N * OUT], java.util.Map.of("h", new float[N * HIDDEN])));
        assertTrue(e.getMessage().contains("withFeatureOutputs(graph, \"h\")"), e.getMessage());
        Dl4jStudent m = Dl4jStudent.of(Nets.logitsMlp(IN, HIDDEN, OUT, new Sgd(0.1), 1, 0));
        m.forward(batch(new Random(1)), true);
        assertEquals(HIDDEN, m.feature("layer0").shape()[0]);
        e = assertThrows(IllegalArgumentException.class,
                () -> m.backward(new float[N * OUT], java.util.Map.of("layer0", new float[N * HIDDEN])));
        assertTrue(e.getMessage().contains("toComputationGraph()"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> m.feature("layer7"));
        assertTrue(e.getMessage().contains("no layer 'layer7'; its layers: layer0, layer1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Dl4jStudent.withFeatureOutputs(graph(false), "hidden"));
        assertTrue(e.getMessage().contains("no vertex 'hidden'"), e.getMessage());
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
