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
