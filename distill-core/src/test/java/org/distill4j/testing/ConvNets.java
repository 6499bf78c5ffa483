package org.distill4j.testing;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.SubsamplingLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.learning.config.IUpdater;

import java.util.Random;

/**
 * Small DL4J convolutional networks for tests, in the shape recipes use: flat input rows of {@code c*h*w} values
 * ({@code InputType.convolutionalFlat}), a 3x3 convolution (padding 1, ReLU), a 2x2 max pooling (stride 2), optionally a
 * second 3x3 convolution, a ReLU dense layer and identity logits. Layer indices: 0 conv, 1 pool, 2 conv (when there is a
 * second one), then dense, then logits.
 */
public final class ConvNets {
    private ConvNets() {
    }

    /**
     * @param secondConv channels of the convolution after the pooling; 0 for none
     */
    public static MultiLayerNetwork cnn(DataType type, IUpdater updater, long seed, int channels, int height, int width,
                                        int firstConv, int secondConv, int dense, int classes) {
        NeuralNetConfiguration.ListBuilder b = new NeuralNetConfiguration.Builder().seed(seed).dataType(type).updater(updater)
                .weightInit(WeightInit.XAVIER).list()
                .layer(new ConvolutionLayer.Builder(3, 3).padding(1, 1).stride(1, 1).nOut(firstConv)
                        .activation(Activation.RELU).build())
                .layer(new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.MAX).kernelSize(2, 2).stride(2, 2).build());
        if (secondConv > 0) {
            b.layer(new ConvolutionLayer.Builder(3, 3).padding(1, 1).stride(1, 1).nOut(secondConv)
                    .activation(Activation.RELU).build());
        }
        b.layer(new DenseLayer.Builder().nOut(dense).activation(Activation.RELU).build())
                .layer(new DenseLayer.Builder().nOut(classes).activation(Activation.IDENTITY).build())
                .setInputType(InputType.convolutionalFlat(height, width, channels));
        MultiLayerNetwork net = new MultiLayerNetwork(b.build());
        net.init();
        return net;
    }

    /** Flat image rows: standard normal values (none zero), row-major. */
    public static float[] images(Random rng, int rows, int valuesPerRow) {
        float[] x = new float[rows * valuesPerRow];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        return x;
    }
}
