package org.distill4j.train;

/**
 * A value that may change from epoch to epoch (temperature, hard-label weight alpha).
 *
 * <p>Epochs are numbered from 0. {@link #linear} reaches its start value at epoch 0 and its end value
 * at the last epoch, moving in equal steps between.
 */
public interface Schedule {

    /** The value at {@code epoch} (0-based) of a run of {@code epochs} epochs. */
    double at(int epoch, int epochs);

    /** A short description for logs and provenance, e.g. {@code linear(4.0 -> 1.0)}. */
    String describe();

    /** The same value every epoch. */
    static Schedule constant(double value) {
        return new Schedule() {
            @Override
            public double at(int epoch, int epochs) {
                return value;
            }

            @Override
            public String describe() {
                return "constant(" + value + ")";
            }
        };
    }

    /** From {@code start} at epoch 0 to {@code end} at the last epoch, linearly. */
    static Schedule linear(double start, double end) {
        return new Schedule() {
            @Override
            public double at(int epoch, int epochs) {
                if (epochs <= 1) {
                    return start;
                }
                double f = Math.min(1.0, Math.max(0.0, epoch / (double) (epochs - 1)));
                // the last epoch gets end itself: start + (end - start) can miss it by an ulp (0.4 -> 0.1 gave 0.09999999999999998)
                return f == 1.0 ? end : start + (end - start) * f;
            }

            @Override
            public String describe() {
                return "linear(" + start + " -> " + end + ")";
            }
        };
    }
}
