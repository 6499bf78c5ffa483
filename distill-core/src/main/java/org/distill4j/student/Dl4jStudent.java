package org.distill4j.student;

import org.deeplearning4j.nn.conf.layers.FeedForwardLayer;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.distill4j.data.Batch;
import org.distill4j.internal.Nd4jArrays;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.activations.IActivation;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A student backed by a DL4J {@link MultiLayerNetwork} or a single-input {@link ComputationGraph}, trained through DL4J's external-errors path: forward to logits, our loss
 * computes {@code dLoss/dLogits}, DL4J back-propagates it and its configured updater (Adam, SGD, ...,
 * with the network's regularization and learning-rate schedule) takes the step. DL4J never computes
 * a loss.
 *
 * <p>The network must end in a layer that outputs logits: a {@code DenseLayer} with
 * {@code Activation.IDENTITY}. An {@code OutputLayer} or {@code LossLayer} is rejected, because DL4J
 * would back-propagate its own loss instead of ours.
 *
 * <p>DL4J's updater divides gradients by the minibatch size when the configuration has
 * {@code miniBatch(true)} (the default), since its own losses hand it per-example sums. Our gradient
 * is already that of the reduced loss, so it is multiplied by the batch size first in that case: the
 * step applied is exactly the gradient given to {@link #backward}.
 *
 * <p>Each step is DL4J's own as {@code fit()} takes it: the layers get the network's iteration and epoch counts before
 * the training forward (for schedules of dropout or weight noise), and the weight constraints apply after the update.
 * The network's own DL4J {@code TrainingListener}s are not called and its {@code score()} is not set (DL4J computes no
 * loss here): watch training through the Distiller's {@code TrainingListener} and its results.
 *
 * <p>As a {@link org.distill4j.checkpoint.Checkpointable} its state is the network's parameters, its
 * updater's state (e.g. Adam's moments), its iteration and epoch counts, and its configuration, which a
 * restore compares (another layer size, updater or learning rate is refused).
 */
public final class Dl4jStudent implements Student, org.distill4j.checkpoint.Checkpointable {
    private static final int STATE_VERSION = 1;
    private final MultiLayerNetwork mln;
    private final ComputationGraph graph;
    private final String outputName;
    private final int classes;
    private final boolean dividesByMinibatch;
    private final List<String> featureOutputs;
    /** The graph's output vertex for each of {@link #featureOutputs}, in the same order. */
    private final List<String> featureVertices;
    private int lastBatchSize = -1;
    private List<INDArray> lastLayerActs;
    private Map<String, INDArray> lastVertexActs;

    private Dl4jStudent(MultiLayerNetwork mln, ComputationGraph graph, String outputName, int classes, boolean miniBatch) {
        this.mln = mln;
        this.graph = graph;
        this.outputName = outputName;
        this.classes = classes;
        this.dividesByMinibatch = miniBatch;
        List<String> extra = graph == null ? List.of()
                : List.copyOf(graph.getConfiguration().getNetworkOutputs().subList(1, graph.getNumOutputArrays()));
        List<String> features = new java.util.ArrayList<>();
        for (String o : extra) {
            features.add(featureOf(graph, o));
        }
        this.featureOutputs = List.copyOf(features);
        this.featureVertices = extra;
    }

    /**
     * The feature an extra output {@code o} gives a gradient to: the vertex a {@link #FEATURE_TAP} reads, or {@code o} itself
     * where no later vertex reads it (a leaf, whose gradient DL4J does not replace). An output that later vertices read is
     * refused: DL4J would replace their gradient with the external one.
     */
    private static String featureOf(ComputationGraph graph, String o) {
        Map<String, List<String>> inputs = graph.getConfiguration().getVertexInputs();
        if (o.endsWith(FEATURE_TAP) && graph.getLayer(o) != null
                && graph.getLayer(o).conf().getLayer() instanceof org.deeplearning4j.nn.conf.layers.ActivationLayer
                && inputs.get(o) != null && inputs.get(o).size() == 1) {
            return inputs.get(o).get(0);
        }
        List<String> readers = inputs.entrySet().stream().filter(e -> e.getValue().contains(o)).map(Map.Entry::getKey).toList();
        if (!readers.isEmpty()) {
            throw new IllegalArgumentException("student graph output '" + o + "' is also an input of " + readers + ": DL4J replaces"
                    + " the gradient flowing back into an output with the external one, so the logit loss would stop training it and"
                    + " the layers before it; make feature outputs with Dl4jStudent.withFeatureOutputs(graph, \"" + o + "\")");
        }
        return o;
    }

