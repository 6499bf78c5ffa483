package org.distill4j.data;

import java.util.Locale;
import java.util.Random;

/**
 * Random translation of images: each row moves by {@code (dy, dx)}, both drawn uniformly from
 * {@code [-maxShift, maxShift]} per row, every channel alike; a pixel moved in from outside the image takes the fill value
 * (0, the background of images scaled to [0, 1] such as Fashion-MNIST's). That is the padded random crop of image
 * training recipes (pad by {@code maxShift}, crop back to the size). Labels stay: a shifted image still shows its class.
 *
 * <p>The draws come from the {@code Random} given, in a fixed order: per row, {@code dy} then {@code dx}.
 */
public final class RandomShift extends ImageTransform {
    private final int maxShift;
    private final float fill;

    /**
     * @param shape    the images' layout
     * @param maxShift the largest move, in pixels, either way along each axis: {@code >= 1} and below the image's height
     *                 and width
     * @param fill     the value of pixels moved in from outside the image (finite)
     * @throws IllegalArgumentException naming the setting when one is out of range
     */
    public RandomShift(ImageShape shape, int maxShift, float fill) {
        super(shape, "shift");
        if (maxShift < 1 || maxShift >= Math.min(shape.height(), shape.width())) {
            throw new IllegalArgumentException("shift: the largest move must be in [1, " + (Math.min(shape.height(), shape.width()) - 1)
                    + "] pixels for images of " + shape + ", got " + maxShift);
        }
        if (!Float.isFinite(fill)) {
            throw new IllegalArgumentException("shift: the fill value must be finite, got " + fill);
        }
        this.maxShift = maxShift;
        this.fill = fill;
    }

    /** The largest move, in pixels, either way along each axis: {@code >= 1} and below the image's height and width. */
    public int maxShift() {
        return maxShift;
    }

    /** The value of pixels moved in from outside the image; finite. */
    public float fill() {
        return fill;
    }

    @Override
    public Batch apply(Batch batch, Random rng) {
        shape.check(batch, describe());
        int n = batch.size();
        int c = shape.channels();
        int h = shape.height();
        int w = shape.width();
        int d = shape.size();
        float[] x = batch.features();
        float[] out = new float[x.length];
        int span = 2 * maxShift + 1;
        for (int r = 0; r < n; r++) {
            int dy = rng.nextInt(span) - maxShift;
            int dx = rng.nextInt(span) - maxShift;
            int x0 = Math.max(0, dx); // the output columns [x0, x1) take input columns [x0 - dx, x1 - dx)
            int x1 = Math.min(w, w + dx);
            for (int ch = 0; ch < c; ch++) {
                for (int y = 0; y < h; y++) {
                    int o = r * d + (ch * h + y) * w;
                    int sy = y - dy;
                    if (sy < 0 || sy >= h) {
                        java.util.Arrays.fill(out, o, o + w, fill);
                        continue;
                    }
                    java.util.Arrays.fill(out, o, o + x0, fill);
                    System.arraycopy(x, r * d + (ch * h + sy) * w + x0 - dx, out, o + x0, x1 - x0);
                    java.util.Arrays.fill(out, o + x1, o + w, fill);
                }
            }
        }
        return new Batch(batch.indices().clone(), out, batch.featureCount(), batch.labels().clone());
    }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "shift(max=%d px, fill=%s, images=%s)", maxShift, fill, shape);
    }
}
