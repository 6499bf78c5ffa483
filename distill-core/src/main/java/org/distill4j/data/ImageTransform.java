package org.distill4j.data;

/**
 * A label-keeping transform of images of one {@link ImageShape} ({@link RandomShift}, {@link RandomFlip}): rows must be
 * images of that shape, and a transformed image keeps its label.
 */
abstract class ImageTransform implements Augmentation {
    final ImageShape shape;

    ImageTransform(ImageShape shape, String name) {
        if (shape == null) {
            throw new IllegalArgumentException(name + ": the image shape is missing");
        }
        this.shape = shape;
    }

    /** The layout of the images this transform takes (channels, height, width); never null. */
    public ImageShape shape() {
        return shape;
    }

    /** Rows must be images of {@link #shape()}. */
    @Override
    public void checkFeatureCount(int featureCount) {
        shape.check(featureCount, describe());
    }

    /** False: a moved or mirrored image keeps its label. */
    @Override
    public boolean removesLabels() {
        return false;
    }

    @Override
    public String toString() {
        return describe();
    }
}
