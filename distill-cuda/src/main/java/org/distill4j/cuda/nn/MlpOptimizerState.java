package org.distill4j.cuda.nn;

/**
 * An optimizer's state, per layer in {@link MlpWeights}' layout (W row-major {@code [in][out]}, then b):
 * what a trainer needs to go on where the engine stopped.
 *
 * @param steps optimizer steps taken (DL4J's iteration count)
 * @param m     Adam's first moments, or null for SGD
 * @param v     Adam's second moments, or null for SGD
 */
public record MlpOptimizerState(int steps, MlpWeights m, MlpWeights v) {
}
