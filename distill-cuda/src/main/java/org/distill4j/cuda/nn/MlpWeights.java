package org.distill4j.cuda.nn;

/**
 * An MLP's parameters on the host: per layer, W row-major {@code [in][out]} and b {@code [out]}.
 *
 * @param w weights per layer
 * @param b biases per layer
 */
public record MlpWeights(float[][] w, float[][] b) {
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
            if (w[i].length != l.in() * l.out() || b[i].length != l.out()) {
                throw new IllegalArgumentException("layer " + i + ": W has " + w[i].length + " values and b " + b[i].length + ", expected "
                        + l.in() + " x " + l.out() + " and " + l.out());
            }
        }
    }
}
