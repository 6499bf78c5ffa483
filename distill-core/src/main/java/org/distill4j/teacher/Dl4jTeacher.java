package org.distill4j.teacher;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.layers.FeedForwardLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.data.Batch;
import org.distill4j.internal.Nd4jArrays;
import org.distill4j.loss.TeacherValues;
import org.nd4j.linalg.activations.IActivation;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A teacher backed by a DL4J {@link MultiLayerNetwork} or a single-input, single-output
 * {@link ComputationGraph}, run in inference mode (no dropout).
 *
 * <p>What it returns:
 * <ul>
 *   <li>identity last layer: its output, as logits;</li>
 *   <li>softmax last layer of a MultiLayerNetwork that is a plain {@code DenseLayer} / {@code OutputLayer}
 *       with no input preprocessor:
 *       the exact pre-softmax logits, {@code input * W + b} (keeps the small probabilities that float
 *       softmax would round to zero, which matter at high temperature);</li>
 *   <li>any other softmax output: the probabilities (losses use them exactly, see {@link TeacherValues}).</li>
 * </ul>
 * Any other output activation is rejected: a teacher must yield a distribution.
 */
public final class Dl4jTeacher implements Teacher {
    private enum Mode { OUTPUT_LOGITS, PRE_SOFTMAX, OUTPUT_PROBABILITIES }

    private final MultiLayerNetwork mln;
    private final ComputationGraph graph;
    private final int classes;
    private final Mode mode;

    private Dl4jTeacher(MultiLayerNetwork mln, ComputationGraph graph, int classes, Mode mode) {
        this.mln = mln;
        this.graph = graph;
        this.classes = classes;
        this.mode = mode;
    }

    /** A teacher from a MultiLayerNetwork (initialized if it is not yet). */
    public static Dl4jTeacher of(MultiLayerNetwork net) {
        Objects.requireNonNull(net, "teacher network");
        org.deeplearning4j.nn.conf.layers.Layer conf = Nd4jArrays.lastLayer(net);
        int last = net.getnLayers() - 1;
        IActivation act = Nd4jArrays.activation(conf);
        int classes = outputSize(conf, "teacher", () -> {
            // a LossLayer (or another parameter-free layer) keeps the size of the layer before it
            for (int i = last; i > 0 && keepsSize(net.getLayerWiseConfigurations().getConf(i).getLayer())
                    && net.getLayerWiseConfigurations().getInputPreProcess(i) == null; i--) {
                org.deeplearning4j.nn.conf.layers.Layer before = net.getLayerWiseConfigurations().getConf(i - 1).getLayer();
                if (before instanceof FeedForwardLayer ff && ff.getNOut() > 0) {
                    return ff.getNOut();
                }
            }
            return 0;
        });
        Mode mode;
        if (Nd4jArrays.isIdentity(act)) {
            mode = Mode.OUTPUT_LOGITS;
        } else if (Nd4jArrays.isSoftmax(act) && (conf instanceof org.deeplearning4j.nn.conf.layers.OutputLayer
                || conf instanceof org.deeplearning4j.nn.conf.layers.DenseLayer)
                && net.getLayerWiseConfigurations().getInputPreProcess(last) == null) {
            // a plain dense head: its pre-activation is input * W + b, with no preprocessor in between
            mode = Mode.PRE_SOFTMAX;
        } else if (Nd4jArrays.isSoftmax(act)) {
            mode = Mode.OUTPUT_PROBABILITIES;
        } else {
            throw new IllegalArgumentException("teacher's last layer (" + conf.getClass().getSimpleName() + ") has activation "
                    + act + "; a teacher must end in softmax or identity (logits)");
        }
        return new Dl4jTeacher(net, null, classes, mode);
    }

    /** A teacher from a single-input, single-output ComputationGraph (initialized if it is not yet). */
    public static Dl4jTeacher of(ComputationGraph graph) {
        Objects.requireNonNull(graph, "teacher graph");
        Nd4jArrays.GraphOutput output = Nd4jArrays.singleOutput(graph, "teacher");
        String out = output.name();
        org.deeplearning4j.nn.conf.layers.Layer conf = output.layer().conf().getLayer();
        IActivation act = Nd4jArrays.activation(conf);
        Mode mode;
        if (Nd4jArrays.isIdentity(act)) {
            mode = Mode.OUTPUT_LOGITS;
        } else if (Nd4jArrays.isSoftmax(act)) {
            mode = Mode.OUTPUT_PROBABILITIES;
        } else {
            throw new IllegalArgumentException("teacher graph output '" + out + "' has activation " + act
                    + "; a teacher must end in softmax or identity (logits)");
        }
        return new Dl4jTeacher(null, graph, outputSize(conf, "teacher", () -> {
            // a LossLayer (or another parameter-free layer) keeps the size of the one layer vertex before it
            String name = out;
            while (true) {
                org.deeplearning4j.nn.conf.graph.GraphVertex v = graph.getConfiguration().getVertices().get(name);
                List<String> inputs = graph.getConfiguration().getVertexInputs().get(name);
                if (!(v instanceof org.deeplearning4j.nn.conf.graph.LayerVertex lv) || !keepsSize(lv.getLayerConf().getLayer())
                        || lv.getPreProcessor() != null || inputs == null || inputs.size() != 1
                        || !(graph.getConfiguration().getVertices().get(inputs.get(0))
                        instanceof org.deeplearning4j.nn.conf.graph.LayerVertex before)) {
                    return 0L;
                }
                if (before.getLayerConf().getLayer() instanceof FeedForwardLayer ff && ff.getNOut() > 0) {
                    return ff.getNOut();
                }
                name = inputs.get(0);
            }
        }), mode);
    }

