package org.distill4j.examples;

import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.SubsamplingLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.weights.WeightInit;
import org.distill4j.data.ImageShape;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.learning.config.Adam;

/**
 * The demo's models: multilayer perceptrons with ReLU hidden layers, optional dropout on the inputs of
 * the hidden layers, Adam, and an identity output layer (logits; the loss is computed by Distill4J); and small
 * convolutional networks, the same layers after blocks of a 3x3 convolution and a 2x2 max pool ({@link #model}).
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

    /**
     * An {@code image - conv... - hidden... - classes} network: for each entry of {@code conv} a block of a 3x3 convolution
     * with that many channels (stride 1, padded to keep the image's sides, ReLU) and a 2x2 max pool of stride 2 (which halves
     * the sides, rounding down), then the MLP's ReLU hidden layers and its identity output layer. The inputs stay flat rows
     * of {@code image.size()} values (channel first, as {@link ImageShape} lays them out). Dropout applies to the inputs of
     * the dense layers (the hidden layers and the output layer), not to the convolutions. Without {@code conv} this is
     * {@link #mlp} on {@code image.size()} inputs, the same network.
     *
     * @throws IllegalArgumentException from {@link #checkConv} when the image is too small for the blocks
     */
    public static MultiLayerNetwork model(ImageShape image, int[] conv, int[] hidden, int classes, double dropout,
                                          org.nd4j.linalg.learning.config.IUpdater updater, long seed) {
        if (conv.length == 0) {
            return mlp(image.size(), hidden, classes, dropout, updater, seed);
        }
        checkConv("conv", image, conv);
        NeuralNetConfiguration.ListBuilder b = new NeuralNetConfiguration.Builder()
                .seed(seed)
                .updater(updater)
                .weightInit(WeightInit.RELU)
                .list();
        for (int c : conv) {
            b.layer(new ConvolutionLayer.Builder(3, 3).stride(1, 1).padding(1, 1).nOut(c).activation(Activation.RELU).build());
            b.layer(new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.MAX).kernelSize(2, 2).stride(2, 2).build());
        }
        for (int h : hidden) {
            DenseLayer.Builder layer = new DenseLayer.Builder().nOut(h).activation(Activation.RELU);
            if (dropout > 0) {
                layer.dropOut(1 - dropout);
            }
            b.layer(layer.build());
        }
        DenseLayer.Builder out = new DenseLayer.Builder().nOut(classes).activation(Activation.IDENTITY).weightInit(WeightInit.XAVIER);
        if (dropout > 0) {
            out.dropOut(1 - dropout);
        }
        MultiLayerConfiguration conf = b.layer(out.build())
                .setInputType(InputType.convolutionalFlat(image.height(), image.width(), image.channels())).build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        return net;
    }

    /** The most convolution blocks one network may have: a 2x2 pool per block. */
    static final int MAX_CONV_BLOCKS = 30;

    /**
     * The sides (height, width) of block {@code block}'s activation map (its convolution's output, before its pool) for
     * {@code image}: the image's sides halved, rounding down, once per block before it.
     */
    public static int[] convSides(ImageShape image, int block) {
        int h = image.height();
        int w = image.width();
        for (int i = 0; i < block; i++) {
            h /= 2;
            w /= 2;
        }
        return new int[]{h, w};
    }

    /**
     * Refuses convolution blocks that the image cannot take: a channel count below 1, or more blocks than the image's sides
     * can be halved (each block's pool needs sides of at least 2).
     *
     * @param option the option or recipe field that gave {@code conv}, for the message
     * @throws IllegalArgumentException naming the option, the image and the sides block by block
     */
    public static void checkConv(String option, ImageShape image, int[] conv) {
        for (int i = 0; i < conv.length; i++) {
            if (conv[i] < 1) {
                throw new IllegalArgumentException(option + "[" + i + "]: expected a channel count >= 1, got " + conv[i]);
            }
        }
        int most = 0;
        while (most < MAX_CONV_BLOCKS && Math.min(convSides(image, most)[0], convSides(image, most)[1]) >= 2) {
            most++;
        }
        if (conv.length > most) {
            StringBuilder sides = new StringBuilder();
            for (int i = 0; i <= most; i++) {
                int[] hw = convSides(image, i);
                sides.append(i == 0 ? "" : ", ").append(hw[0]).append('x').append(hw[1]);
            }
            throw new IllegalArgumentException(String.format(java.util.Locale.ROOT, "%s: %d convolution blocks, but %s images take"
                    + " at most %d (each block's 2x2 pool halves the sides: %s)", option, conv.length, image, most, sides));
        }
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
        checkFits(option, null, new int[0], inputs, hidden, classes, updater, limitBytes);
    }

    /**
     * As {@link #checkFits(String, int, int[], int, org.nd4j.linalg.learning.config.IUpdater, long)}, for a {@link #model}
     * with convolution blocks {@code conv} on {@code image} (none: the MLP on {@code inputs}): a block has
     * {@code 9 * in * out} weights and {@code out} biases, and the first dense layer takes the last block's pooled map.
     */
    public static void checkFits(String option, ImageShape image, int[] conv, int inputs, int[] hidden, int classes,
                                 org.nd4j.linalg.learning.config.IUpdater updater, long limitBytes) {
        String shape = conv.length == 0 ? shape(inputs, hidden, classes) : shape(image, conv, hidden, classes);
        java.math.BigInteger params = java.math.BigInteger.ZERO;
        long in = inputs;
        if (conv.length > 0) {
            long channels = image.channels();
            for (int c : conv) {
                java.math.BigInteger elements = java.math.BigInteger.valueOf(9 * channels).multiply(java.math.BigInteger.valueOf(c));
                if (elements.compareTo(java.math.BigInteger.valueOf(MAX_MATRIX_ELEMENTS)) > 0) {
                    throw new IllegalArgumentException(String.format(java.util.Locale.ROOT, "%s: the %s model's 3x3 convolution from"
                            + " %d to %d channels has %,d weights, more than ND4J can address in one array (%,d); use fewer"
                            + " channels", option, shape, channels, c, elements, MAX_MATRIX_ELEMENTS));
                }
                params = params.add(elements).add(java.math.BigInteger.valueOf(c));
                channels = c;
            }
            int[] hw = convSides(image, conv.length);
            in = channels * hw[0] * hw[1];
        }
        long[] outs = new long[hidden.length + 1];
        for (int i = 0; i < hidden.length; i++) {
            outs[i] = hidden[i];
        }
        outs[hidden.length] = classes;
        for (long o : outs) {
            // below 2^31 each for an MLP; a convolution's map may be up to 2^62 values: compared before it is multiplied
            long elements = in > MAX_MATRIX_ELEMENTS ? Long.MAX_VALUE : in * o;
            if (elements > MAX_MATRIX_ELEMENTS) {
                throw new IllegalArgumentException(String.format(java.util.Locale.ROOT, "%s: the %s model's %dx%d weight matrix"
                        + " has %s elements, more than ND4J can address in one matrix (%,d); use smaller layers", option, shape,
                        in, o, String.format(java.util.Locale.ROOT, "%,d", java.math.BigInteger.valueOf(in).multiply(java.math.BigInteger.valueOf(o))),
                        MAX_MATRIX_ELEMENTS));
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

    /** "28x28-conv8-conv16-100-10" for logs and tables: the image (its channels when more than one), the blocks, the rest. */
    public static String shape(ImageShape image, int[] conv, int[] hidden, int classes) {
        if (conv.length == 0) {
            return shape(image.size(), hidden, classes);
        }
        StringBuilder sb = new StringBuilder();
        if (image.channels() > 1) {
            sb.append(image.channels()).append('x');
        }
        sb.append(image.height()).append('x').append(image.width());
        for (int c : conv) {
            sb.append("-conv").append(c);
        }
        for (int h : hidden) {
            sb.append('-').append(h);
        }
        return sb.append('-').append(classes).toString();
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