    /** A student from a MultiLayerNetwork (initialized if it is not yet). */
    public static Dl4jStudent of(MultiLayerNetwork net) {
        Objects.requireNonNull(net, "student network");
        int classes = checkLastLayer(Nd4jArrays.lastLayer(net), "layer " + (net.getnLayers() - 1));
        return new Dl4jStudent(net, null, null, classes, net.getLayerWiseConfigurations().getConf(0).isMiniBatch());
    }

    /**
     * A student from a single-input ComputationGraph (initialized if it is not yet). Its first output
     * gives the logits; any further outputs are intermediate features that can take gradients from
     * feature losses (see {@link #withFeatureOutputs}).
     * The graph's training workspace mode is set to {@code NONE} (DL4J's dropout masks must outlive the
     * forward call for the separate backward call).
     */
    public static Dl4jStudent of(ComputationGraph graph) {
        Objects.requireNonNull(graph, "student graph");
        if (graph.getNumInputArrays() != 1) {
            throw new IllegalArgumentException("student graph has " + graph.getNumInputArrays() + " inputs, expected 1");
        }
        if (graph.getVertices() == null) {
            graph.init();
        }
        String out = graph.getConfiguration().getNetworkOutputs().get(0);
        org.deeplearning4j.nn.api.Layer layer = graph.getLayer(out);
        if (layer == null) {
            throw new IllegalArgumentException("student graph output '" + out + "' is not a layer; end the graph in a "
                    + "DenseLayer with Activation.IDENTITY");
        }
        int classes = checkLastLayer(layer.conf().getLayer(), "output '" + out + "'");
        // our forward and backward are separate calls: with training workspaces, the dropout masks of the forward pass
        // live in a workspace the backward pass has reopened, and DL4J refuses them ("outdated workspace pointer")
        graph.getConfiguration().setTrainingWorkspaceMode(org.deeplearning4j.nn.conf.WorkspaceMode.NONE);
        return new Dl4jStudent(null, graph, out, classes, graph.getConfiguration().getDefaultConfiguration().isMiniBatch());
    }

    /**
     * The suffix of the output vertex {@link #withFeatureOutputs} adds for a feature: an identity {@code ActivationLayer}
     * reading the feature's vertex, so that the feature's gradient joins the one flowing back from the layers after it.
     */
    public static final String FEATURE_TAP = "/feature";

