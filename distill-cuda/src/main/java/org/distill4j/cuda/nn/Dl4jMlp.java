package org.distill4j.cuda.nn;

import org.deeplearning4j.nn.conf.GradientNormalization;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.dropout.Dropout;
import org.deeplearning4j.nn.conf.dropout.IDropout;
import org.deeplearning4j.nn.conf.layers.BaseLayer;
import org.deeplearning4j.nn.conf.layers.BaseOutputLayer;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.activations.IActivation;
import org.nd4j.linalg.activations.impl.ActivationGELU;
import org.nd4j.linalg.activations.impl.ActivationIdentity;
import org.nd4j.linalg.activations.impl.ActivationReLU;
import org.nd4j.linalg.activations.impl.ActivationSigmoid;
import org.nd4j.linalg.activations.impl.ActivationSoftmax;
import org.nd4j.linalg.activations.impl.ActivationTanH;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.Sgd;

import java.util.ArrayList;
import java.util.List;

/**
 * Moves dense networks between DL4J and the GPU MLP engine: {@link #importFrom} reads a
 * MultiLayerNetwork's layers, activations, dropout, optimizer and weights (refusing, with the layer and
 * the reason, what the engine cannot run exactly), and {@link #exportTo} builds a MultiLayerNetwork from
 * them, so a student trained on the GPU is saved as a normal DL4J model and runs anywhere.
 */
public final class Dl4jMlp {
    private Dl4jMlp() {
    }

    /**
     * What {@link #importFrom} found.
     *
     * @param softmaxHead the last layer was a softmax OutputLayer: the engine gives its pre-softmax logits
     *                    (as {@code Dl4jTeacher} does for such a teacher)
     */
    public record Imported(MlpSpec spec, MlpWeights weights, boolean softmaxHead) {
    }

    /** Reads {@code net} (initialized if it is not yet) to be trained by the engine. */
    public static Imported importFrom(MultiLayerNetwork net) {
        return read(net, true);
    }

    /**
     * Reads {@code net} (initialized if it is not yet) to be run forward only, as the engine runs a teacher: what only
     * training uses (regularization, weight noise, constraints, gradient normalization, the updaters, dropout of any kind)
     * is not refused, since none of it changes the inference forward pass that {@code Dl4jTeacher} takes. The spec has no
     * dropout and a placeholder optimizer (SGD at learning rate 0). What changes the forward pass is refused as by
     * {@link #importFrom}.
     */
    public static Imported importForInference(MultiLayerNetwork net) {
        return read(net, false);
    }

    private static Imported read(MultiLayerNetwork net, boolean training) {
        if (net.getLayers() == null || net.getLayers().length == 0) {
            net.init();
        }
        MultiLayerConfiguration conf = net.getLayerWiseConfigurations();
        if (conf.getDataType() != null && conf.getDataType() != org.nd4j.linalg.api.buffer.DataType.FLOAT) {
            throw new IllegalArgumentException("the network computes in " + conf.getDataType() + "; the GPU MLP engine computes in fp32 "
                    + "and would not reproduce its steps (build it with dataType(DataType.FLOAT), or train with the DL4J path)");
        }
        int n = net.getnLayers();
        List<MlpSpec.Layer> layers = new ArrayList<>();
        float[][] w = new float[n][];
        float[][] b = new float[n][];
        IUpdater updater = null;
        boolean softmaxHead = false;
        for (int i = 0; i < n; i++) {
            org.deeplearning4j.nn.conf.layers.Layer lc = conf.getConf(i).getLayer();
            String where = "layer " + i + " (" + lc.getClass().getSimpleName() + ")";
            boolean output = lc instanceof OutputLayer;
            // the layer's kind first: a convolution's preprocessor is not what keeps it off the engine
            if (!(lc instanceof DenseLayer) && !(output && i == n - 1)) {
                throw new IllegalArgumentException(where + " is not a DenseLayer; the GPU MLP engine runs DenseLayers (and a softmax "
                        + "OutputLayer last, for teachers)");
            }
            if (conf.getInputPreProcess(i) != null) { // named: setInputType adds one unasked
                throw new IllegalArgumentException(where + " has an input preprocessor (" + conf.getInputPreProcess(i)
                        + "); the GPU MLP engine runs plain dense stacks");
            }
            BaseLayer dense = (BaseLayer) lc;
            if (training) {
                refuseTrainingOnly(dense, where);
            }
            boolean bias = lc instanceof DenseLayer d ? d.hasBias() : ((BaseOutputLayer) lc).hasBias();
            if (!bias) {
                throw new IllegalArgumentException(where + " has no bias (hasBias(false)); the GPU MLP engine runs dense layers with one");
            }
            if (lc instanceof DenseLayer d && d.hasLayerNorm()) {
                throw new IllegalArgumentException(where + " has layer normalization (hasLayerNorm(true)), which the GPU MLP engine does "
                        + "not apply");
            }
            MlpSpec.Activation act = activation(dense.getActivationFn(), where, output);
            if (output) {
                softmaxHead = true;
            }
            if (training) {
                IUpdater u = dense.getIUpdater();
                if (updater == null) {
                    updater = u;
                } else if (!updater.equals(u)) {
                    throw new IllegalArgumentException(where + " has updater " + u + ", other layers " + updater + "; the GPU MLP engine "
                            + "takes one optimizer for the whole network");
                }
            }
            int in = Math.toIntExact(((org.deeplearning4j.nn.conf.layers.FeedForwardLayer) lc).getNIn());
            int out = Math.toIntExact(((org.deeplearning4j.nn.conf.layers.FeedForwardLayer) lc).getNOut());
            layers.add(new MlpSpec.Layer(in, out, act, training ? dropout(dense.getIDropout(), where) : 0));
            w[i] = flatten(net.getLayer(i).getParam("W"), in, out);
            b[i] = net.getLayer(i).getParam("b").dup().data().asFloat();
        }
        MlpSpec spec = new MlpSpec(layers.get(0).in(), layers, training ? optimizer(updater) : MlpSpec.Optimizer.sgd(0));
        MlpWeights weights = new MlpWeights(w, b);
        weights.check(spec);
        return new Imported(spec, weights, softmaxHead);
    }

