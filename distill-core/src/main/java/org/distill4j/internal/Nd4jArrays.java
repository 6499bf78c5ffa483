package org.distill4j.internal;

import org.deeplearning4j.nn.conf.layers.BaseLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.conf.layers.BaseOutputLayer;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.deeplearning4j.nn.conf.layers.LossLayer;
import org.distill4j.data.Batch;
import org.nd4j.linalg.activations.IActivation;
import org.nd4j.linalg.activations.impl.ActivationIdentity;
import org.nd4j.linalg.activations.impl.ActivationSoftmax;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Conversions between the plain-buffer contract and ND4J arrays. Internal: not a public API. */
public final class Nd4jArrays {
    private Nd4jArrays() {
    }

    /** Takes the blocks of {@link #valueBlocks}. */
    @FunctionalInterface
    public interface BlockSink {
        /**
         * Takes one block: a fresh big-endian buffer positioned at 0 whose remaining bytes are the block's values, in
         * order; the sink may keep it. An exception ends {@link #valueBlocks} with it.
         */
        void accept(java.nio.ByteBuffer block) throws java.io.IOException;
    }

    /** Values per block in {@link #valueBlocks}: 4 MiB of float32. */
    public static final int BLOCK_VALUES = 1 << 20;

    /**
     * Hands {@code a}'s values, in flat order, to {@code sink} as big-endian bytes in blocks of {@link #BLOCK_VALUES}
     * values: float32, or float64 when {@code asDouble} (for checkpoints and content hashes of large arrays, without
     * copying the whole array at once).
     */
    public static void valueBlocks(INDArray a, boolean asDouble, BlockSink sink) throws java.io.IOException {
        long n = a.length();
        INDArray flat = a.reshape(n);
        for (long from = 0; from < n; from += BLOCK_VALUES) {
            long to = Math.min(n, from + BLOCK_VALUES);
            INDArray part = flat.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(from, to));
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate((int) (to - from) * (asDouble ? 8 : 4));
            if (asDouble) {
                b.asDoubleBuffer().put(part.toDoubleVector());
            } else {
                b.asFloatBuffer().put(part.toFloatVector());
            }
            sink.accept(b);
        }
    }

    /** The batch features as a {@code [size, featureCount]} float matrix. */
    public static INDArray features(Batch b) {
        return Nd4j.create(b.features(), new long[]{b.size(), b.featureCount()}, 'c');
    }

    /** A row-major float copy of a 2-d array, checking its shape. */
    public static float[] toFloats(INDArray a, long rows, long cols, String what) {
        if (a.rank() != 2 || a.size(0) != rows || a.size(1) != cols) {
            throw new IllegalStateException(what + " has shape " + java.util.Arrays.toString(a.shape())
                    + ", expected [" + rows + ", " + cols + "]");
        }
        INDArray c = a.dataType() == DataType.FLOAT ? a : a.castTo(DataType.FLOAT);
        return Nd4j.toFlattened('c', c).toFloatVector();
    }

    /** An activation {@code [N, ...]} as a feature: row-major values and the per-sample shape. */
    public static org.distill4j.data.Feature feature(INDArray a, String name) {
        long[] shape = a.shape();
        if (shape.length < 2) {
            throw new IllegalStateException("activation '" + name + "' has shape " + java.util.Arrays.toString(shape)
                    + ", expected [batch, ...]");
        }
        int[] per = new int[shape.length - 1];
        for (int i = 1; i < shape.length; i++) {
            per[i - 1] = Math.toIntExact(shape[i]);
        }
        INDArray c = a.dataType() == DataType.FLOAT ? a : a.castTo(DataType.FLOAT);
        return new org.distill4j.data.Feature(Nd4j.toFlattened('c', c).toFloatVector(), Math.toIntExact(shape[0]), per);
    }

    /** A float matrix from row-major values. */
    public static INDArray matrix(float[] values, int rows, int cols) {
        return Nd4j.create(values, new long[]{rows, cols}, 'c');
    }

    /** The output of a single-input, single-output graph: its name and layer. */
    public record GraphOutput(String name, org.deeplearning4j.nn.api.Layer layer) {
    }

    /**
     * Checks that {@code graph} has one input and one output that is a layer, initializing the graph
     * if needed; {@code role} ("teacher", "student") names the model in errors.
     */
    public static GraphOutput singleOutput(ComputationGraph graph, String role) {
        if (graph.getNumInputArrays() != 1 || graph.getNumOutputArrays() != 1) {
            throw new IllegalArgumentException(role + " graph has " + graph.getNumInputArrays() + " inputs and "
                    + graph.getNumOutputArrays() + " outputs, expected 1 and 1");
        }
        if (graph.getVertices() == null) {
            graph.init();
        }
        String out = graph.getConfiguration().getNetworkOutputs().get(0);
        org.deeplearning4j.nn.api.Layer layer = graph.getLayer(out);
        if (layer == null) {
            throw new IllegalArgumentException(role + " graph output '" + out + "' is not a layer; end the graph in a "
                    + "DenseLayer (or, for a teacher, a softmax OutputLayer)");
        }
        return new GraphOutput(out, layer);
    }

    /** The configuration of a network's last layer, initializing the network if needed. */
    public static Layer lastLayer(MultiLayerNetwork net) {
        if (net.getLayers() == null) {
            net.init();
        }
        return net.getLayerWiseConfigurations().getConf(net.getnLayers() - 1).getLayer();
    }

    /** The activation of a layer configuration, or null when it has none. */
    public static IActivation activation(Layer layer) {
        if (layer instanceof BaseLayer bl) {
            return bl.getActivationFn();
        }
        if (layer instanceof LossLayer ll) {
            return ll.getActivationFn();
        }
        return null;
    }

    /** Whether {@code a} is DL4J's identity activation (false for null). */
    public static boolean isIdentity(IActivation a) {
        return a instanceof ActivationIdentity;
    }

    /** Whether {@code a} is DL4J's softmax activation (false for null). */
    public static boolean isSoftmax(IActivation a) {
        return a instanceof ActivationSoftmax;
    }

    /** Whether DL4J would compute its own loss in this layer (so external errors would be ignored). */
    public static boolean isOutputLayer(Layer layer) {
        return layer instanceof BaseOutputLayer || layer instanceof LossLayer;
    }
}