    /**
     * A copy of {@code graph} (same parameters) that can take gradients at the given vertices: for each, an output vertex
     * {@code <vertex>/feature} (an identity {@code ActivationLayer}, no parameters) reading it. A student made from it takes
     * a feature loss's gradient at {@code <vertex>} ({@link #backward(float[], Map)}, {@link #feature}), added to the
     * gradient that reaches the vertex from the logits. (Making the vertex itself an output would not do: DL4J replaces the
     * gradient flowing back into an output vertex with the external one, so the logit loss would no longer train that
     * layer and the layers before it.) Call before training: the updater state is not copied. A MultiLayerNetwork converts
     * with {@code net.toComputationGraph()} (its layers are the vertices "0", "1", ...); its parameters, in the same order,
     * are the copy's {@code params()}.
     */
    public static ComputationGraph withFeatureOutputs(ComputationGraph graph, String... vertices) {
        Objects.requireNonNull(graph, "graph");
        if (graph.getVertices() == null) {
            graph.init();
        }
        org.deeplearning4j.nn.conf.ComputationGraphConfiguration conf = graph.getConfiguration();
        List<String> outputs = new java.util.ArrayList<>(conf.getNetworkOutputs());
        org.deeplearning4j.nn.transferlearning.TransferLearning.GraphBuilder b =
                new org.deeplearning4j.nn.transferlearning.TransferLearning.GraphBuilder(graph);
        boolean added = false;
        for (String v : vertices) {
            if (!conf.getVertices().containsKey(v)) {
                throw new IllegalArgumentException("graph has no vertex '" + v + "'; its vertices: "
                        + String.join(", ", conf.getVertices().keySet()));
            }
            String tap = v + FEATURE_TAP;
            if (outputs.contains(tap) || v.equals(outputs.get(0))) {
                continue; // already a feature output (or the logits, which take the logits' gradient)
            }
            if (conf.getVertices().containsKey(tap)) {
                throw new IllegalArgumentException("graph already has a vertex '" + tap + "', the name of the feature output for '"
                        + v + "'");
            }
            b.addLayer(tap, new org.deeplearning4j.nn.conf.layers.ActivationLayer.Builder()
                    .activation(org.nd4j.linalg.activations.Activation.IDENTITY).build(), v);
            outputs.add(tap);
            added = true;
        }
        if (!added) {
            ComputationGraph copy = new ComputationGraph(conf.clone());
            copy.init(graph.params().dup(), false);
            return copy;
        }
        b.setOutputs(outputs.toArray(String[]::new));
        ComputationGraph copy = b.build();
        // DL4J's TransferLearning builds the graph in float32 whatever the original's data type: a float64 student would
        // silently train in float32 from rounded parameters. Convert it back before the parameters are copied in.
        if (copy.getConfiguration().getDataType() != conf.getDataType()) {
            copy = copy.convertDataType(conf.getDataType());
        }
        // by layer name: the copy's own parameters, whatever order its vertices took
        for (org.deeplearning4j.nn.api.Layer l : graph.getLayers()) {
            org.deeplearning4j.nn.api.Layer c = copy.getLayer(l.conf().getLayer().getLayerName());
            if (l.numParams() > 0) {
                c.setParams(l.params().dup());
            }
        }
        return copy;
    }

    /** The extra outputs that can take feature gradients (empty for a MultiLayerNetwork). */
    public List<String> featureOutputs() {
        return featureOutputs;
    }

    private static int checkLastLayer(org.deeplearning4j.nn.conf.layers.Layer conf, String where) {
        String type = conf.getClass().getSimpleName();
        if (Nd4jArrays.isOutputLayer(conf)) {
            throw new IllegalArgumentException("student's last layer (" + where + ") is a " + type
                    + ", which computes DL4J's own loss and ignores ours; end the student in "
                    + "DenseLayer.Builder().nOut(classes).activation(Activation.IDENTITY)");
        }
        IActivation act = Nd4jArrays.activation(conf);
        if (!Nd4jArrays.isIdentity(act)) {
            throw new IllegalArgumentException("student's last layer (" + where + ", " + type + ") has activation " + act
                    + "; distillation losses take logits, so it must be Activation.IDENTITY");
        }
        if (!(conf instanceof FeedForwardLayer ff)) {
            throw new IllegalArgumentException("student's last layer (" + where + ") is a " + type
                    + " with no output size; expected a DenseLayer");
        }
        return Math.toIntExact(ff.getNOut());
    }

    /** The student's MultiLayerNetwork, or null when it is a ComputationGraph (for engines that import it). */
    public MultiLayerNetwork multiLayerNetwork() {
        return mln;
    }

    @Override
    public int classes() {
        return classes;
    }