    /** Refuses what only training uses, where the engine would train differently from DL4J. */
    private static void refuseTrainingOnly(BaseLayer dense, String where) {
        List<?> onWeights = dense.getRegularization();
        List<?> onBiases = dense.getRegularizationBias();
        if (!onWeights.isEmpty() || !onBiases.isEmpty()) {
            String which = (onWeights.isEmpty() ? "" : "of its weights " + onWeights)
                    + (onWeights.isEmpty() || onBiases.isEmpty() ? "" : " and ")
                    + (onBiases.isEmpty() ? "" : "of its biases " + onBiases);
            throw new IllegalArgumentException(where + " has regularization " + which
                    + "; the GPU MLP engine does not apply it (remove it, or train with the DL4J path)");
        }
        if (dense.getWeightNoise() != null) {
            throw new IllegalArgumentException(where + " has weight noise " + dense.getWeightNoise()
                    + ", which the GPU MLP engine does not apply");
        }
        if (dense.getConstraints() != null && !dense.getConstraints().isEmpty()) {
            throw new IllegalArgumentException(where + " has constraints " + dense.getConstraints()
                    + ", which the GPU MLP engine does not apply");
        }
        GradientNormalization gn = dense.getGradientNormalization();
        if (gn != null && gn != GradientNormalization.None) {
            throw new IllegalArgumentException(where + " has gradient normalization " + gn + " (threshold "
                    + dense.getGradientNormalizationThreshold() + "), which the GPU MLP engine does not apply (remove it, or train "
                    + "with the DL4J path)");
        }
        if (dense.getBiasUpdater() != null && !dense.getBiasUpdater().equals(dense.getIUpdater())) {
            throw new IllegalArgumentException(where + " has a separate bias updater " + dense.getBiasUpdater()
                    + ", which the GPU MLP engine does not support");
        }
    }

