package org.distill4j.examples;

import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.learning.config.Adam;

/**
 * The demo's models: multilayer perceptrons with ReLU hidden layers, optional dropout on the inputs of
 * the hidden layers, Adam, and an identity output layer (logits; the loss is computed by Distill4J).
 */
public final class DemoModels {
    private DemoModels() {
    }

    /**
     * A {@code inputs - hidden... - classes} MLP.
     *
     * @param dropout probability of dropping a unit (0 for none), applied to each hidden layer's input
     */
    public static MultiLayerNetwork mlp(int inputs, int[] hidden, int classes, double dropout, double learningRate, long seed) {
        return mlp(inputs, hidden, classes, dropout, new Adam(learningRate), seed);
    }

    /** The same MLP with another optimizer (see {@link #optimizer}). */
    public static MultiLayerNetwork mlp(int inputs, int[] hidden, int classes, double dropout,
                                        org.nd4j.linalg.learning.config.IUpdater updater, long seed) {
        NeuralNetConfiguration.ListBuilder b = new NeuralNetConfiguration.Builder()
                .seed(seed)
                .updater(updater)
                .weightInit(WeightInit.RELU)
                .list();
        int in = inputs;
        for (int h : hidden) {
            DenseLayer.Builder layer = new DenseLayer.Builder().nIn(in).nOut(h).activation(Activation.RELU);
            if (dropout > 0 && in != inputs) {
                layer.dropOut(1 - dropout); // DL4J takes the probability of keeping a unit
            }
            b.layer(layer.build());
            in = h;
        }
        DenseLayer.Builder out = new DenseLayer.Builder().nIn(in).nOut(classes).activation(Activation.IDENTITY)
                .weightInit(WeightInit.XAVIER);
        if (dropout > 0 && hidden.length > 0) {
            out.dropOut(1 - dropout);
        }
        MultiLayerConfiguration conf = b.layer(out.build()).build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        return net;
    }

    /** The most elements one weight matrix may have: BLAS (and ND4J's gemm through it) indexes a matrix with 32-bit ints. */
    static final long MAX_MATRIX_ELEMENTS = Integer.MAX_VALUE;

    /**
     * Refuses, before any network is built, an {@code inputs - hidden... - classes} MLP that cannot be allocated: a weight
     * matrix with more elements than {@link #MAX_MATRIX_ELEMENTS}, or parameters that, with what training keeps beside
     * them (a gradient per parameter and the optimizer's state, e.g. Adam's two moments), need more bytes than
     * {@code limitBytes}. Without this a huge layer size makes ND4J's native allocation crash the JVM.
     *
     * @param option     the option or recipe field that gave {@code hidden}, for the message
     * @param limitBytes the memory ND4J may allocate (see {@link #nd4jMemoryLimit()})
     * @throws IllegalArgumentException naming the option, the model's shape, its parameter count and bytes, and the limit
     */
    public static void checkFits(String option, int inputs, int[] hidden, int classes,
                                 org.nd4j.linalg.learning.config.IUpdater updater, long limitBytes) {
        String shape = shape(inputs, hidden, classes);
        java.math.BigInteger params = java.math.BigInteger.ZERO;
        long in = inputs;
        long[] outs = new long[hidden.length + 1];
        for (int i = 0; i < hidden.length; i++) {
            outs[i] = hidden[i];
        }
        outs[hidden.length] = classes;
        for (long o : outs) {
            long elements = Math.multiplyExact(in, o); // both below 2^31: no overflow
            if (elements > MAX_MATRIX_ELEMENTS) {
                throw new IllegalArgumentException(String.format(java.util.Locale.ROOT, "%s: the %s model's %dx%d weight matrix"
                        + " has %,d elements, more than ND4J can address in one matrix (%,d); use smaller layers", option, shape,
                        in, o, elements, MAX_MATRIX_ELEMENTS));
            }
            params = params.add(java.math.BigInteger.valueOf(elements + o)); // weights and biases
            in = o;
        }
        long n = params.longValueExact(); // at most ~2^31 * 2^31 * layers: fits a long for any int[] a JVM holds
        long width = org.nd4j.linalg.api.buffer.DataType.FLOAT.width(); // DL4J's default network type
        java.math.BigInteger paramBytes = params.multiply(java.math.BigInteger.valueOf(width));
        // parameters, their gradients, and the optimizer's state (2 per parameter for Adam)
        java.math.BigInteger trainBytes = params.multiply(java.math.BigInteger.valueOf(2)).add(
                java.math.BigInteger.valueOf(updater.stateSize(n))).multiply(java.math.BigInteger.valueOf(width));
        if (limitBytes > 0 && trainBytes.compareTo(java.math.BigInteger.valueOf(limitBytes)) > 0) {
            throw new IllegalArgumentException(String.format(java.util.Locale.ROOT, "%s: the %s model has %,d parameters (%s as"
                    + " float32; %s with the gradients and the optimizer's state training needs), more than the %s ND4J may"
                    + " allocate here; use smaller layers or give the JVM more memory (-Xmx, or -Dorg.bytedeco.javacpp.maxBytes,"
                    + " in DISTILL_JAVA_OPTS)", option, shape, n, bytes(paramBytes), bytes(trainBytes), bytes(java.math.BigInteger.valueOf(limitBytes))));
        }
    }

