package org.distill4j.cuda.nn;

import java.util.List;

/**
 * A dense network as the GPU MLP engine runs it: layers {@code in -> out} with an activation and input
 * dropout, and the optimizer that trains it. Built from a DL4J MultiLayerNetwork by {@link Dl4jMlp}.
 *
 * @param inputs    features per sample
 * @param layers    the dense layers, first to last (the last one gives the logits)
 * @param optimizer how a training step updates the weights
 */
public record MlpSpec(int inputs, List<Layer> layers, Optimizer optimizer) {
    /**
     * Keeps an unmodifiable copy of {@code layers} and checks that each layer takes what the one before gives (the first:
     * {@code inputs}).
     *
     * @throws NullPointerException     if {@code layers}, one of its elements or {@code optimizer} is null
     * @throws IllegalArgumentException if there is no layer, or a layer's inputs differ from what the one before gives,
     *                                  naming the layer
     */
    public MlpSpec {
        layers = List.copyOf(layers);
        java.util.Objects.requireNonNull(optimizer, "optimizer");
        if (layers.isEmpty()) {
            throw new IllegalArgumentException("an MLP needs at least one layer");
        }
        int in = inputs;
        for (int i = 0; i < layers.size(); i++) {
            Layer l = layers.get(i);
            if (l.in() != in) {
                throw new IllegalArgumentException("layer " + i + " takes " + l.in() + " inputs, but the layer before gives " + in);
            }
            in = l.out();
        }
    }

    /** Outputs of the last layer (the classes). */
    public int outputs() {
        return layers.get(layers.size() - 1).out();
    }

    /** Weights and biases in all. */
    public long parameters() {
        long n = 0;
        for (Layer l : layers) {
            n += (long) l.in() * l.out() + l.out();
        }
        return n;
    }

    /**
     * One dense layer: {@code act(dropout(x) W + b)}, W row-major {@code [in][out]}.
     *
     * @param dropout probability of dropping an input unit in training (0 for none)
     */
    public record Layer(int in, int out, Activation activation, double dropout) {
        /**
         * Checks the layer.
         *
         * @throws NullPointerException     if {@code activation} is null
         * @throws IllegalArgumentException if {@code in} or {@code out} is not {@code > 0}, or {@code dropout} is outside
         *                                  [0, 1) or NaN
         */
        public Layer {
            java.util.Objects.requireNonNull(activation, "activation");
            if (in <= 0 || out <= 0) {
                throw new IllegalArgumentException("a dense layer needs positive sizes, got " + in + " -> " + out);
            }
            if (!(dropout >= 0 && dropout < 1)) {
                throw new IllegalArgumentException("dropout must be in [0, 1), got " + dropout);
            }
        }
    }

    /** The activations the engine runs (those of DL4J it matches exactly). */
    public enum Activation {
        /** {@code z} itself (DL4J's identity, e.g. the logits layer). */
        IDENTITY,
        /** {@code max(z, 0)}; its derivative is taken as 0 at {@code z = 0}. */
        RELU,
        /** {@code tanh(z)}. */
        TANH,
        /** The logistic function {@code 1 / (1 + exp(-z))}. */
        SIGMOID,
        /** DL4J's default GELU: {@code x * sigmoid(1.702 x)}. */
        GELU_SIGMOID;

        /** The activation of a pre-activation value. */
        public double apply(double z) {
            return switch (this) {
                case IDENTITY -> z;
                case RELU -> z > 0 ? z : 0;
                case TANH -> Math.tanh(z);
                case SIGMOID -> 1 / (1 + Math.exp(-z));
                case GELU_SIGMOID -> z / (1 + Math.exp(-1.702 * z));
            };
        }

        /** Its derivative at pre-activation {@code z}. */
        public double derivative(double z) {
            return switch (this) {
                case IDENTITY -> 1;
                case RELU -> z > 0 ? 1 : 0;
                case TANH -> {
                    double t = Math.tanh(z);
                    yield 1 - t * t;
                }
                case SIGMOID -> {
                    double sg = 1 / (1 + Math.exp(-z));
                    yield sg * (1 - sg);
                }
                case GELU_SIGMOID -> {
                    double sg = 1 / (1 + Math.exp(-1.702 * z));
                    yield sg + 1.702 * z * sg * (1 - sg);
                }
            };
        }
    }

    /**
     * The optimizer: Adam as DL4J applies it (bias correction folded into the step size, epsilon added to
     * sqrt(v)), with decoupled weight decay (AdamW) when {@code weightDecay > 0}; or plain SGD.
     */
    public record Optimizer(Kind kind, double learningRate, double beta1, double beta2, double epsilon, double weightDecay) {
        /** Which update rule. */
        public enum Kind {
            /** Adam as DL4J applies it, with decoupled weight decay (AdamW) when {@code weightDecay > 0}. */
            ADAM,
            /** Plain SGD: {@code w -= learningRate * g}; its betas and epsilon are not used, and it takes no weight decay. */
            SGD
        }

        /**
         * Checks the settings.
         *
         * @throws NullPointerException     if {@code kind} is null
         * @throws IllegalArgumentException if the learning rate, epsilon or weight decay is negative, infinite or NaN, a
         *                                  beta is outside [0, 1) or NaN, or SGD is given a weight decay
         */
        public Optimizer {
            java.util.Objects.requireNonNull(kind, "kind");
            if (!(learningRate >= 0) || Double.isInfinite(learningRate)) {
                throw new IllegalArgumentException("learning rate " + learningRate + ": expected a finite value >= 0");
            }
            if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
                throw new IllegalArgumentException("beta1 " + beta1 + ", beta2 " + beta2 + ": Adam's betas must be in [0, 1)");
            }
            if (!(epsilon >= 0) || Double.isInfinite(epsilon)) {
                throw new IllegalArgumentException("epsilon " + epsilon + ": expected a finite value >= 0");
            }
            if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
                throw new IllegalArgumentException("weight decay " + weightDecay + ": expected a finite value >= 0");
            }
            if (kind == Kind.SGD && weightDecay != 0) {
                throw new IllegalArgumentException("weight decay " + weightDecay + " with SGD: the engine's SGD step takes no weight decay "
                        + "(Adam does, decoupled)");
            }
        }

        /**
         * Adam with learning rate {@code lr} and DL4J's defaults: beta1 0.9, beta2 0.999, epsilon 1e-8, no weight decay.
         *
         * @throws IllegalArgumentException if {@code lr} is negative, infinite or NaN
         */
        public static Optimizer adam(double lr) {
            return new Optimizer(Kind.ADAM, lr, 0.9, 0.999, 1e-8, 0);
        }

        /**
         * Plain SGD with learning rate {@code lr} (0 for a network that is not trained, such as a teacher).
         *
         * @throws IllegalArgumentException if {@code lr} is negative, infinite or NaN
         */
        public static Optimizer sgd(double lr) {
            return new Optimizer(Kind.SGD, lr, 0, 0, 0, 0);
        }
    }
}