    @Override
    public float[] forward(Batch batch, boolean training) {
        INDArray x = Nd4jArrays.features(batch);
        INDArray out;
        if (training) {
            syncLayerCounts();
        }
        if (mln != null) {
            if (training) {
                mln.setInput(x);
                List<INDArray> acts = mln.feedForward(true, false);
                lastLayerActs = acts;
                out = acts.get(acts.size() - 1);
            } else {
                out = mln.output(x, false);
            }
        } else if (training) {
            // train mode, keeping each layer's input for the backward pass
            Map<String, INDArray> acts = graph.feedForward(new INDArray[]{x}, true, false);
            lastVertexActs = acts;
            out = acts.get(outputName);
        } else {
            out = graph.output(false, x)[0];
        }
        lastBatchSize = training ? batch.size() : -1;
        return Nd4jArrays.toFloats(out, batch.size(), classes, "student logits");
    }

    /**
     * Gives every layer the network's iteration and epoch counts, as DL4J's fit() does before its forward pass: schedules
     * a layer reads in training (dropout, weight noise on an iteration schedule) see the step they are at, not the count
     * of the last epoch's start.
     */
    private void syncLayerCounts() {
        int iteration = mln != null ? mln.getIterationCount() : graph.getIterationCount();
        int epoch = mln != null ? mln.getEpochCount() : graph.getEpochCount();
        for (org.deeplearning4j.nn.api.Layer l : mln != null ? mln.getLayers() : graph.getLayers()) {
            l.setIterationCount(iteration);
            l.setEpochCount(epoch);
        }
    }

    /**
     * A feature of the last training forward: a graph vertex by name, or for a MultiLayerNetwork the
     * output of layer {@code i} as {@code "layer<i>"} or by the layer's configured name.
     */
    @Override
    public org.distill4j.data.Feature feature(String name) {
        if (lastBatchSize < 0) {
            throw new IllegalStateException("feature('" + name + "') needs a preceding forward(batch, training = true)");
        }
        if (graph != null) {
            INDArray a = lastVertexActs.get(name);
            if (a == null) {
                throw new IllegalArgumentException("student graph has no vertex '" + name + "'; its vertices: "
                        + String.join(", ", lastVertexActs.keySet()));
            }
            return Nd4jArrays.feature(a, name);
        }
        return Nd4jArrays.feature(lastLayerActs.get(layerIndex(mln, name, "student") + 1), name);
    }

    /** Layer {@code "layer<i>"} or the layer whose configured name is {@code name}. */
    public static int layerIndex(MultiLayerNetwork net, String name, String role) {
        List<String> known = new java.util.ArrayList<>();
        for (int i = 0; i < net.getnLayers(); i++) {
            String layerName = net.getLayerWiseConfigurations().getConf(i).getLayer().getLayerName();
            if (name.equals("layer" + i) || name.equals(layerName)) {
                return i;
            }
            boolean named = layerName != null && !layerName.equals(String.valueOf(i)) && !layerName.equals("layer" + i);
            known.add("layer" + i + (named ? " (" + layerName + ")" : ""));
        }
        throw new IllegalArgumentException(role + " network has no layer '" + name + "'; its layers: " + String.join(", ", known));
    }

    @Override
    public void backward(float[] dLogits) {
        backward(dLogits, Map.of());
    }