    /** Layers whose output has the size of their input: they record no nOut of their own. */
    private static boolean keepsSize(org.deeplearning4j.nn.conf.layers.Layer conf) {
        return conf instanceof org.deeplearning4j.nn.conf.layers.LossLayer || conf instanceof org.deeplearning4j.nn.conf.layers.ActivationLayer
                || conf instanceof org.deeplearning4j.nn.conf.layers.DropoutLayer;
    }

    /** The last layer's nOut, or where it has none (a LossLayer) what {@code inherited} finds before it (0: nothing). */
    private static int outputSize(org.deeplearning4j.nn.conf.layers.Layer conf, String role, java.util.function.LongSupplier inherited) {
        if (conf instanceof FeedForwardLayer ff && ff.getNOut() <= 0) {
            long n = inherited.getAsLong();
            if (n <= 0) {
                throw new IllegalArgumentException(role + "'s last layer " + conf.getClass().getSimpleName() + " has no output size (nOut "
                        + ff.getNOut() + ") and no sized DenseLayer or OutputLayer right before it; end the network in one");
            }
            return Math.toIntExact(n);
        }
        return outputSize(conf, role);
    }

    static int outputSize(org.deeplearning4j.nn.conf.layers.Layer conf, String role) {
        if (conf instanceof FeedForwardLayer ff) {
            return Math.toIntExact(ff.getNOut());
        }
        throw new IllegalArgumentException(role + "'s last layer " + conf.getClass().getSimpleName()
                + " has no output size; expected a DenseLayer or OutputLayer");
    }

    /** The teacher's MultiLayerNetwork, or null when it is a ComputationGraph (for engines that import it). */
    public MultiLayerNetwork multiLayerNetwork() {
        return mln;
    }

    @Override
    public int classes() {
        return classes;
    }

    @Override
    public TeacherValues values() {
        return mode == Mode.OUTPUT_PROBABILITIES ? TeacherValues.PROBABILITIES : TeacherValues.LOGITS;
    }

    @Override
    public float[] outputs(Batch batch) {
        INDArray x = Nd4jArrays.features(batch);
        INDArray out;
        if (graph != null) {
            out = graph.output(false, x)[0];
        } else if (mode == Mode.PRE_SOFTMAX) {
            int last = mln.getnLayers() - 1;
            INDArray in = x;
            if (last > 0) {
                List<INDArray> acts = mln.feedForwardToLayer(last - 1, x, false);
                in = acts.get(acts.size() - 1);
            }
            Layer l = mln.getLayer(last);
            INDArray w = l.getParam("W");
            // the batch's features are float32; a network of another data type has its weights in that type
            out = in.castTo(w.dataType()).mmul(w);
            INDArray bias = l.getParam("b");
            if (bias != null) { // a head built with hasBias(false) has none
                out.addiRowVector(bias);
            }
        } else {
            out = mln.output(x, false);
        }
        return Nd4jArrays.toFloats(out, batch.size(), classes, "teacher output");
    }

    /**
     * A named activation in inference mode: a graph vertex by name, or for a MultiLayerNetwork the
     * output of layer {@code i} as {@code "layer<i>"} or by the layer's configured name.
     */
    @Override
    public org.distill4j.data.Feature feature(Batch batch, String name) {
        INDArray x = Nd4jArrays.features(batch);
        if (graph != null) {
            Map<String, INDArray> acts = graph.feedForward(x, false);
            INDArray a = acts.get(name);
            if (a == null) {
                throw new IllegalArgumentException("teacher graph has no vertex '" + name + "'; its vertices: "
                        + String.join(", ", acts.keySet()));
            }
            return Nd4jArrays.feature(a, name);
        }
        int i = org.distill4j.student.Dl4jStudent.layerIndex(mln, name, "teacher");
        List<INDArray> acts = mln.feedForwardToLayer(i, x, false);
        return Nd4jArrays.feature(acts.get(acts.size() - 1), name);
    }

    @Override
    public String identity() {
        org.nd4j.linalg.api.ndarray.INDArray p = graph != null ? graph.params() : mln.params();
        return describe() + ", parameters crc32c " + Crc.of(p);
    }

    /** CRC32C of an array's values, as float32. */
    static final class Crc {
        private Crc() {
        }

        static String of(org.nd4j.linalg.api.ndarray.INDArray a) {
            java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
            try {
                org.distill4j.internal.Nd4jArrays.valueBlocks(a, false, crc::update);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e); // a CRC does no I/O
            }
            return Long.toHexString(crc.getValue()) + " over " + a.length() + " values";
        }
    }

    @Override
    public String describe() {
        long params = graph != null ? graph.numParams() : mln.numParams();
        String kind = graph != null ? "ComputationGraph" : "MultiLayerNetwork";
        String what = switch (mode) {
            case OUTPUT_LOGITS -> "logits";
            case PRE_SOFTMAX -> "pre-softmax logits";
            case OUTPUT_PROBABILITIES -> "softmax probabilities";
        };
        return "DL4J " + kind + " (" + params + " parameters, " + classes + " classes, " + what + ")";
    }
}
