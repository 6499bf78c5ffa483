package org.distill4j.testing;

import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.lossfunctions.LossFunctions;

/** Small DL4J networks for tests. */
public final class Nets {
    private Nets() {
    }

    /** in -> hidden (relu, optional dropout) -> out with identity activation: a student shape. */
    public static MultiLayerNetwork logitsMlp(int in, int hidden, int out, IUpdater updater, long seed, double dropout) {
        NeuralNetConfiguration.ListBuilder b = new NeuralNetConfiguration.Builder().seed(seed).updater(updater)
                .weightInit(WeightInit.XAVIER).list();
        DenseLayer.Builder h = new DenseLayer.Builder().nIn(in).nOut(hidden).activation(Activation.RELU);
        if (dropout > 0) {
            h.dropOut(1 - dropout);
        }
        MultiLayerConfiguration conf = b.layer(h.build())
                .layer(new DenseLayer.Builder().nIn(hidden).nOut(out).activation(Activation.IDENTITY).build())
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        return net;
    }

    /** The same shape ending in a softmax OutputLayer with multi-class cross-entropy (DL4J's own loss). */
    public static MultiLayerNetwork softmaxMlp(int in, int hidden, int out, IUpdater updater, long seed) {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder().seed(seed).updater(updater)
                .weightInit(WeightInit.XAVIER).list()
                .layer(new DenseLayer.Builder().nIn(in).nOut(hidden).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(hidden).nOut(out)
                        .activation(Activation.SOFTMAX).build())
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        return net;
    }
}