    @Override
    public void backward(float[] dLogits, Map<String, float[]> dFeatures) {
        if (!dFeatures.isEmpty() && mln != null) {
            throw new IllegalArgumentException("a MultiLayerNetwork student cannot take gradients at intermediate layers; convert "
                    + "it with net.toComputationGraph() and Dl4jStudent.withFeatureOutputs(graph, vertices...)");
        }
        for (String name : dFeatures.keySet()) {
            if (!featureOutputs.contains(name)) {
                throw new IllegalArgumentException("student vertex '" + name + "' is not an output of the graph, so it cannot take "
                        + "a feature gradient; make it one with Dl4jStudent.withFeatureOutputs(graph, \"" + name + "\")"
                        + (featureOutputs.isEmpty() ? "" : " (feature outputs now: " + String.join(", ", featureOutputs) + ")"));
            }
        }
        if (lastBatchSize < 0) {
            throw new IllegalStateException("backward() needs a preceding forward(batch, training = true)");
        }
        int n = lastBatchSize;
        if (dLogits.length != (long) n * classes) {
            throw new IllegalArgumentException("dLogits has " + dLogits.length + " elements, expected " + n + " x " + classes
                    + " for the last forward batch");
        }
        // the losses give float32; a network of another data type (float64) back-propagates in its own
        INDArray eps = Nd4jArrays.matrix(dLogits, n, classes).castTo((mln != null ? mln.params() : graph.params()).dataType());
        if (dividesByMinibatch) {
            eps.muli(n);
        }
        LayerWorkspaceMgr ws = LayerWorkspaceMgr.noWorkspaces();
        if (mln != null) {
            Pair<Gradient, INDArray> p = mln.backpropGradient(eps, ws);
            Gradient g = p.getFirst();
            int iteration = mln.getIterationCount();
            mln.getUpdater().update(mln, g, iteration, mln.getEpochCount(), n, ws);
            mln.params().subi(g.gradient());
            mln.setIterationCount(iteration + 1);
            // as DL4J's own step (StochasticGradientDescent): constraints after the update, at the new iteration count
            mln.applyConstraints(mln.getIterationCount(), mln.getEpochCount());
        } else {
            INDArray[] epsilons = new INDArray[1 + featureOutputs.size()];
            epsilons[0] = eps;
            for (int i = 0; i < featureOutputs.size(); i++) {
                String name = featureOutputs.get(i);
                INDArray act = lastVertexActs.get(name);
                float[] d = dFeatures.get(name);
                if (d == null) {
                    epsilons[i + 1] = Nd4j.zeros(act.dataType(), act.shape());
                } else {
                    if (d.length != act.length()) {
                        throw new IllegalArgumentException("gradient for feature '" + name + "' has " + d.length + " values, the "
                                + "activation has shape " + java.util.Arrays.toString(act.shape()));
                    }
                    epsilons[i + 1] = Nd4j.create(d, act.shape(), 'c').castTo(act.dataType());
                    if (dividesByMinibatch) {
                        epsilons[i + 1].muli(n);
                    }
                }
            }
            Gradient g = graph.backpropGradient(epsilons);
            int iteration = graph.getIterationCount();
            graph.getUpdater().update(g, iteration, graph.getEpochCount(), n, ws);
            graph.params().subi(g.gradient());
            graph.getConfiguration().setIterationCount(iteration + 1);
            graph.applyConstraints(graph.getIterationCount(), graph.getEpochCount());
        }
        lastBatchSize = -1;
    }

    /**
     * The network's configuration as JSON without its iteration and epoch counts (state, not configuration) and its
     * initialization seeds (which only drew the first weights; {@code toComputationGraph()} makes up a new one).
     */
    private String configurationJson() {
        String json;
        if (mln != null) {
            org.deeplearning4j.nn.conf.MultiLayerConfiguration c = mln.getLayerWiseConfigurations().clone();
            c.setIterationCount(0);
            c.setEpochCount(0);
            json = c.toJson();
        } else {
            org.deeplearning4j.nn.conf.ComputationGraphConfiguration c = graph.getConfiguration().clone();
            c.setIterationCount(0);
            c.setEpochCount(0);
            json = c.toJson();
        }
        // nor the settings that change only speed and memory, which may differ on the machine that resumes
        return json.replaceAll("\"seed\"\\s*:\\s*-?\\d+", "\"seed\" : 0")
                .replaceAll("\"(trainingWorkspaceMode|inferenceWorkspaceMode|cacheMode)\"\\s*:\\s*\"?\\w+\"?", "\"$1\" : \"-\"");
    }

    private org.deeplearning4j.nn.updater.BaseMultiLayerUpdater<?> updater() {
        return mln != null ? (org.deeplearning4j.nn.updater.BaseMultiLayerUpdater<?>) mln.getUpdater() : graph.getUpdater();
    }

