package org.distill4j.data;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Image augmentations: a shift moves every channel of a row by the drawn (dy, dx), pixels from outside taking the fill
 * (checked pixel by pixel against coordinates, on a shape of odd sides with three channels, and on a worked example); every
 * move in [-max, max]^2 is drawn; a flip mirrors rows left to right with its probability; both keep labels and indices and
 * leave the input batch alone; a chain applies its parts in order from one generator; bad shapes and settings are named.
 */
class ImageAugmentationTest {
    private static final ImageShape SHAPE = new ImageShape(3, 5, 7);
    private static final int ROWS = 29;

    static Batch images(ImageShape shape, int rows, Random rng) {
        float[] x = new float[rows * shape.size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (rng.nextGaussian() + 0.5);
        }
        int[] y = new int[rows];
        int[] idx = new int[rows];
        for (int r = 0; r < rows; r++) {
            y[r] = rng.nextInt(10);
            idx[r] = 500 + 3 * r;
        }
        y[2] = Dataset.UNLABELED;
        return new Batch(idx, x, shape.size(), y);
    }

    /** Pixel (c, y, x) of row r, or {@code outside} where (y, x) is not in the image. */
    static float pixel(Batch b, ImageShape s, int r, int c, int y, int x, float outside) {
        if (y < 0 || y >= s.height() || x < 0 || x >= s.width()) {
            return outside;
        }
        return b.features()[r * s.size() + (c * s.height() + y) * s.width() + x];
    }

    @Test
    void aShiftMovesEveryChannelByTheDrawnOffsetAndFillsTheRest() {
        Random data = new Random(3);
        for (int max : new int[]{1, 2, 4}) {
            for (float fill : new float[]{0f, -0.75f}) {
                RandomShift shift = new RandomShift(SHAPE, max, fill);
                Batch b = images(SHAPE, ROWS, data);
                float[] before = b.features().clone();
                Batch out = shift.apply(b, new Random(41));
                Random draws = new Random(41); // the same draws, in the documented order
                assertArrayEquals(before, b.features(), "the input batch is not changed");
                assertArrayEquals(b.indices(), out.indices());
                assertArrayEquals(b.labels(), out.labels(), "a shifted image keeps its label");
                for (int r = 0; r < ROWS; r++) {
                    int dy = draws.nextInt(2 * max + 1) - max;
                    int dx = draws.nextInt(2 * max + 1) - max;
                    for (int c = 0; c < SHAPE.channels(); c++) {
                        for (int y = 0; y < SHAPE.height(); y++) {
                            for (int x = 0; x < SHAPE.width(); x++) {
                                assertEquals(pixel(b, SHAPE, r, c, y - dy, x - dx, fill), pixel(out, SHAPE, r, c, y, x, Float.NaN),
                                        "max " + max + ", row " + r + " moved by (" + dy + ", " + dx + "), pixel " + c + "/" + y + "/" + x);
                            }
                        }
                    }
                }
            }
        }
    }

    /** A generator that answers {@code nextInt} from a script. */
    static Random scripted(int... ints) {
        return new Random() {
            int next;

            @Override
            public int nextInt(int bound) {
                int v = ints[next++];
                assertTrue(v < bound, v + " within " + bound);
                return v;
            }
        };
    }

    @Test
    void aWorkedShift() {
        ImageShape s = ImageShape.grayscale(3, 4);
        float[] x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        Batch b = new Batch(new int[]{0}, x, 12, new int[]{7});
        // max 2: nextInt(5) - 2; dy = 3 - 2 = 1 (down one row), dx = 1 - 2 = -1 (left one column)
        Batch out = new RandomShift(s, 2, 0f).apply(b, scripted(3, 1));
        assertArrayEquals(new float[]{0, 0, 0, 0, 2, 3, 4, 0, 6, 7, 8, 0}, out.features());
        // dy = -2 (up two rows), dx = 2 (right two columns), fill -1
        out = new RandomShift(s, 2, -1f).apply(b, scripted(0, 4));
        assertArrayEquals(new float[]{-1, -1, 9, 10, -1, -1, -1, -1, -1, -1, -1, -1}, out.features());
        out = new RandomShift(s, 2, 0f).apply(b, scripted(2, 2)); // no move
        assertArrayEquals(x, out.features());
    }

    @Test
    void everyMoveUpToTheLargestIsDrawn() {
        RandomShift shift = new RandomShift(SHAPE, 2, 0f);
        // the shift's output over many rows shows moves at the extremes: a row moved by 2 down has two filled rows
        Batch b = images(SHAPE, 400, new Random(1));
        Batch out = shift.apply(b, new Random(2));
        int twoRowsFilled = 0;
        int untouched = 0;
        for (int r = 0; r < 400; r++) {
            int o = r * SHAPE.size();
            boolean top2 = true;
            for (int i = 0; i < 2 * SHAPE.width(); i++) {
                top2 &= out.features()[o + i] == 0f;
            }
            twoRowsFilled += top2 ? 1 : 0;
            boolean same = true;
            for (int i = 0; i < SHAPE.size(); i++) {
                same &= out.features()[o + i] == b.features()[o + i];
            }
            untouched += same ? 1 : 0;
        }
        assertTrue(twoRowsFilled > 40 && twoRowsFilled < 130, "about 1 in 5 rows moved down by 2: " + twoRowsFilled);
        assertTrue(untouched > 4 && untouched < 35, "about 1 in 25 rows not moved: " + untouched);
    }