    /** A MultiLayerNetwork of DenseLayers with {@code spec}'s shapes, activations, dropout and optimizer, holding {@code weights}. */
    public static MultiLayerNetwork exportTo(MlpSpec spec, MlpWeights weights) {
        weights.check(spec);
        MlpSpec.Optimizer o = spec.optimizer();
        IUpdater u = o.kind() == MlpSpec.Optimizer.Kind.SGD ? new Sgd(o.learningRate())
                : new Adam(o.learningRate(), o.beta1(), o.beta2(), o.epsilon());
        if (o.weightDecay() != 0) {
            throw new IllegalArgumentException("weight decay " + o.weightDecay() + " has no DL4J equivalent in this export");
        }
        NeuralNetConfiguration.ListBuilder lb = new NeuralNetConfiguration.Builder().updater(u).list();
        for (MlpSpec.Layer l : spec.layers()) {
            DenseLayer.Builder d = new DenseLayer.Builder().nIn(l.in()).nOut(l.out()).activation(dl4j(l.activation()));
            if (l.dropout() > 0) {
                d.dropOut(1 - l.dropout()); // DL4J takes the probability of keeping a unit
            }
            lb.layer(d.build());
        }
        MultiLayerNetwork net = new MultiLayerNetwork(lb.build());
        net.init();
        for (int i = 0; i < spec.layers().size(); i++) {
            MlpSpec.Layer l = spec.layers().get(i);
            float[][] rows = new float[l.in()][l.out()];
            for (int r = 0; r < l.in(); r++) {
                System.arraycopy(weights.w()[i], r * l.out(), rows[r], 0, l.out());
            }
            net.getLayer(i).setParam("W", Nd4j.create(rows));
            net.getLayer(i).setParam("b", Nd4j.create(weights.b()[i], new long[] {1, l.out()}));
        }
        return net;
    }