    @Override
    public void writeState(java.io.DataOutputStream out) throws java.io.IOException {
        out.writeInt(STATE_VERSION);
        byte[] conf = configurationJson().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        out.writeInt(conf.length);
        out.write(conf);
        writeArray(out, mln != null ? mln.params() : graph.params());
        INDArray view = updater().getStateViewArray();
        out.writeBoolean(view != null);
        if (view != null) {
            writeArray(out, view);
        }
        out.writeInt(mln != null ? mln.getIterationCount() : graph.getIterationCount());
        out.writeInt(mln != null ? mln.getEpochCount() : graph.getEpochCount());
        // each layer's own counts: DL4J's scheduled dropout and weight noise read them, and they move only at epoch ends
        org.deeplearning4j.nn.api.Layer[] layers = layers();
        out.writeInt(layers.length);
        for (org.deeplearning4j.nn.api.Layer l : layers) {
            out.writeInt(l.getIterationCount());
            out.writeInt(l.getEpochCount());
        }
    }

    private org.deeplearning4j.nn.api.Layer[] layers() {
        return mln != null ? mln.getLayers() : graph.getLayers();
    }

    /**
     * Reads a state {@link #writeState} wrote into this network. Everything is read and checked first (the
     * configuration, the number of parameters and of updater values), then written: a state that does not
     * fit changes nothing.
     */
    @Override
    public Restore readState(java.io.DataInputStream in) throws java.io.IOException {
        int version = in.readInt();
        if (version != STATE_VERSION) {
            throw new java.io.IOException("student state version " + version + ", expected " + STATE_VERSION);
        }
        int n = in.readInt();
        if (n < 0 || n > (1 << 28)) {
            throw new java.io.IOException("student state: a configuration of " + n + " bytes");
        }
        byte[] conf = in.readNBytes(n);
        if (conf.length != n) {
            throw new java.io.EOFException();
        }
        INDArray params = readArray(in);
        INDArray saved = in.readBoolean() ? readArray(in) : null;
        int iterations = in.readInt();
        int epochs = in.readInt();
        int layerCount = in.readInt();
        if (layerCount < 0 || layerCount > (1 << 20)) {
            throw new java.io.IOException("student state: " + layerCount + " layers");
        }
        int[][] layerCounts = new int[layerCount][2];
        for (int[] c : layerCounts) {
            c[0] = in.readInt();
            c[1] = in.readInt();
        }
        String mine = configurationJson();
        String theirs = new String(conf, java.nio.charset.StandardCharsets.UTF_8);
        if (!mine.equals(theirs)) {
            throw new org.distill4j.checkpoint.CheckpointMismatchException("the saved student's network configuration differs from "
                    + describe() + "'s"
                    + firstDifference(theirs, mine) + "; resume with the same network (layers, updater, learning rate, ...)");
        }
        INDArray current = mln != null ? mln.params() : graph.params();
        if (params.length() != current.length()) {
            throw new IllegalArgumentException("the saved student has " + params.length() + " parameters, " + describe() + " has "
                    + current.length());
        }
        org.deeplearning4j.nn.updater.BaseMultiLayerUpdater<?> u = updater();
        INDArray view = u.getStateViewArray();
        long expected = view == null ? 0 : view.length();
        long got = saved == null ? 0 : saved.length();
        if (expected != got) {
            throw new IllegalArgumentException("the saved student's optimizer state has " + got + " values, " + describe()
                    + "'s optimizer keeps " + expected);
        }
        org.deeplearning4j.nn.api.Layer[] layers = layers();
        if (layerCount != layers.length) {
            throw new IllegalArgumentException("the saved student has " + layerCount + " layers, " + describe() + " has " + layers.length);
        }
        return () -> {
            current.assign(params.castTo(current.dataType()).reshape(current.shape()));
            if (view != null) {
                u.setStateViewArray(saved.castTo(view.dataType()).reshape(view.shape()));
                for (org.deeplearning4j.nn.updater.UpdaterBlock block : u.getUpdaterBlocks()) {
                    block.setUpdaterViewRequiresInitialization(false); // a block not yet initialized would zero the restored moments
                }
            }
            if (mln != null) {
                mln.setIterationCount(iterations);
                mln.setEpochCount(epochs);
            } else {
                graph.getConfiguration().setIterationCount(iterations);
                graph.getConfiguration().setEpochCount(epochs);
            }
            for (int i = 0; i < layers.length; i++) {
                layers[i].setIterationCount(layerCounts[i][0]);
                layers[i].setEpochCount(layerCounts[i][1]);
            }
            lastBatchSize = -1;
        };
    }

