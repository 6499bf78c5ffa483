package org.distill4j.cuda.nn;

/**
 * How far a network's training has come, and its optimizer's state, per layer in {@link MlpWeights}' layout
 * (W row-major {@code [in][out]}, then b): what a trainer needs to go on where another stopped (the engine
 * after DL4J's steps, DL4J after the engine's).
 *
 * @param steps  optimizer steps taken (DL4J's iteration count; Adam's bias correction counts from it)
 * @param epochs epochs finished (DL4J's epoch count)
 * @param m      Adam's first moments, or null (SGD, or Adam before its first step: zeros)
 * @param v      Adam's second moments, or null with {@code m}
 */
public record MlpOptimizerState(int steps, int epochs, MlpWeights m, MlpWeights v) {
    /**
     * Checks the state.
     *
     * @throws IllegalArgumentException if {@code steps} or {@code epochs} is negative, or only one of {@code m} and
     *                                  {@code v} is given
     */
    public MlpOptimizerState {
        if (steps < 0 || epochs < 0) {
            throw new IllegalArgumentException("steps and epochs are counts, got " + steps + " and " + epochs);
        }
        if ((m == null) != (v == null)) {
            throw new IllegalArgumentException("Adam's state needs both moments or neither");
        }
    }

    /** A network that has not been trained. */
    public static MlpOptimizerState fresh() {
        return new MlpOptimizerState(0, 0, null, null);
    }
}