    /**
     * Writes {@code weights} into {@code net} (which must have {@code spec}'s shapes, e.g. the network the
     * engine imported), and, for Adam, the moments into DL4J's updater state; with a state, the network's and
     * each layer's iteration and epoch counts, as DL4J's own fit leaves them, so the next DL4J step continues
     * exactly where the engine stopped. A state of no steps without moments (Adam before its first step,
     * {@link MlpOptimizerState#fresh()}) writes zero moments.
     */
    public static void writeBack(MultiLayerNetwork net, MlpSpec spec, MlpWeights weights, MlpOptimizerState state) {
        weights.check(spec);
        if (net.getnLayers() != spec.layers().size()) {
            throw new IllegalArgumentException("the network has " + net.getnLayers() + " layers, the engine's " + spec.layers().size());
        }
        INDArray params = net.params();
        if (params.length() != spec.parameters()) {
            throw new IllegalArgumentException("the network has " + params.length() + " parameters, the engine's " + spec.parameters());
        }
        for (int i = 0; i < spec.layers().size(); i++) {
            MlpSpec.Layer l = spec.layers().get(i);
            org.deeplearning4j.nn.conf.layers.Layer lc = net.getLayerWiseConfigurations().getConf(i).getLayer();
            long in = lc instanceof org.deeplearning4j.nn.conf.layers.FeedForwardLayer f ? f.getNIn() : -1;
            long out = lc instanceof org.deeplearning4j.nn.conf.layers.FeedForwardLayer f ? f.getNOut() : -1;
            if (in != l.in() || out != l.out()) {
                throw new IllegalArgumentException("layer " + i + " of the network is " + in + " -> " + out + ", the engine's " + l.in()
                        + " -> " + l.out());
            }
        }
        // everything is checked before anything is written: a refused write-back leaves the network as it was
        boolean adam = spec.optimizer().kind() == MlpSpec.Optimizer.Kind.ADAM;
        if (state != null && adam && state.m() == null && state.steps() > 0) {
            throw new IllegalArgumentException("writeBack: the spec's optimizer is Adam, but the state (" + state.steps()
                    + " steps) holds no moments; pass the engine's optimizer state, or null to write the weights alone");
        }
        float[] flat = dl4jOrder(spec, weights);
        // no moments at 0 steps: Adam before its first step, whose moments are zeros (MlpOptimizerState)
        float[] m = state != null && adam ? (state.m() != null ? dl4jOrder(spec, state.m()) : new float[flat.length]) : null;
        float[] v = state != null && adam ? (state.v() != null ? dl4jOrder(spec, state.v()) : new float[flat.length]) : null;
        List<org.deeplearning4j.nn.updater.UpdaterBlock> blocks = state != null && adam ? adamBlocks(net) : null;
        params.assign(Nd4j.create(flat));
        if (state == null) {
            return;
        }
        if (adam) {
            for (org.deeplearning4j.nn.updater.UpdaterBlock block : blocks) {
                int from = block.getParamOffsetStart();
                int to = block.getParamOffsetEnd();
                INDArray view = block.getUpdaterView();
                // the block's state view: m of its parameters, then v, in the flat parameter order
                view.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, to - from))
                        .assign(Nd4j.create(java.util.Arrays.copyOfRange(m, from, to)));
                view.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(to - from, 2L * (to - from)))
                        .assign(Nd4j.create(java.util.Arrays.copyOfRange(v, from, to)));
                block.setUpdaterViewRequiresInitialization(false);
            }
        }
        net.setIterationCount(state.steps());
        net.setEpochCount(state.epochs());
        // each layer keeps counts of its own (scheduled dropout and weight noise read them); DL4J's fit brings them to
        // the network's after every step and epoch (synchronizeIterEpochCounts), and so does a write-back
        for (org.deeplearning4j.nn.api.Layer layer : net.getLayers()) {
            layer.setIterationCount(state.steps());
            layer.setEpochCount(state.epochs());
        }
    }

    /**
     * Where {@code net}'s training stands: its iteration and epoch counts and, for Adam, the moments of its
     * updater (null before its first step, when they are zeros), so the engine's first step continues
     * DL4J's training exactly (a student pretrained with DL4J, then distilled on the GPU).
     */
    public static MlpOptimizerState readState(MultiLayerNetwork net, MlpSpec spec) {
        if (net.params().length() != spec.parameters()) {
            throw new IllegalArgumentException("the network has " + net.params().length() + " parameters, the spec " + spec.parameters());
        }
        int steps = net.getIterationCount();
        int epochs = net.getEpochCount();
        if (spec.optimizer().kind() != MlpSpec.Optimizer.Kind.ADAM || steps == 0) {
            return new MlpOptimizerState(steps, epochs, null, null);
        }
        float[] m = new float[Math.toIntExact(spec.parameters())];
        float[] v = new float[m.length];
        for (org.deeplearning4j.nn.updater.UpdaterBlock block : adamBlocks(net)) {
            int from = block.getParamOffsetStart();
            int to = block.getParamOffsetEnd();
            float[] state = block.getUpdaterView().toFloatVector();
            System.arraycopy(state, 0, m, from, to - from);
            System.arraycopy(state, to - from, v, from, to - from);
        }
        return new MlpOptimizerState(steps, epochs, fromDl4jOrder(spec, m), fromDl4jOrder(spec, v));
    }

    /** The updater blocks of an Adam network, each checked to hold [m, v] of its parameters. */
    private static List<org.deeplearning4j.nn.updater.UpdaterBlock> adamBlocks(MultiLayerNetwork net) {
        for (int i = 0; i < net.getnLayers(); i++) {
            org.deeplearning4j.nn.conf.layers.Layer lc = net.getLayerWiseConfigurations().getConf(i).getLayer();
            IUpdater lu = lc instanceof BaseLayer bl ? bl.getIUpdater() : null;
            if (!(lu instanceof Adam)) {
                throw new IllegalStateException("layer " + i + " of the network has updater " + lu + ", not Adam: it holds no Adam state "
                        + "to read or write");
            }
        }
        org.deeplearning4j.nn.updater.BaseMultiLayerUpdater<?> u = (org.deeplearning4j.nn.updater.BaseMultiLayerUpdater<?>) net.getUpdater();
        List<org.deeplearning4j.nn.updater.UpdaterBlock> blocks = u.getUpdaterBlocks();
        for (org.deeplearning4j.nn.updater.UpdaterBlock block : blocks) {
            int from = block.getParamOffsetStart();
            int to = block.getParamOffsetEnd();
            INDArray view = block.getUpdaterView();
            if (view == null || view.length() != 2L * (to - from)) {
                throw new IllegalStateException("DL4J's Adam state for parameters [" + from + ", " + to + ") is not [m, v]: "
                        + (view == null ? "none" : view.length() + " values"));
            }
        }
        return blocks;
    }

    /** The inverse of {@link #dl4jOrder}. */
    static MlpWeights fromDl4jOrder(MlpSpec spec, float[] flat) {
        float[][] ws = new float[spec.layers().size()][];
        float[][] bs = new float[spec.layers().size()][];
        int off = 0;
        for (int li = 0; li < ws.length; li++) {
            MlpSpec.Layer l = spec.layers().get(li);
            ws[li] = new float[l.in() * l.out()];
            for (int o = 0; o < l.out(); o++) {
                for (int i = 0; i < l.in(); i++) {
                    ws[li][i * l.out() + o] = flat[off + o * l.in() + i];
                }
            }
            off += l.in() * l.out();
            bs[li] = java.util.Arrays.copyOfRange(flat, off, off + l.out());
            off += l.out();
        }
        return new MlpWeights(ws, bs);
    }

    /** Parameters in DL4J's flat order: per layer W in column-major ({@code 'f'}) order, then b. */
    static float[] dl4jOrder(MlpSpec spec, MlpWeights p) {
        p.check(spec);
        float[] flat = new float[Math.toIntExact(spec.parameters())];
        int off = 0;
        for (int li = 0; li < spec.layers().size(); li++) {
            MlpSpec.Layer l = spec.layers().get(li);
            float[] w = p.w()[li];
            for (int o = 0; o < l.out(); o++) {
                for (int i = 0; i < l.in(); i++) {
                    flat[off + o * l.in() + i] = w[i * l.out() + o];
                }
            }
            off += l.in() * l.out();
            System.arraycopy(p.b()[li], 0, flat, off, l.out());
            off += l.out();
        }
        return flat;
    }

    private static float[] flatten(INDArray w, int in, int out) {
        float[][] m = w.toFloatMatrix();
        float[] f = new float[in * out];
        for (int r = 0; r < in; r++) {
            System.arraycopy(m[r], 0, f, r * out, out);
        }
        return f;
    }

    private static MlpSpec.Activation activation(IActivation a, String where, boolean output) {
        if (output) {
            if (a instanceof ActivationSoftmax) {
                return MlpSpec.Activation.IDENTITY;
            }
            throw new IllegalArgumentException(where + " is an OutputLayer with " + a + "; the engine takes a softmax OutputLayer (a "
                    + "teacher's head) or DenseLayers");
        }
        if (a instanceof ActivationIdentity) {
            return MlpSpec.Activation.IDENTITY;
        }
        if (a instanceof ActivationReLU r && zeroOrUnset(r.getThreshold()) && zeroOrUnset(r.getNegativeSlope()) && r.getMax() == null) {
            return MlpSpec.Activation.RELU;
        }
        if (a instanceof ActivationTanH) {
            return MlpSpec.Activation.TANH;
        }
        if (a instanceof ActivationSigmoid) {
            return MlpSpec.Activation.SIGMOID;
        }
        if (a instanceof ActivationGELU g && !preciseGelu(g)) {
            return MlpSpec.Activation.GELU_SIGMOID;
        }
        throw new IllegalArgumentException(where + " has activation " + describe(a) + "; the GPU MLP engine runs identity, relu, tanh, "
                + "sigmoid and DL4J's default gelu (x sigmoid(1.702 x))");
    }

    /** {@code a} as a message names it: a ReLU with its settings (its own toString says "relu" for every variant). */
    private static String describe(IActivation a) {
        if (!(a instanceof ActivationReLU r)) {
            return String.valueOf(a);
        }
        List<String> set = new ArrayList<>();
        if (r.getMax() != null) {
            set.add("max " + r.getMax());
        }
        if (!zeroOrUnset(r.getThreshold())) {
            set.add("threshold " + r.getThreshold());
        }
        if (!zeroOrUnset(r.getNegativeSlope())) {
            set.add("negative slope " + r.getNegativeSlope());
        }
        return a + " with " + String.join(", ", set);
    }

    private static boolean zeroOrUnset(Double d) {
        return d == null || d == 0.0;
    }

    private static boolean preciseGelu(ActivationGELU g) {
        return g.toString().contains("precise=true") || g.equals(new ActivationGELU(true));
    }

    private static Activation dl4j(MlpSpec.Activation a) {
        return switch (a) {
            case IDENTITY -> Activation.IDENTITY;
            case RELU -> Activation.RELU;
            case TANH -> Activation.TANH;
            case SIGMOID -> Activation.SIGMOID;
            case GELU_SIGMOID -> Activation.GELU;
        };
    }

    private static double dropout(IDropout d, String where) {
        if (d == null) {
            return 0;
        }
        if (d instanceof Dropout dr && dr.getPSchedule() == null) {
            return 1 - dr.getP();
        }
        throw new IllegalArgumentException(where + " has " + d + "; the GPU MLP engine runs plain (unscheduled) dropout");
    }

    private static MlpSpec.Optimizer optimizer(IUpdater u) {
        if (u instanceof Adam a && a.getLearningRateSchedule() == null) {
            return new MlpSpec.Optimizer(MlpSpec.Optimizer.Kind.ADAM, a.getLearningRate(), a.getBeta1(), a.getBeta2(), a.getEpsilon(), 0);
        }
        if (u instanceof Sgd s && s.getLearningRateSchedule() == null) {
            return MlpSpec.Optimizer.sgd(s.getLearningRate());
        }
        throw new IllegalArgumentException("updater " + u + " is not supported by the GPU MLP engine; use Adam or Sgd with a fixed "
                + "learning rate");
    }
}