    /**
     * An array's values in bulk: a flag (1: float64, 0: float32, which holds fp16 and bf16 values exactly), the
     * count, then the big-endian values ({@code Nd4j.write} goes value by value, 10x slower for a large model).
     */
    private static void writeArray(java.io.DataOutputStream out, INDArray a) throws java.io.IOException {
        boolean dbl = a.dataType() == org.nd4j.linalg.api.buffer.DataType.DOUBLE;
        out.writeBoolean(dbl);
        out.writeLong(a.length());
        Nd4jArrays.valueBlocks(a, dbl, b -> out.write(b.array()));
    }

    private static INDArray readArray(java.io.DataInputStream in) throws java.io.IOException {
        boolean dbl = in.readBoolean();
        long n = in.readLong();
        if (n < 0 || n > Integer.MAX_VALUE - 8) {
            throw new java.io.IOException("student state: an array of " + n + " values");
        }
        int width = dbl ? 8 : 4;
        int chunk = Nd4jArrays.BLOCK_VALUES; // as written
        // the arrays grow with the values read, not to the count the stream declares before its bytes are there: a damaged
        // count (of up to 2^31 float64 values, 16 GiB) is then an end of file, not an OutOfMemoryError
        double[] d = dbl ? new double[(int) Math.min(n, chunk)] : null;
        float[] f = dbl ? null : new float[(int) Math.min(n, chunk)];
        for (int from = 0; from < n; from += chunk) {
            int len = (int) Math.min(chunk, n - from);
            byte[] bytes = in.readNBytes(len * width);
            if (bytes.length != len * width) {
                throw new java.io.EOFException();
            }
            int capacity = dbl ? d.length : f.length;
            if (from + len > capacity) {
                int grown = (int) Math.min(n, Math.max(from + len, 2L * capacity));
                d = dbl ? java.util.Arrays.copyOf(d, grown) : null;
                f = dbl ? null : java.util.Arrays.copyOf(f, grown);
            }
            java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(bytes);
            if (dbl) {
                b.asDoubleBuffer().get(d, from, len);
            } else {
                b.asFloatBuffer().get(f, from, len);
            }
        }
        return dbl ? Nd4j.createFromArray(d) : Nd4j.createFromArray(f);
    }

    /** Where two configurations' JSON first differ, for the error message. */
    private static String firstDifference(String a, String b) {
        int i = 0;
        while (i < a.length() && i < b.length() && a.charAt(i) == b.charAt(i)) {
            i++;
        }
        int from = Math.max(0, a.lastIndexOf('"', Math.max(0, i - 1)) - 40);
        return " (first difference near: saved ..." + a.substring(from, Math.min(a.length(), i + 30)).replaceAll("\\s+", " ")
                + "..., now ..." + b.substring(Math.min(from, b.length()), Math.min(b.length(), i + 30)).replaceAll("\\s+", " ") + "...)";
    }

    @Override
    public void endEpoch() {
        if (mln != null) {
            mln.incrementEpochCount();
        } else {
            graph.incrementEpochCount();
        }
    }

    @Override
    public long parameterCount() {
        return mln != null ? mln.numParams() : graph.numParams();
    }

    @Override
    public String describe() {
        return "DL4J " + (mln != null ? "MultiLayerNetwork" : "ComputationGraph") + " (" + parameterCount()
                + " parameters, " + classes + " classes)";
    }
}
