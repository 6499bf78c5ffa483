package org.distill4j.cuda.nn;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.data.Batch;
import org.distill4j.student.Dl4jStudent;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.nd4j.linalg.learning.config.Sgd;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GPU MLP engine's host side, without a GPU: DL4J import and export round trips, validation, and the
 * float64 reference of forward, backward and the optimizer step against DL4J's own step.
 */
class Dl4jMlpTest {
    static final int IN = 13;

    static MultiLayerNetwork net(IUpdater updater, long seed, double dropout, Activation... hidden) {
        NeuralNetConfiguration.ListBuilder b = new NeuralNetConfiguration.Builder().seed(seed).updater(updater).list();
        int[] sizes = {37, 29};
        int in = IN;
        for (int i = 0; i < hidden.length; i++) {
            DenseLayer.Builder d = new DenseLayer.Builder().nIn(in).nOut(sizes[i]).activation(hidden[i]);
            if (dropout > 0 && i > 0) {
                d.dropOut(1 - dropout);
            }
            b.layer(d.build());
            in = sizes[i];
        }
        b.layer(new DenseLayer.Builder().nIn(in).nOut(5).activation(Activation.IDENTITY).build());
        MultiLayerNetwork n = new MultiLayerNetwork(b.build());
        n.init();
        return n;
    }

    static float[] random(Random rng, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        return x;
    }

    static Batch batch(float[] x, int rows) {
        int[] idx = new int[rows];
        for (int i = 0; i < rows; i++) {
            idx[i] = i;
        }
        return new Batch(idx, x, IN, new int[rows]);
    }

    /** Relative to the largest magnitude, as float32 arithmetic on either side allows. */
    static void assertClose(double[] expected, float[] actual, double rel, String what) {
        assertEquals(expected.length, actual.length, what);
        double max = 0;
        for (double e : expected) {
            max = Math.max(max, Math.abs(e));
        }
        for (int i = 0; i < expected.length; i++) {
            double tol = rel * (max + 1e-12);
            assertTrue(Math.abs(expected[i] - actual[i]) <= tol, what + ": element " + i + " expected " + expected[i] + " but was "
                    + actual[i] + " (tol " + tol + ")");
        }
    }

    static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    @Test
    void importReadsShapesActivationsOptimizerAndWeightsAndTheReferenceForwardMatchesDl4j() {
        MultiLayerNetwork n = net(new Adam(3e-3), 7, 0, Activation.RELU, Activation.GELU);
        Dl4jMlp.Imported imp = Dl4jMlp.importFrom(n);
        MlpSpec spec = imp.spec();
        assertEquals(IN, spec.inputs());
        assertEquals(5, spec.outputs());
        assertEquals(n.numParams(), spec.parameters());
        assertEquals(MlpSpec.Activation.RELU, spec.layers().get(0).activation());
        assertEquals(MlpSpec.Activation.GELU_SIGMOID, spec.layers().get(1).activation());
        assertEquals(new MlpSpec.Optimizer(MlpSpec.Optimizer.Kind.ADAM, 3e-3, 0.9, 0.999, 1e-8, 0), spec.optimizer());
        assertFalse(imp.softmaxHead());
        Random rng = new Random(1);
        int rows = 11;
        float[] x = random(rng, rows * IN);
        double[] ref = new MlpReference(spec, imp.weights()).forward(x, rows);
        INDArray out = n.output(Nd4j.create(x, new long[] {rows, IN}), false);
        assertClose(ref, out.data().asFloat(), 1e-5, "forward");
    }

    @Test
    void exportRoundTripsToTheSameNetwork() {
        for (Activation a : new Activation[] {Activation.TANH, Activation.SIGMOID}) {
            MultiLayerNetwork n = net(new Sgd(0.1), 3, 0.25, Activation.RELU, a);
            Dl4jMlp.Imported imp = Dl4jMlp.importFrom(n);
            assertEquals(0.25, imp.spec().layers().get(1).dropout(), 1e-12);
            MultiLayerNetwork back = Dl4jMlp.exportTo(imp.spec(), imp.weights());
            assertEquals(n.params(), back.params(), "the same parameters, in DL4J's own layout");
            INDArray x = Nd4j.create(random(new Random(2), 4 * IN), new long[] {4, IN});
            assertEquals(n.output(x, false), back.output(x, false));
            Dl4jMlp.Imported again = Dl4jMlp.importFrom(back);
            assertEquals(imp.spec(), again.spec());
            assertArrayEquals(imp.weights().w()[2], again.weights().w()[2]);
        }
    }

