package org.distill4j.data;

/**
 * How a sample's features lay out an image: {@code channels} planes of {@code height} rows of {@code width} pixels, channel
 * first and row-major (feature {@code (c * height + y) * width + x}), as DL4J's convolutional input takes it and as
 * {@link FashionMnist} loads its images (one channel).
 *
 * @param channels planes, {@code >= 1}
 * @param height   rows, {@code >= 1}
 * @param width    pixels a row, {@code >= 1}
 */
public record ImageShape(int channels, int height, int width) {
    /**
     * @throws IllegalArgumentException naming the dimension when one is below 1, or when the image has more than
     *                                  {@code Integer.MAX_VALUE} values
     */
    public ImageShape {
        if (channels < 1 || height < 1 || width < 1) {
            throw new IllegalArgumentException("image shape " + channels + "x" + height + "x" + width
                    + " (channels x height x width): every dimension must be >= 1");
        }
        if ((long) channels * height * width > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("image shape " + channels + "x" + height + "x" + width + " has more than "
                    + Integer.MAX_VALUE + " values");
        }
    }

    /** One channel of {@code height x width} (a grayscale image, as Fashion-MNIST's 28 x 28). */
    public static ImageShape grayscale(int height, int width) {
        return new ImageShape(1, height, width);
    }

    /** The values an image has: {@code channels * height * width}. */
    public int size() {
        return channels * height * width;
    }

    /**
     * Checks that a batch's rows are images of this shape.
     *
     * @param who what is checking, for the message (e.g. {@code "shift(2) of 1x28x28 images"})
     * @throws IllegalArgumentException naming both counts when the batch's feature count is not {@link #size()}
     */
    void check(Batch batch, String who) {
        check(batch.featureCount(), who);
    }

    /** As {@link #check(Batch, String)}, for rows of {@code featureCount} features. */
    void check(int featureCount, String who) {
        if (featureCount != size()) {
            throw new IllegalArgumentException(who + ": a batch row has " + featureCount + " features, but an image of "
                    + this + " has " + size());
        }
    }

    @Override
    public String toString() {
        return channels + "x" + height + "x" + width;
    }
}