    @Test
    void aFlipMirrorsRowsWithItsProbability() {
        Random data = new Random(5);
        for (double p : new double[]{1.0, 0.5}) {
            RandomFlip flip = new RandomFlip(SHAPE, p);
            Batch b = images(SHAPE, 301, data);
            float[] before = b.features().clone();
            Batch out = flip.apply(b, new Random(17));
            Random draws = new Random(17);
            assertArrayEquals(before, b.features(), "the input batch is not changed");
            assertArrayEquals(b.indices(), out.indices());
            assertArrayEquals(b.labels(), out.labels());
            int flipped = 0;
            for (int r = 0; r < b.size(); r++) {
                boolean f = draws.nextDouble() < p;
                flipped += f ? 1 : 0;
                for (int c = 0; c < SHAPE.channels(); c++) {
                    for (int y = 0; y < SHAPE.height(); y++) {
                        for (int x = 0; x < SHAPE.width(); x++) {
                            assertEquals(pixel(b, SHAPE, r, c, y, f ? SHAPE.width() - 1 - x : x, Float.NaN),
                                    pixel(out, SHAPE, r, c, y, x, Float.NaN), "p " + p + ", row " + r + ", pixel " + c + "/" + y + "/" + x);
                        }
                    }
                }
            }
            assertTrue(p == 1 ? flipped == b.size() : flipped > 120 && flipped < 180, "p " + p + ": " + flipped + " flipped");
            // a second flip of every row gives the batch back
            assertArrayEquals(b.features(), new RandomFlip(SHAPE, 1).apply(new RandomFlip(SHAPE, 1).apply(b, new Random(1)),
                    new Random(2)).features());
        }
    }

    @Test
    void aChainAppliesItsPartsInOrderFromOneGenerator() {
        Augmentation shift = Augmentation.shift(SHAPE, 2);
        Augmentation flip = Augmentation.flip(SHAPE);
        Augmentation mixup = Augmentation.mixup(0.4);
        Augmentation chain = shift.then(flip).then(mixup);
        Batch b = images(SHAPE, ROWS, new Random(9));
        Batch out = chain.apply(b, new Random(77));
        Random rng = new Random(77);
        Batch expected = mixup.apply(flip.apply(shift.apply(b, rng), rng), rng);
        assertArrayEquals(expected.features(), out.features());
        assertArrayEquals(expected.labels(), out.labels(), "the mixed rows lose their labels, the others keep theirs");
        long unlabeled = java.util.Arrays.stream(out.labels()).filter(l -> l == Dataset.UNLABELED).count();
        assertTrue(unlabeled > ROWS / 2, "mixup came last: most rows mixed, " + unlabeled);
        assertEquals("shift(max=2 px, fill=0.0, images=3x5x7) then flip(probability=0.5, images=3x5x7) then "
                + "mixup(alpha=0.4, probability=1.0)", chain.describe());
        assertThrows(IllegalArgumentException.class, () -> shift.then(null));
    }

    @Test
    void badShapesAndSettingsAreNamed() {
        Batch b = images(ImageShape.grayscale(4, 4), 3, new Random(1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Augmentation.shift(SHAPE, 1).apply(b, new Random(1)));
        assertEquals("shift(max=1 px, fill=0.0, images=3x5x7): a batch row has 16 features, but an image of 3x5x7 has 105", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Augmentation.flip(SHAPE).apply(b, new Random(1)));
        assertTrue(e.getMessage().startsWith("flip(probability=0.5, images=3x5x7): a batch row has 16 features"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Augmentation.shift(SHAPE, 5));
        assertEquals("shift: the largest move must be in [1, 4] pixels for images of 3x5x7, got 5", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Augmentation.shift(SHAPE, 0));
        assertThrows(IllegalArgumentException.class, () -> new RandomShift(SHAPE, 1, Float.NaN));
        assertThrows(IllegalArgumentException.class, () -> Augmentation.shift(null, 1));
        e = assertThrows(IllegalArgumentException.class, () -> new RandomFlip(SHAPE, 0));
        assertEquals("flip: the probability (the chance a row is flipped) must be in (0, 1], got 0.0", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new RandomFlip(SHAPE, Double.NaN));
        e = assertThrows(IllegalArgumentException.class, () -> new ImageShape(1, 0, 28));
        assertEquals("image shape 1x0x28 (channels x height x width): every dimension must be >= 1", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new ImageShape(4096, 4096, 4096));
    }
}