    /**
     * An export writes every parameter: random non-zero biases too (the round trip above starts from DL4J's
     * initialization, whose biases are zeros, so a bias never written passed it), and the network it builds computes
     * the float64 reference's logits; its layers carry the spec's Adam settings and dropout (none where the spec has
     * none). What DL4J cannot express, or weights of another shape, are refused. A network not yet initialized is
     * imported as well.
     */
    @Test
    void anExportWritesEveryParameterAndTheOptimizer() {
        Random rng = new Random(20261123);
        MlpSpec spec = new MlpSpec(IN, List.of(new MlpSpec.Layer(IN, 37, MlpSpec.Activation.RELU, 0),
                new MlpSpec.Layer(37, 29, MlpSpec.Activation.TANH, 0.3), new MlpSpec.Layer(29, 5, MlpSpec.Activation.IDENTITY, 0)),
                new MlpSpec.Optimizer(MlpSpec.Optimizer.Kind.ADAM, 3e-3, 0.8, 0.99, 1e-7, 0));
        float[][] ws = new float[3][];
        float[][] bs = new float[3][];
        for (int l = 0; l < 3; l++) {
            ws[l] = random(rng, spec.layers().get(l).in() * spec.layers().get(l).out());
            for (int i = 0; i < ws[l].length; i++) {
                ws[l][i] *= 0.3f;
            }
            bs[l] = random(rng, spec.layers().get(l).out());
        }
        MlpWeights w = new MlpWeights(ws, bs);
        MultiLayerNetwork back = Dl4jMlp.exportTo(spec, w);
        for (int l = 0; l < 3; l++) {
            assertArrayEquals(bs[l], back.getLayer(l).getParam("b").dup().data().asFloat(), "b" + l);
            DenseLayer d = (DenseLayer) back.getLayerWiseConfigurations().getConf(l).getLayer();
            assertEquals(new Adam(3e-3, 0.8, 0.99, 1e-7), d.getIUpdater(), "layer " + l + "'s updater");
        }
        assertEquals(null, ((DenseLayer) back.getLayerWiseConfigurations().getConf(0).getLayer()).getIDropout(), "no dropout");
        assertEquals(new org.deeplearning4j.nn.conf.dropout.Dropout(0.7),
                ((DenseLayer) back.getLayerWiseConfigurations().getConf(1).getLayer()).getIDropout(), "DL4J keeps 1 - 0.3");
        int rows = 3;
        float[] x = random(rng, rows * IN);
        double[] want = new MlpReference(spec, w).forward(x, rows);
        float[] got = back.output(Nd4j.create(x, new long[] {rows, IN}), false).dup().data().asFloat();
        assertClose(want, got, 1e-5, "the exported network's logits");
        Dl4jMlp.Imported again = Dl4jMlp.importFrom(back);
        assertEquals(spec.optimizer(), again.spec().optimizer());
        for (int l = 0; l < 3; l++) {
            MlpSpec.Layer a = spec.layers().get(l);
            MlpSpec.Layer b = again.spec().layers().get(l);
            assertEquals(List.of(a.in(), a.out(), a.activation()), List.of(b.in(), b.out(), b.activation()), "layer " + l);
            assertEquals(a.dropout(), b.dropout(), 1e-12, "layer " + l + "'s dropout, through DL4J's 1 - p");
        }
        assertArrayEquals(bs[1], again.weights().b()[1]);

        MlpSpec decayed = new MlpSpec(IN, spec.layers(), new MlpSpec.Optimizer(MlpSpec.Optimizer.Kind.ADAM, 3e-3, 0.9, 0.999, 1e-8, 0.01));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.exportTo(decayed, w));
        assertEquals("weight decay 0.01 has no DL4J equivalent in this export", e.getMessage());
        MlpWeights two = new MlpWeights(java.util.Arrays.copyOf(ws, 2), java.util.Arrays.copyOf(bs, 2));
        e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.exportTo(spec, two));
        assertTrue(e.getMessage().contains("weights for 2 layers, the spec has 3"), e.getMessage());

        MultiLayerNetwork uninitialized = new MultiLayerNetwork(back.getLayerWiseConfigurations().clone());
        assertEquals(again.spec(), Dl4jMlp.importFrom(uninitialized).spec(), "initialized on import");
    }

    /**
     * The engine's Adam step size ({@link DeviceMlpRunner#adamAlphaT}) is DL4J's, bit for bit: DL4J's Adam updater applied
     * once, from zero moments, at iterations 0 to 20,000 and five settings, to gradients of +-2^k (so the moments and
     * sqrt(v) are exact on both sides, and only the step size can differ), gives the update the engine's kernel computes
     * from that step size ({@code mlp_adam_element}: alphaT m / (sqrt(v) + eps) in fp32). From the float64 betas, as the
     * engine computed it before, the step size was 6.7e-6 larger than DL4J's at beta2 = 0.999, and most cases differed.
     */
    @Test
    void adamStepSizeIsDl4jsBitForBit() {
        Random rng = new Random(1);
        int n = 64;
        double[][] settings = {{1e-3, 0.9, 0.999, 1e-8}, {1e-2, 0.9, 0.999, 1e-8}, {5e-3, 0.8, 0.99, 1e-6}, {0.1, 0.95, 0.9999, 1e-8},
                {3e-4, 0.9, 0.98, 1e-7}};
        for (double[] h : settings) {
            MlpSpec.Optimizer o = new MlpSpec.Optimizer(MlpSpec.Optimizer.Kind.ADAM, h[0], h[1], h[2], h[3], 0);
            for (int iteration : new int[] {0, 1, 2, 3, 5, 9, 17, 50, 99, 100, 257, 1000, 4999, 20000}) {
                float[] g = new float[n];
                for (int i = 0; i < n; i++) {
                    g[i] = (float) ((rng.nextBoolean() ? 1 : -1) * Math.pow(2, rng.nextInt(21) - 10));
                }
                org.nd4j.linalg.learning.GradientUpdater<?> u = new Adam(h[0], h[1], h[2], h[3])
                        .instantiate(org.nd4j.linalg.factory.Nd4j.zeros(org.nd4j.linalg.api.buffer.DataType.FLOAT, 1, 2 * n), true);
                org.nd4j.linalg.api.ndarray.INDArray update = org.nd4j.linalg.factory.Nd4j.create(g).reshape(1, n);
                u.applyUpdater(update, iteration, 0); // DL4J's Adam: step iteration + 1
                float[] dl4j = update.toFloatVector();
                float alphaT = DeviceMlpRunner.adamAlphaT(o, iteration + 1);
                for (int i = 0; i < n; i++) {
                    float m = (1f - (float) h[1]) * g[i];
                    float v = (1f - (float) h[2]) * g[i] * g[i];
                    float mine = alphaT * m / ((float) Math.sqrt(v) + (float) h[3]);
                    assertEquals(Float.floatToRawIntBits(dl4j[i]), Float.floatToRawIntBits(mine), java.util.Arrays.toString(h) + ", iteration "
                            + iteration + ", g " + g[i] + ": DL4J's update " + dl4j[i] + ", the engine's " + mine);
                }
            }
        }
    }

    /** Two Adam steps (bias correction at t = 1 and 2) of the reference equal DL4J's steps through Dl4jStudent. */
    @Test
    void theReferenceStepIsDl4jsStep() {
        for (IUpdater u : new IUpdater[] {new Adam(1e-2), new Sgd(0.05)}) {
            MultiLayerNetwork n = net(u, 11, 0, Activation.TANH, Activation.GELU);
            Dl4jMlp.Imported imp = Dl4jMlp.importFrom(n);
            MlpReference ref = new MlpReference(imp.spec(), imp.weights());
            Dl4jStudent student = Dl4jStudent.of(n);
            Random rng = new Random(5);
            for (int step = 0; step < 2; step++) {
                int rows = 9;
                float[] x = random(rng, rows * IN);
                float[] dLogits = random(rng, rows * 5);
                for (int i = 0; i < dLogits.length; i++) {
                    dLogits[i] *= 0.3f / rows; // a reduced loss's gradient, upstream != 1
                }
                float[] logits = student.forward(batch(x, rows), true);
                assertClose(ref.forward(x, rows), logits, 1e-5, u + " forward, step " + step);
                student.backward(dLogits);
                ref.step(ref.backward(dLogits));
                MlpWeights after = Dl4jMlp.importFrom(n).weights();
                MlpWeights mine = ref.weights();
                for (int li = 0; li < 3; li++) {
                    assertClose(widen(mine.w()[li]), after.w()[li], 2e-5, u + " W" + li + " after step " + step);
                    assertClose(widen(mine.b()[li]), after.b()[li], 2e-5, u + " b" + li + " after step " + step);
                }
            }
        }
    }

    /**
     * The engine's weights and Adam moments written back into a DL4J network after two steps: DL4J's third
     * step equals the reference's third step, so training goes on where the engine stopped (a wrong
     * moment layout, a missing iteration count or a re-initialized updater changes that step).
     */
    @Test
    void writeBackContinuesTrainingWhereTheEngineStopped() {
        for (IUpdater u : new IUpdater[] {new Adam(2e-2), new Sgd(0.05)}) {
            MultiLayerNetwork n = net(u, 13, 0, Activation.RELU, Activation.SIGMOID);
            Dl4jMlp.Imported imp = Dl4jMlp.importFrom(n);
            MlpReference ref = new MlpReference(imp.spec(), imp.weights());
            Random rng = new Random(8);
            int rows = 7;
            for (int step = 0; step < 2; step++) {
                float[] x = random(rng, rows * IN);
                ref.forward(x, rows);
                float[] d = random(rng, rows * 5);
                ref.step(ref.backward(d));
            }
            MlpWeights[] mv = ref.moments();
            boolean adam = u instanceof Adam;
            if (adam) {
                float[] before = n.params().toFloatVector();
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> Dl4jMlp.writeBack(n, imp.spec(), ref.weights(), new MlpOptimizerState(2, 3, null, null)));
                assertTrue(e.getMessage().contains("Adam, but the state (2 steps) holds no moments"), e.getMessage());
                assertArrayEquals(before, n.params().toFloatVector(), "a refused write-back writes nothing");
            }
            Dl4jMlp.writeBack(n, imp.spec(), ref.weights(),
                    new MlpOptimizerState(ref.steps(), 3, adam ? mv[0] : null, adam ? mv[1] : null));
            assertEquals(2, n.getIterationCount());
            assertEquals(3, n.getEpochCount());
            MlpWeights written = Dl4jMlp.importFrom(n).weights();
            for (int li = 0; li < 3; li++) {
                assertArrayEquals(ref.weights().w()[li], written.w()[li], u + " W" + li + " written back");
            }
            thirdStepsAgree(Dl4jStudent.of(n), n, ref, rng, rows, u);
        }
    }

    /**
     * DL4J keeps an iteration and epoch count in each layer as well as in the network (its scheduled dropout
     * and weight noise read the layer's), and its own fit brings every layer to the network's counts
     * (synchronizeIterEpochCounts) after each step and at the end of each epoch. A write-back leaves the
     * network as such a fit would: each layer with the state's counts too, not those of before the engine ran.
     */
    @Test
    void writeBackSetsEachLayersCountsAsDl4jsFitDoes() {
        for (IUpdater u : new IUpdater[] {new Adam(1e-2), new Sgd(0.05)}) {
            // what DL4J's fit does: one epoch of three batches
            Random rng = new Random(12);
            int rows = 6;
            java.util.List<org.nd4j.linalg.dataset.DataSet> sets = new java.util.ArrayList<>();
            for (int i = 0; i < 3; i++) {
                INDArray labels = Nd4j.zeros(org.nd4j.linalg.api.buffer.DataType.FLOAT, rows, 5);
                for (int r = 0; r < rows; r++) {
                    labels.putScalar(r, rng.nextInt(5), 1f);
                }
                sets.add(new org.nd4j.linalg.dataset.DataSet(Nd4j.create(random(rng, rows * IN), new long[] {rows, IN}), labels));
            }
            // a DenseLayer last has no loss; DL4J's fit needs an output layer: same hidden stack, MSE head
            MultiLayerNetwork dl4j = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().updater(u).list()
                    .layer(new DenseLayer.Builder().nIn(IN).nOut(7).activation(Activation.RELU).build())
                    .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MSE).nIn(7).nOut(5).activation(Activation.IDENTITY).build())
                    .build());
            dl4j.init();
            dl4j.fit(new org.deeplearning4j.datasets.iterator.ExistingDataSetIterator(sets));
            assertEquals(3, dl4j.getIterationCount());
            assertEquals(1, dl4j.getEpochCount());
            for (int i = 0; i < dl4j.getnLayers(); i++) {
                assertEquals(3, dl4j.getLayer(i).getIterationCount(), u + ": DL4J's fit, layer " + i + "'s iteration count");
                assertEquals(1, dl4j.getLayer(i).getEpochCount(), u + ": DL4J's fit, layer " + i + "'s epoch count");
            }
            // the engine's write-back of 7 steps and 2 epochs
            MultiLayerNetwork student = net(u, 5, 0, Activation.RELU);
            Dl4jMlp.Imported imp = Dl4jMlp.importFrom(student);
            MlpOptimizerState state = u instanceof Adam
                    ? new MlpOptimizerState(7, 2, imp.weights(), imp.weights()) // any moments of the right shape
                    : new MlpOptimizerState(7, 2, null, null);
            Dl4jMlp.writeBack(student, imp.spec(), imp.weights(), state);
            assertEquals(7, student.getIterationCount());
            assertEquals(2, student.getEpochCount());
            for (int i = 0; i < student.getnLayers(); i++) {
                assertEquals(7, student.getLayer(i).getIterationCount(), u + ": after the write-back, layer " + i + "'s iteration count");
                assertEquals(2, student.getLayer(i).getEpochCount(), u + ": after the write-back, layer " + i + "'s epoch count");
            }
            // weights alone (no state) leave every count as it was
            Dl4jMlp.writeBack(student, imp.spec(), imp.weights(), null);
            assertEquals(7, student.getLayer(0).getIterationCount(), u + ": a weights-only write-back keeps the counts");
        }
    }

    /**
     * The other direction: a student DL4J has trained for two steps and an epoch, read with readState, goes
     * on in the reference (the engine's arithmetic) exactly as DL4J's own third step goes on (moments that
     * were zeros, a lost iteration count or a transposed moment layout change that step).
     */
    @Test
    void readStateLetsTheEngineContinueDl4jsTraining() {
        for (IUpdater u : new IUpdater[] {new Adam(2e-2), new Sgd(0.05)}) {
            MultiLayerNetwork n = net(u, 21, 0, Activation.TANH, Activation.RELU);
            Dl4jMlp.Imported fresh = Dl4jMlp.importFrom(n);
            assertEquals(MlpOptimizerState.fresh(), Dl4jMlp.readState(n, fresh.spec()), u + ": an untrained network");
            Dl4jStudent student = Dl4jStudent.of(n);
            Random rng = new Random(31);
            int rows = 9;
            for (int step = 0; step < 2; step++) {
                student.forward(batch(random(rng, rows * IN), rows), true);
                student.backward(random(rng, rows * 5));
            }
            student.endEpoch();
            Dl4jMlp.Imported imp = Dl4jMlp.importFrom(n);
            MlpOptimizerState state = Dl4jMlp.readState(n, imp.spec());
            assertEquals(2, state.steps());
            assertEquals(1, state.epochs());
            boolean adam = u instanceof Adam;
            assertEquals(adam, state.m() != null, u + ": moments read for Adam only");
            MlpReference ref = new MlpReference(imp.spec(), imp.weights());
            ref.resume(state);
            thirdStepsAgree(student, n, ref, rng, rows, u);
            if (adam) {
                // and what readState read is what writeBack writes: a round trip through a fresh network
                MultiLayerNetwork copy = net(u, 99, 0, Activation.TANH, Activation.RELU);
                Dl4jMlp.writeBack(copy, imp.spec(), imp.weights(), state);
                MlpOptimizerState again = Dl4jMlp.readState(copy, imp.spec());
                for (int li = 0; li < 3; li++) {
                    assertArrayEquals(state.m().w()[li], again.m().w()[li], "m of W" + li);
                    assertArrayEquals(state.v().b()[li], again.v().b()[li], "v of b" + li);
                }
                assertEquals(1, again.epochs());
            }
        }
    }

    /**
     * A state of no steps without moments ({@link MlpOptimizerState#fresh()}, or what readState reads from an untrained
     * Adam network) is Adam before its first step, whose moments are zeros, as MlpOptimizerState documents and the engine
     * and the reference take it. writeBack refused it as "holds no moments", so readState's answer for an untrained
     * network could not be written back. Written into a network DL4J has trained two steps, it resets the moments and
     * counts: DL4J's next step is then the reference's first.
     */
    @Test
    void aStateOfNoStepsWritesBackAsAdamBeforeItsFirstStep() {
        IUpdater u = new Adam(2e-2);
        MultiLayerNetwork n = net(u, 17, 0, Activation.RELU, Activation.TANH);
        Dl4jMlp.Imported imp = Dl4jMlp.importFrom(n);
        MlpOptimizerState untrained = Dl4jMlp.readState(net(u, 17, 0, Activation.RELU, Activation.TANH), imp.spec());
        assertEquals(MlpOptimizerState.fresh(), untrained);
        Dl4jStudent student = Dl4jStudent.of(n);
        Random rng = new Random(41);
        int rows = 7;
        for (int step = 0; step < 2; step++) {
            student.forward(batch(random(rng, rows * IN), rows), true);
            student.backward(random(rng, rows * 5));
        }
        student.endEpoch();
        assertEquals(2, n.getIterationCount());
        Dl4jMlp.writeBack(n, imp.spec(), imp.weights(), untrained);
        assertEquals(0, n.getIterationCount());
        assertEquals(0, n.getEpochCount());
        assertEquals(0, n.getLayer(1).getIterationCount());
        for (org.deeplearning4j.nn.updater.UpdaterBlock block
                : ((org.deeplearning4j.nn.updater.BaseMultiLayerUpdater<?>) n.getUpdater()).getUpdaterBlocks()) {
            assertEquals(0.0, block.getUpdaterView().amaxNumber().doubleValue(), "Adam's moments are zeros again");
        }
        MlpReference ref = new MlpReference(imp.spec(), imp.weights());
        thirdStepsAgree(student, n, ref, rng, rows, u);
        assertEquals(1, ref.steps(), "the comparison was the reference's first step");
    }

    /** One more step, DL4J's on {@code n} and the reference's, on the same batch and gradient: the parameters agree. */
    private static void thirdStepsAgree(Dl4jStudent student, MultiLayerNetwork n, MlpReference ref, Random rng, int rows, IUpdater u) {
        float[] x = random(rng, rows * IN);
        float[] d = random(rng, rows * 5);
        student.forward(batch(x, rows), true);
        student.backward(d);
        ref.forward(x, rows);
        ref.step(ref.backward(d));
        MlpWeights after = Dl4jMlp.importFrom(n).weights();
        for (int li = 0; li < 3; li++) {
            assertClose(widen(ref.weights().w()[li]), after.w()[li], 2e-5, u + " W" + li + " after DL4J's step 3");
            assertClose(widen(ref.weights().b()[li]), after.b()[li], 2e-5, u + " b" + li + " after DL4J's step 3");
        }
    }

    @Test
    void writeBackRefusesAnotherNetwork() {
        MultiLayerNetwork n = net(new Sgd(0.1), 3, 0, Activation.RELU, Activation.TANH);
        Dl4jMlp.Imported imp = Dl4jMlp.importFrom(n);
        MultiLayerNetwork other = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(5).activation(Activation.IDENTITY).build()).build());
        other.init();
        String msg = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.writeBack(other, imp.spec(), imp.weights(), null))
                .getMessage();
        assertTrue(msg.contains("the network has 1 layers, the engine's 3"), msg);
    }

    /**
     * A write-back it refuses leaves the network as it was: moments of another shape, a network whose updater is not
     * Adam, or one with the same layer and parameter counts but other layer sizes (4-6-3 and 2-8-3 both have 51
     * parameters) are refused before anything is written. (The moments' shapes and the updater were checked after the
     * weights were written, and the layer sizes not at all: the weights went in scrambled.)
     */
    @Test
    void aRefusedWriteBackWritesNothing() {
        MultiLayerNetwork n = net(new Adam(1e-2), 17, 0, Activation.RELU, Activation.TANH);
        Dl4jMlp.Imported imp = Dl4jMlp.importFrom(n);
        MlpReference ref = new MlpReference(imp.spec(), imp.weights());
        Random rng = new Random(12);
        ref.forward(random(rng, 3 * IN), 3);
        ref.step(ref.backward(random(rng, 3 * 5)));
        MlpWeights[] mv = ref.moments();
        float[] before = n.params().toFloatVector();
        MlpWeights shortMoments = new MlpWeights(java.util.Arrays.copyOf(mv[0].w(), 2), java.util.Arrays.copyOf(mv[0].b(), 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.writeBack(n, imp.spec(), ref.weights(),
                new MlpOptimizerState(1, 0, shortMoments, mv[1])));
        assertTrue(e.getMessage().contains("weights for 2 layers, the spec has 3"), e.getMessage());
        assertArrayEquals(before, n.params().toFloatVector(), "moments of another shape: nothing written");
        assertEquals(0, n.getIterationCount());

        MultiLayerNetwork sgd = net(new Sgd(0.1), 17, 0, Activation.RELU, Activation.TANH);
        float[] sgdBefore = sgd.params().toFloatVector();
        RuntimeException r = assertThrows(IllegalStateException.class, () -> Dl4jMlp.writeBack(sgd, imp.spec(), ref.weights(),
                new MlpOptimizerState(1, 0, mv[0], mv[1])));
        assertTrue(r.getMessage().contains("layer 0 of the network has updater") && r.getMessage().contains("not Adam: it holds no Adam state"),
                r.getMessage());
        assertArrayEquals(sgdBefore, sgd.params().toFloatVector(), "a network without Adam's state: nothing written");

        MlpSpec small = new MlpSpec(4, java.util.List.of(new MlpSpec.Layer(4, 6, MlpSpec.Activation.RELU, 0),
                new MlpSpec.Layer(6, 3, MlpSpec.Activation.IDENTITY, 0)), MlpSpec.Optimizer.sgd(0.1));
        MultiLayerNetwork other = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().updater(new Sgd(0.1)).list()
                .layer(new DenseLayer.Builder().nIn(2).nOut(8).activation(Activation.RELU).build())
                .layer(new DenseLayer.Builder().nIn(8).nOut(3).activation(Activation.IDENTITY).build()).build());
        other.init();
        assertEquals(small.parameters(), other.numParams());
        float[] otherBefore = other.params().toFloatVector();
        MlpWeights w = new MlpWeights(new float[][] {random(rng, 24), random(rng, 18)}, new float[][] {random(rng, 6), random(rng, 3)});
        e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.writeBack(other, small, w, null));
        assertTrue(e.getMessage().contains("layer 0 of the network is 2 -> 8, the engine's 4 -> 6"), e.getMessage());
        assertArrayEquals(otherBefore, other.params().toFloatVector(), "other layer sizes: nothing written");
    }

    /**
     * Optimizer settings the engine cannot apply as given are refused where they are made: SGD with weight decay (the
     * SGD kernel and the reference step take no decay, so it was silently dropped), betas outside [0, 1) (beta1 = 1
     * divides Adam's step size by zero), and negative or non-finite rates, epsilon or decay.
     */
    @Test
    void optimizerSettingsTheEngineCannotApplyAreRefused() {
        MlpSpec.Optimizer.Kind adam = MlpSpec.Optimizer.Kind.ADAM;
        MlpSpec.Optimizer.Kind sgd = MlpSpec.Optimizer.Kind.SGD;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new MlpSpec.Optimizer(sgd, 0.1, 0, 0, 0, 0.01));
        assertTrue(e.getMessage().contains("weight decay 0.01 with SGD"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new MlpSpec.Optimizer(adam, 1e-3, 1.0, 0.999, 1e-8, 0));
        assertTrue(e.getMessage().contains("beta1 1.0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new MlpSpec.Optimizer(adam, 1e-3, 0.9, -0.1, 1e-8, 0));
        assertTrue(e.getMessage().contains("beta2 -0.1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new MlpSpec.Optimizer(adam, Double.NaN, 0.9, 0.999, 1e-8, 0));
        assertTrue(e.getMessage().contains("learning rate NaN"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MlpSpec.Optimizer.sgd(-0.1));
        assertTrue(e.getMessage().contains("learning rate -0.1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new MlpSpec.Optimizer(adam, 1e-3, 0.9, 0.999, -1e-8, 0));
        assertTrue(e.getMessage().contains("epsilon -1.0E-8"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new MlpSpec.Optimizer(adam, 1e-3, 0.9, 0.999, 1e-8, -0.01));
        assertTrue(e.getMessage().contains("weight decay -0.01"), e.getMessage());
        // what the engine runs is still accepted: AdamW, beta1 = 0, plain SGD
        assertEquals(0.05, new MlpSpec.Optimizer(adam, 0.01, 0.9, 0.999, 1e-8, 0.05).weightDecay());
        assertEquals(0.0, new MlpSpec.Optimizer(adam, 0.01, 0, 0.999, 1e-8, 0).beta1());
        assertEquals(0.1, MlpSpec.Optimizer.sgd(0.1).learningRate());
    }

    @Test
    void aTeachersSoftmaxHeadIsReadAsLogits() {
        MultiLayerNetwork n = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(1).updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(8).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(8).nOut(4).activation(Activation.SOFTMAX).build())
                .build());
        n.init();
        Dl4jMlp.Imported imp = Dl4jMlp.importFrom(n);
        assertTrue(imp.softmaxHead());
        assertEquals(MlpSpec.Activation.IDENTITY, imp.spec().layers().get(1).activation());
        float[] x = random(new Random(3), 2 * IN);
        double[] logits = new MlpReference(imp.spec(), imp.weights()).forward(x, 2);
        INDArray p = n.output(Nd4j.create(x, new long[] {2, IN}), false);
        for (int r = 0; r < 2; r++) {
            double z = 0;
            for (int c = 0; c < 4; c++) {
                z += Math.exp(logits[r * 4 + c]);
            }
            for (int c = 0; c < 4; c++) {
                assertEquals(Math.exp(logits[r * 4 + c]) / z, p.getDouble(r, c), 1e-6, "softmax of the logits is DL4J's output");
            }
        }
    }

    /**
     * A teacher trained with what only training uses (l2, Nesterovs, a separate bias updater, a scheduled dropout, weight
     * noise, a max-norm constraint, gradient clipping) is refused to be trained by the engine, but read to run forward:
     * no dropout, a placeholder optimizer, and a forward pass equal to DL4J's inference output. What changes the forward
     * pass (here an ELU) is still refused.
     */
    @Test
    void aTeacherIsReadForInferenceWhateverItsTrainingUsed() {
        MultiLayerNetwork n = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(6).updater(new Nesterovs(0.1, 0.9))
                .l2(1e-3).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(11).activation(Activation.RELU).biasUpdater(new Sgd(0.01))
                        .dropOut(new org.deeplearning4j.nn.conf.dropout.Dropout(new org.nd4j.linalg.schedule.StepSchedule(
                                org.nd4j.linalg.schedule.ScheduleType.EPOCH, 0.9, 0.5, 2)))
                        .weightNoise(new org.deeplearning4j.nn.conf.weightnoise.DropConnect(0.8))
                        .constrainWeights(new org.deeplearning4j.nn.conf.constraint.MaxNormConstraint(2, 1))
                        .gradientNormalization(org.deeplearning4j.nn.conf.GradientNormalization.ClipElementWiseAbsoluteValue).gradientNormalizationThreshold(1)
                        .build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(11).nOut(4).activation(Activation.SOFTMAX).build())
                .build());
        n.init();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(n));
        assertTrue(e.getMessage().startsWith("layer 0 (DenseLayer) has regularization"), e.getMessage());
        Dl4jMlp.Imported imp = Dl4jMlp.importForInference(n);
        assertTrue(imp.softmaxHead());
        assertEquals(MlpSpec.Optimizer.sgd(0), imp.spec().optimizer());
        for (MlpSpec.Layer l : imp.spec().layers()) {
            assertEquals(0, l.dropout(), "no dropout at inference");
        }
        int rows = 7;
        float[] x = random(new Random(9), rows * IN);
        double[] logits = new MlpReference(imp.spec(), imp.weights()).forward(x, rows);
        INDArray p = n.output(Nd4j.create(x, new long[] {rows, IN}), false);
        for (int r = 0; r < rows; r++) {
            double z = 0;
            for (int c = 0; c < 4; c++) {
                z += Math.exp(logits[r * 4 + c]);
            }
            for (int c = 0; c < 4; c++) {
                assertEquals(p.getDouble(r, c), Math.exp(logits[r * 4 + c]) / z, 1e-6, "row " + r + ", class " + c);
            }
        }
        MultiLayerNetwork elu = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(6).updater(new Nesterovs(0.1, 0.9))
                .list().layer(new DenseLayer.Builder().nIn(IN).nOut(6).activation(Activation.ELU).build())
                .layer(new DenseLayer.Builder().nIn(6).nOut(5).activation(Activation.IDENTITY).build()).build());
        elu.init();
        e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importForInference(elu));
        assertTrue(e.getMessage().startsWith("layer 0 (DenseLayer) has activation elu"), e.getMessage());
    }

    /** A two-layer network whose first DenseLayer {@code first} configures (13 -> 6 -> 5, Adam). */
    private static MultiLayerNetwork withFirstLayer(java.util.function.UnaryOperator<DenseLayer.Builder> first) {
        MultiLayerNetwork n = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(4).updater(new Adam(1e-3)).list()
                .layer(first.apply(new DenseLayer.Builder().nIn(IN).nOut(6).activation(Activation.TANH)).build())
                .layer(new DenseLayer.Builder().nIn(6).nOut(5).activation(Activation.IDENTITY).build()).build());
        n.init();
        return n;
    }

    /**
     * DL4J clips or rescales the gradient before the updater when a layer asks for gradient normalization; the
     * engine's step does not, so such a network must be refused (it was imported, and trained without the clipping).
     */
    @Test
    void gradientNormalizationIsRefusedWithTheLayer() {
        for (org.deeplearning4j.nn.conf.GradientNormalization g : new org.deeplearning4j.nn.conf.GradientNormalization[] {
                org.deeplearning4j.nn.conf.GradientNormalization.ClipElementWiseAbsoluteValue,
                org.deeplearning4j.nn.conf.GradientNormalization.RenormalizeL2PerLayer}) {
            MultiLayerNetwork n = withFirstLayer(d -> d.gradientNormalization(g).gradientNormalizationThreshold(1e-3));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(n), g.toString());
            assertTrue(e.getMessage().startsWith("layer 0 (DenseLayer) has gradient normalization " + g), e.getMessage());
        }
    }

    /**
     * A DenseLayer without a bias has no "b" parameter, and one with layer normalization has a gain "g" the engine
     * never applies: both are refused with the layer and the reason (the first crashed with a NullPointerException,
     * the second was imported as a plain layer, so a teacher's logits came out without its normalization).
     */
    @Test
    void layersWithoutBiasOrWithLayerNormAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Dl4jMlp.importFrom(withFirstLayer(d -> d.hasBias(false))));
        assertTrue(e.getMessage().startsWith("layer 0 (DenseLayer) has no bias"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(withFirstLayer(d -> d.hasLayerNorm(true))));
        assertTrue(e.getMessage().startsWith("layer 0 (DenseLayer) has layer normalization"), e.getMessage());
        MultiLayerNetwork headWithoutBias = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(8).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(8).nOut(4).activation(Activation.SOFTMAX)
                        .hasBias(false).build()).build());
        headWithoutBias.init();
        e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(headWithoutBias));
        assertTrue(e.getMessage().startsWith("layer 1 (OutputLayer) has no bias"), e.getMessage());
    }

    /**
     * A network that computes in float64 (or float16) takes DL4J steps in that type; the engine's are fp32, so it
     * does not reproduce them and refuses the network, naming its data type (it was imported, and trained in fp32).
     */
    @Test
    void aNetworkOfAnotherDataTypeIsRefused() {
        for (org.nd4j.linalg.api.buffer.DataType t : new org.nd4j.linalg.api.buffer.DataType[] {
                org.nd4j.linalg.api.buffer.DataType.DOUBLE, org.nd4j.linalg.api.buffer.DataType.HALF}) {
            MultiLayerNetwork n = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().dataType(t).updater(new Adam(1e-3)).list()
                    .layer(new DenseLayer.Builder().nIn(IN).nOut(6).activation(Activation.RELU).build())
                    .layer(new DenseLayer.Builder().nIn(6).nOut(5).activation(Activation.IDENTITY).build()).build());
            n.init();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(n), t.toString());
            assertTrue(e.getMessage().startsWith("the network computes in " + t), e.getMessage());
        }
    }

    /**
     * Every configuration of a dense layer, updater or dropout the engine does not reproduce is refused, each with
     * the layer and the reason: schedules (learning rate, dropout), other updaters and dropouts, l1 / l2 / weight
     * decay (on weights or biases), a separate bias updater, updaters that differ between layers, ReLU variants,
     * weight noise and constraints.
     */
    @Test
    void everyConfigurationTheEngineDoesNotReproduceIsRefused() {
        org.nd4j.linalg.schedule.ISchedule schedule = new org.nd4j.linalg.schedule.ExponentialSchedule(
                org.nd4j.linalg.schedule.ScheduleType.ITERATION, 1e-3, 0.99);
        java.util.Map<String, java.util.function.UnaryOperator<DenseLayer.Builder>> refused = new java.util.LinkedHashMap<>();
        refused.put("updater Sgd|one optimizer", d -> d.updater(new Sgd(0.1)));
        refused.put("updater Adam|one optimizer", d -> d.updater(new Adam(2e-3)));
        refused.put("separate bias updater|bias updater", d -> d.biasUpdater(new Sgd(0.1)));
        refused.put("l1|regularization", d -> d.l1(1e-4));
        refused.put("l2 on the bias|regularization", d -> d.l2Bias(1e-4));
        refused.put("weight decay|regularization", d -> { d.weightDecay(1e-4); return d; });
        refused.put("weight decay on the bias|regularization", d -> { d.weightDecayBias(1e-4, true); return d; });
        refused.put("scheduled dropout|(unscheduled) dropout", d -> d.dropOut(new org.deeplearning4j.nn.conf.dropout.Dropout(schedule)));
        refused.put("Gaussian dropout|(unscheduled) dropout", d -> d.dropOut(new org.deeplearning4j.nn.conf.dropout.GaussianDropout(0.1)));
        refused.put("Gaussian noise|(unscheduled) dropout", d -> d.dropOut(new org.deeplearning4j.nn.conf.dropout.GaussianNoise(0.1)));
        refused.put("leaky ReLU|has activation", d -> d.activation(Activation.LEAKYRELU));
        refused.put("ReLU6|has activation", d -> d.activation(Activation.RELU6));
        refused.put("thresholded ReLU|has activation", d -> d.activation(new org.nd4j.linalg.activations.impl.ActivationReLU(null, 0.5, null)));
        refused.put("softmax on a DenseLayer|has activation", d -> d.activation(Activation.SOFTMAX));
        refused.put("hard sigmoid|has activation", d -> d.activation(Activation.HARDSIGMOID));
        refused.put("weight noise|weight noise", d -> d.weightNoise(new org.deeplearning4j.nn.conf.weightnoise.DropConnect(0.9)));
        refused.put("a constraint|constraints", d -> d.constrainWeights(new org.deeplearning4j.nn.conf.constraint.MaxNormConstraint(2, 1)));
        for (var c : refused.entrySet()) {
            String[] what = c.getKey().split("\\|");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(withFirstLayer(c.getValue())),
                    what[0]);
            assertTrue(e.getMessage().contains(what[1]), what[0] + ": " + e.getMessage());
            assertTrue(e.getMessage().matches("layer [01] \\(DenseLayer\\) .*"), what[0] + ": " + e.getMessage());
        }
        for (IUpdater u : new IUpdater[] {new Adam(schedule), new Sgd(schedule), new org.nd4j.linalg.learning.config.AMSGrad(1e-3),
                new org.nd4j.linalg.learning.config.AdaMax(1e-3), new org.nd4j.linalg.learning.config.Nadam(1e-3)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(net(u, 1, 0,
                    Activation.RELU)), u.toString());
            assertTrue(e.getMessage().startsWith("updater " + u) && e.getMessage().contains("Adam or Sgd with a fixed learning rate"),
                    e.getMessage());
        }
        // and what it runs is read as DL4J has it: SGD's rate, Adam's betas and epsilon, plain dropout as a drop probability
        MlpSpec sgd = Dl4jMlp.importFrom(new MultiLayerNetwork(new NeuralNetConfiguration.Builder().updater(new Sgd(0.07)).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(6).activation(Activation.SIGMOID).dropOut(0.8).build())
                .layer(new DenseLayer.Builder().nIn(6).nOut(5).activation(Activation.IDENTITY).build()).build())).spec();
        assertEquals(MlpSpec.Optimizer.sgd(0.07), sgd.optimizer());
        assertEquals(0.2, sgd.layers().get(0).dropout(), 1e-12);
        assertEquals(0.0, sgd.layers().get(1).dropout());
        MlpSpec adam = Dl4jMlp.importFrom(new MultiLayerNetwork(new NeuralNetConfiguration.Builder()
                .updater(new Adam(1e-3, 0.8, 0.99, 1e-6)).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(6).activation(new org.nd4j.linalg.activations.impl.ActivationReLU()).build())
                .layer(new DenseLayer.Builder().nIn(6).nOut(5).activation(Activation.IDENTITY).build()).build())).spec();
        assertEquals(MlpSpec.Activation.RELU, adam.layers().get(0).activation());
        assertEquals(new MlpSpec.Optimizer(MlpSpec.Optimizer.Kind.ADAM, 1e-3, 0.8, 0.99, 1e-6, 0), adam.optimizer());
    }

    /** The message {@link Dl4jMlp#importFrom} refuses {@code n} with. */
    private static String refusal(MultiLayerNetwork n) {
        return assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(n)).getMessage();
    }

    private static MultiLayerNetwork init(org.deeplearning4j.nn.conf.MultiLayerConfiguration conf) {
        MultiLayerNetwork n = new MultiLayerNetwork(conf);
        n.init();
        return n;
    }

    /**
     * Each refusal names the layer and what it has that the engine does not run: an input preprocessor (which one: a
     * {@code setInputType} adds one unasked), a layer that is not dense (a convolution was refused as "has an input
     * preprocessor"), an OutputLayer before the last layer or without softmax, ReLU with a cap, a threshold or a negative
     * slope (each named with its settings: the message said "has activation relu"),
     * DL4J's precise GELU, regularization of the biases alone (the message showed the weights' empty list, "has
     * regularization []"), and weight noise or constraints (the message said "weight noise or constraints", not which,
     * nor what). A bias updater equal to the weight updater is no separate optimizer and is imported.
     */
    @Test
    void eachRefusalNamesTheLayerAndWhatItHas() {
        String m = refusal(init(new NeuralNetConfiguration.Builder().updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nOut(6).activation(Activation.RELU).build())
                .layer(new DenseLayer.Builder().nOut(5).activation(Activation.IDENTITY).build())
                .setInputType(org.deeplearning4j.nn.conf.inputs.InputType.convolutional(3, 3, 2)).build()));
        assertTrue(m.startsWith("layer 0 (DenseLayer) has an input preprocessor (CnnToFeedForwardPreProcessor"), m);
        m = refusal(init(new NeuralNetConfiguration.Builder().updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(6).activation(Activation.RELU).build())
                .layer(new DenseLayer.Builder().nIn(6).nOut(5).activation(Activation.IDENTITY).build())
                .inputPreProcessor(1, new org.deeplearning4j.nn.conf.preprocessor.ComposableInputPreProcessor(
                        new org.deeplearning4j.nn.conf.preprocessor.FeedForwardToRnnPreProcessor(),
                        new org.deeplearning4j.nn.conf.preprocessor.RnnToFeedForwardPreProcessor())).build()));
        assertTrue(m.startsWith("layer 1 (DenseLayer) has an input preprocessor (ComposableInputPreProcessor"), m);

        m = refusal(init(new NeuralNetConfiguration.Builder().list()
                .layer(new org.deeplearning4j.nn.conf.layers.ConvolutionLayer.Builder(3, 3).nIn(1).nOut(2).build())
                .layer(new DenseLayer.Builder().nOut(4).activation(Activation.IDENTITY).build())
                .setInputType(org.deeplearning4j.nn.conf.inputs.InputType.convolutionalFlat(8, 8, 1)).build()));
        assertTrue(m.startsWith("layer 0 (ConvolutionLayer) is not a DenseLayer"), m);
        m = refusal(init(new NeuralNetConfiguration.Builder().updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(6).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(6).nOut(4).activation(Activation.SOFTMAX).build())
                .layer(new DenseLayer.Builder().nIn(4).nOut(3).activation(Activation.IDENTITY).build()).build()));
        assertTrue(m.startsWith("layer 1 (OutputLayer) is not a DenseLayer") && m.contains("a softmax OutputLayer last"), m);
        m = refusal(init(new NeuralNetConfiguration.Builder().updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(6).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MSE).nIn(6).nOut(4).activation(Activation.IDENTITY).build())
                .build()));
        assertTrue(m.startsWith("layer 1 (OutputLayer) is an OutputLayer with identity") && m.contains("softmax OutputLayer"), m);

        // a ReLU variant is named with its settings: its toString is "relu" for all, so the message read "has activation relu;
        // the GPU MLP engine runs identity, relu, ..."
        m = refusal(withFirstLayer(d -> d.activation(new org.nd4j.linalg.activations.impl.ActivationReLU(6.0, null, null))));
        assertTrue(m.startsWith("layer 0 (DenseLayer) has activation relu with max 6.0; "), m);
        m = refusal(withFirstLayer(d -> d.activation(new org.nd4j.linalg.activations.impl.ActivationReLU(null, 0.5, 0.1))));
        assertTrue(m.startsWith("layer 0 (DenseLayer) has activation relu with threshold 0.5, negative slope 0.1; "), m);
        m = refusal(init(new NeuralNetConfiguration.Builder().updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(6).activation(Activation.GELU).build())
                .layer(new DenseLayer.Builder().nIn(6).nOut(4).activation(new org.nd4j.linalg.activations.impl.ActivationGELU(true)).build())
                .layer(new DenseLayer.Builder().nIn(4).nOut(3).activation(Activation.IDENTITY).build()).build()));
        assertTrue(m.startsWith("layer 1 (DenseLayer) has activation") && m.contains("default gelu (x sigmoid(1.702 x))"), m);

        m = refusal(withFirstLayer(d -> d.l2Bias(1e-4)));
        assertTrue(m.startsWith("layer 0 (DenseLayer) has regularization of its biases [L2Regularization") && !m.contains("[]"), m);
        m = refusal(withFirstLayer(d -> d.l1(1e-4).l2Bias(1e-4)));
        assertTrue(m.startsWith("layer 0 (DenseLayer) has regularization of its weights [L1Regularization")
                && m.contains(" and of its biases [L2Regularization"), m);
        m = refusal(withFirstLayer(d -> d.weightNoise(new org.deeplearning4j.nn.conf.weightnoise.DropConnect(0.9))));
        assertTrue(m.startsWith("layer 0 (DenseLayer) has weight noise DropConnect") && !m.contains("constraint"), m);
        m = refusal(withFirstLayer(d -> d.weightNoise(new org.deeplearning4j.nn.conf.weightnoise.WeightNoise(
                new org.deeplearning4j.nn.conf.distribution.NormalDistribution(0, 0.1)))));
        assertTrue(m.startsWith("layer 0 (DenseLayer) has weight noise WeightNoise"), m);
        m = refusal(withFirstLayer(d -> d.constrainBias(new org.deeplearning4j.nn.conf.constraint.NonNegativeConstraint())));
        assertTrue(m.startsWith("layer 0 (DenseLayer) has constraints [NonNegativeConstraint") && !m.contains("weight noise"), m);

        MlpSpec same = Dl4jMlp.importFrom(withFirstLayer(d -> d.biasUpdater(new Adam(1e-3)))).spec();
        assertEquals(MlpSpec.Optimizer.adam(1e-3), same.optimizer(), "a bias updater equal to the weights' is the one optimizer");
    }

    @Test
    void whatTheEngineCannotRunIsRefusedWithTheLayerAndTheReason() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Dl4jMlp.importFrom(net(new Nesterovs(0.1, 0.9), 1, 0, Activation.RELU)));
        assertTrue(e.getMessage().contains("Nesterovs") && e.getMessage().contains("Adam or Sgd"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(net(new Adam(1e-3), 1, 0, Activation.ELU)));
        assertTrue(e.getMessage().startsWith("layer 0 (DenseLayer) has activation elu"), e.getMessage());
        MultiLayerNetwork precise = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(4).activation(new org.nd4j.linalg.activations.impl.ActivationGELU(true)).build())
                .layer(new DenseLayer.Builder().nIn(4).nOut(2).activation(Activation.IDENTITY).build()).build());
        e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(precise));
        assertTrue(e.getMessage().contains("layer 0 (DenseLayer) has activation") && e.getMessage().contains("default gelu"), e.getMessage());
        MultiLayerNetwork l2 = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().l2(1e-4).updater(new Adam(1e-3)).list()
                .layer(new DenseLayer.Builder().nIn(IN).nOut(4).activation(Activation.IDENTITY).build()).build());
        e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(l2));
        assertTrue(e.getMessage().contains("layer 0 (DenseLayer) has regularization"), e.getMessage());
        MultiLayerNetwork conv = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().list()
                .layer(new org.deeplearning4j.nn.conf.layers.ConvolutionLayer.Builder(3, 3).nIn(1).nOut(2).build())
                .layer(new DenseLayer.Builder().nOut(4).activation(Activation.IDENTITY).build())
                .setInputType(org.deeplearning4j.nn.conf.inputs.InputType.convolutionalFlat(8, 8, 1)).build());
        e = assertThrows(IllegalArgumentException.class, () -> Dl4jMlp.importFrom(conv));
        assertTrue(e.getMessage().contains("layer 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new MlpSpec(4, java.util.List.of(
                new MlpSpec.Layer(4, 8, MlpSpec.Activation.RELU, 0), new MlpSpec.Layer(9, 2, MlpSpec.Activation.IDENTITY, 0)),
                MlpSpec.Optimizer.adam(1e-3)));
        assertTrue(e.getMessage().contains("layer 1 takes 9 inputs, but the layer before gives 8"), e.getMessage());
    }
}
