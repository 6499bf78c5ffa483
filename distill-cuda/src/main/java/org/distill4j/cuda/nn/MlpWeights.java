package org.distill4j.cuda.nn;

/**
 * An MLP's parameters on the host: per layer, W row-major {@code [in][out]} and b {@code [out]}.
 *
 * @param w weights per layer
 * @param b biases per layer
 */
public record MlpWeights(float[][] w, float[][] b) {
    /** The most values a Java array holds: the largest layer the host side takes ({@code in * out} weights). */
    public static final int MAX_ARRAY = Integer.MAX_VALUE - 8;

    /** A deep copy. */
    public MlpWeights copy() {
        float[][] w2 = new float[w.length][];
        float[][] b2 = new float[b.length][];
        for (int i = 0; i < w.length; i++) {
            w2[i] = w[i].clone();
            b2[i] = b[i].clone();
        }
        return new MlpWeights(w2, b2);
    }

    /** Checks the arrays against {@code spec}. */
    public void check(MlpSpec spec) {
        if (w.length != spec.layers().size() || b.length != w.length) {
            throw new IllegalArgumentException("weights for " + w.length + " layers, the spec has " + spec.layers().size());
        }
        for (int i = 0; i < w.length; i++) {
            MlpSpec.Layer l = spec.layers().get(i);
            long weights = (long) l.in() * l.out();
            if (weights > MAX_ARRAY) {
                throw new IllegalArgumentException("layer " + i + " is " + l.in() + " x " + l.out() + " = " + weights + " weights, more than a "
                        + "Java array holds (" + MAX_ARRAY + "); the engine takes layers of at most that many");
            }
            if (w[i].length != weights || b[i].length != l.out()) {
                throw new IllegalArgumentException("layer " + i + ": W has " + w[i].length + " values and b " + b[i].length + ", expected "
                        + l.in() + " x " + l.out() + " and " + l.out());
            }
        }
    }
}
