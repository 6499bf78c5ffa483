package org.distill4j.data;

/**
 * An intermediate activation of a model for a batch: row-major values, {@code rows x product(shape)},
 * with the per-sample shape ({@code {D}} or {@code {C, H, W}}).
 *
 * @param values the activation values, row-major: sample {@code r} at {@code [r * product(shape), (r + 1) * product(shape))}
 * @param rows   the number of samples, {@code >= 0}
 * @param shape  the shape of one sample's activation, each dimension {@code >= 0}
 */
public record Feature(float[] values, int rows, int[] shape) {
    /**
     * Checks that {@code values} holds {@code rows x product(shape)} values; the arrays are kept as given, not copied.
     *
     * @throws IllegalArgumentException when {@code rows} or a dimension is negative, or the number of values disagrees
     * @throws NullPointerException     if {@code values} or {@code shape} is null
     */
    public Feature {
        long size = 1;
        boolean negative = rows < 0;
        for (int d : shape) {
            size *= d;
            negative |= d < 0;
        }
        if (negative) { // -2 rows of -3 values would pass the count below
            throw new IllegalArgumentException("feature of " + rows + " rows x " + java.util.Arrays.toString(shape)
                    + ", expected rows >= 0 and every dimension >= 0");
        }
        if (values.length != rows * size) {
            throw new IllegalArgumentException("feature has " + values.length + " values, expected " + rows + " x "
                    + java.util.Arrays.toString(shape));
        }
    }
}