    /**
     * The memory ND4J may allocate off the heap in this JVM: JavaCPP's limit ({@code org.bytedeco.javacpp.maxBytes},
     * by default the heap's maximum), or the machine's physical memory where there is none, whichever is smaller.
     */
    public static long nd4jMemoryLimit() {
        long max = org.bytedeco.javacpp.Pointer.maxBytes();
        long physical = org.bytedeco.javacpp.Pointer.totalPhysicalBytes();
        if (max <= 0) {
            return physical;
        }
        return physical > 0 ? Math.min(max, physical) : max;
    }

    /** Bytes for a message: "317.6 GB". */
    static String bytes(java.math.BigInteger b) {
        double v = b.doubleValue();
        String[] units = {"bytes", "KB", "MB", "GB", "TB", "PB", "EB"};
        int u = 0;
        while (v >= 1000 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return u == 0 ? b + " bytes" : String.format(java.util.Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /** The optimizers a recipe can name, with their fixed settings beside the learning rate. */
    public static final java.util.List<String> OPTIMIZERS = java.util.List.of("adam", "nadam", "amsgrad", "sgd", "nesterovs", "rmsprop");

    /**
     * An optimizer by name: adam, nadam, amsgrad (betas 0.9, 0.999), sgd (plain), nesterovs (momentum 0.9),
     * rmsprop (decay 0.95).
     */
    public static org.nd4j.linalg.learning.config.IUpdater optimizer(String name, double learningRate) {
        return switch (name) {
            case "adam" -> new Adam(learningRate);
            case "nadam" -> new org.nd4j.linalg.learning.config.Nadam(learningRate);
            case "amsgrad" -> new org.nd4j.linalg.learning.config.AMSGrad(learningRate);
            case "sgd" -> new org.nd4j.linalg.learning.config.Sgd(learningRate);
            case "nesterovs" -> new org.nd4j.linalg.learning.config.Nesterovs(learningRate, 0.9);
            case "rmsprop" -> new org.nd4j.linalg.learning.config.RmsProp(learningRate);
            default -> throw new IllegalArgumentException("unknown optimizer '" + name + "'; known: " + String.join(", ", OPTIMIZERS));
        };
    }

    /** "784-1200-1200-10" for logs and tables. */
    public static String shape(int inputs, int[] hidden, int classes) {
        StringBuilder sb = new StringBuilder().append(inputs);
        for (int h : hidden) {
            sb.append('-').append(h);
        }
        return sb.append('-').append(classes).toString();
    }
}
