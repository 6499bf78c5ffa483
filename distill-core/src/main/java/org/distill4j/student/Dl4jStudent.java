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

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A student backed by a DL4J {@link MultiLayerNetwork} or a single-input, single-output
 * {@link ComputationGraph}, trained through DL4J's external-errors path: forward to logits, our loss
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
 */
public final class Dl4jStudent implements Student {
    private final MultiLayerNetwork mln;
    private final ComputationGraph graph;
    private final String outputName;
    private final int classes;
    private final boolean dividesByMinibatch;
    private int lastBatchSize = -1;

    private Dl4jStudent(MultiLayerNetwork mln, ComputationGraph graph, String outputName, int classes, boolean miniBatch) {
        this.mln = mln;
        this.graph = graph;
        this.outputName = outputName;
        this.classes = classes;
        this.dividesByMinibatch = miniBatch;
    }

    /** A student from a MultiLayerNetwork (initialized if it is not yet). */
    public static Dl4jStudent of(MultiLayerNetwork net) {
        Objects.requireNonNull(net, "student network");
        int classes = checkLastLayer(Nd4jArrays.lastLayer(net), "layer " + (net.getnLayers() - 1));
        return new Dl4jStudent(net, null, null, classes, net.getLayerWiseConfigurations().getConf(0).isMiniBatch());
    }

    /** A student from a single-input, single-output ComputationGraph (initialized if it is not yet). */
    public static Dl4jStudent of(ComputationGraph graph) {
        Objects.requireNonNull(graph, "student graph");
        Nd4jArrays.GraphOutput output = Nd4jArrays.singleOutput(graph, "student");
        String out = output.name();
        int classes = checkLastLayer(output.layer().conf().getLayer(), "output '" + out + "'");
        return new Dl4jStudent(null, graph, out, classes, graph.getConfiguration().getDefaultConfiguration().isMiniBatch());
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

    @Override
    public int classes() {
        return classes;
    }

    @Override
    public float[] forward(Batch batch, boolean training) {
        INDArray x = Nd4jArrays.features(batch);
        INDArray out;
        if (mln != null) {
            if (training) {
                mln.setInput(x);
                List<INDArray> acts = mln.feedForward(true, false);
                out = acts.get(acts.size() - 1);
            } else {
                out = mln.output(x, false);
            }
        } else if (training) {
            // train mode, keeping each layer's input for the backward pass
            Map<String, INDArray> acts = graph.feedForward(new INDArray[]{x}, true, false);
            out = acts.get(outputName);
        } else {
            out = graph.output(false, x)[0];
        }
        lastBatchSize = training ? batch.size() : -1;
        return Nd4jArrays.toFloats(out, batch.size(), classes, "student logits");
    }

    @Override
    public void backward(float[] dLogits) {
        if (lastBatchSize < 0) {
            throw new IllegalStateException("backward() needs a preceding forward(batch, training = true)");
        }
        int n = lastBatchSize;
        if (dLogits.length != (long) n * classes) {
            throw new IllegalArgumentException("dLogits has " + dLogits.length + " elements, expected " + n + " x " + classes
                    + " for the last forward batch");
        }
        INDArray eps = Nd4jArrays.matrix(dLogits, n, classes);
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
        } else {
            Gradient g = graph.backpropGradient(eps);
            int iteration = graph.getIterationCount();
            graph.getUpdater().update(g, iteration, graph.getEpochCount(), n, ws);
            graph.params().subi(g.gradient());
            graph.getConfiguration().setIterationCount(iteration + 1);
        }
        lastBatchSize = -1;
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
