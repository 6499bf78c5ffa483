package org.distill4j.data;

/**
 * An intermediate activation of a model for a batch: row-major values, {@code rows x product(shape)},
 * with the per-sample shape ({@code {D}} or {@code {C, H, W}}).
 */
public record Feature(float[] values, int rows, int[] shape) {
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
