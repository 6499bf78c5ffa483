package org.distill4j.data;

import java.util.Locale;
import java.util.Random;

/**
 * Random horizontal flip of images: each row is mirrored left to right (pixel {@code x} takes pixel
 * {@code width - 1 - x}, every channel alike) with the given probability. Labels stay, which holds for classes that
 * do not depend on which way an image faces (Fashion-MNIST's clothes, CIFAR's objects; not digits or text).
 *
 * <p>The draws come from the {@code Random} given: one {@code nextDouble()} per row, in order.
 */
public final class RandomFlip extends ImageTransform {
    private final double probability;

    /**
     * @param shape       the images' layout
     * @param probability the chance a row is flipped, in {@code (0, 1]}
     * @throws IllegalArgumentException naming the setting when one is out of range
     */
    public RandomFlip(ImageShape shape, double probability) {
        super(shape, "flip");
        if (!(probability > 0 && probability <= 1)) {
            throw new IllegalArgumentException("flip: the probability (the chance a row is flipped) must be in (0, 1], got " + probability);
        }
        this.probability = probability;
    }

    /** The chance that a row is flipped, in {@code (0, 1]}. */
    public double probability() {
        return probability;
    }

    @Override
    public Batch apply(Batch batch, Random rng) {
        shape.check(batch, describe());
        int n = batch.size();
        int rowsOfPixels = shape.channels() * shape.height();
        int w = shape.width();
        int d = shape.size();
        float[] x = batch.features();
        float[] out = new float[x.length];
        for (int r = 0; r < n; r++) {
            if (!(rng.nextDouble() < probability)) {
                System.arraycopy(x, r * d, out, r * d, d);
                continue;
            }
            for (int line = 0; line < rowsOfPixels; line++) {
                int o = r * d + line * w;
                for (int i = 0; i < w; i++) {
                    out[o + i] = x[o + w - 1 - i];
                }
            }
        }
        return new Batch(batch.indices().clone(), out, batch.featureCount(), batch.labels().clone());
    }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "flip(probability=%s, images=%s)", probability, shape);
    }
}
