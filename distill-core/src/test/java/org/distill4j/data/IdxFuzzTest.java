package org.distill4j.data;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Damaged IDX files, raw and gzip: truncated at every length, bytes changed at random, header sizes at extremes. Each
 * is read (the data written, whenever the change hit a byte that a checksum covers or the reader ignores: gzip's CRC32
 * covers every data byte; a raw file has no checksum, so a changed pixel reads as another pixel) or refused with an
 * IOException naming the file; nothing else escapes, and no header size is trusted for an allocation. Seed:
 * {@code -Ddistill.fuzz.seed}; cases: {@code -Ddistill.fuzz.cases}.
 */
class IdxFuzzTest {
    static final long SEED = Long.getLong("distill.fuzz.seed", 20261122L);
    static final int CASES = Integer.getInteger("distill.fuzz.cases", 300);
    static final String SOURCE = "fuzz/images-idx3-ubyte";

    enum Outcome { SAME, OTHER, REFUSED }

    static byte[] images() {
        return IdxReaderTest.idx(3, new int[]{3, 5, 7}, IdxReaderTest.pixels(3 * 5 * 7));
    }

    static byte[] labels() {
        return IdxReaderTest.idx(1, new int[]{5}, new byte[]{0, 9, 3, 7, 1});
    }

    /** Reads {@code b} as images (or labels): the valid content, other content, or an IOException naming the source. */
    static Outcome check(byte[] b, boolean image, Object valid, String what) {
        try {
            if (image) {
                IdxReader.Images im = IdxReader.readImages(new ByteArrayInputStream(b), SOURCE);
                assertEquals((long) im.rows() * im.cols() * im.count(), im.pixels().length, what + ": pixels and sizes disagree");
                assertEquals((long) im.rows() * im.cols(), im.featureCount(), what + ": the feature count overflowed");
                IdxReader.Images v = (IdxReader.Images) valid;
                return Arrays.equals(v.pixels(), im.pixels()) && v.count() == im.count() && v.rows() == im.rows() && v.cols() == im.cols()
                        ? Outcome.SAME : Outcome.OTHER;
            }
            int[] l = IdxReader.readLabels(new ByteArrayInputStream(b), SOURCE);
            return Arrays.equals((int[]) valid, l) ? Outcome.SAME : Outcome.OTHER;
        } catch (IOException e) {
            assertTrue(e.getMessage() != null && e.getMessage().startsWith(SOURCE + ": "), what + ": the message names no file: " + e);
            return Outcome.REFUSED;
        } catch (RuntimeException | OutOfMemoryError e) {
            throw new AssertionError(what + ": " + e + " escaped", e);
        }
    }

    @Test
    void everyTruncationIsRefusedNamingTheFile() throws IOException {
        for (boolean gz : new boolean[]{false, true}) {
            for (boolean image : new boolean[]{true, false}) {
                byte[] raw = image ? images() : labels();
                Object valid = image ? IdxReader.readImages(new ByteArrayInputStream(raw), SOURCE)
                        : IdxReader.readLabels(new ByteArrayInputStream(raw), SOURCE);
                byte[] b = gz ? IdxReaderTest.gzip(raw) : raw;
                for (int len = 0; len < b.length; len++) {
                    assertEquals(Outcome.REFUSED, check(Arrays.copyOf(b, len), image, valid, (gz ? "gzip " : "raw ") + (image ? "images" : "labels")
                            + " cut to " + len + " bytes"));
                }
            }
        }
    }

    @Test
    void randomByteChangesAreReadOrRefused() throws IOException {
        Random rnd = new Random(SEED);
        for (boolean gz : new boolean[]{false, true}) {
            for (boolean image : new boolean[]{true, false}) {
                byte[] raw = image ? images() : labels();
                Object valid = image ? IdxReader.readImages(new ByteArrayInputStream(raw), SOURCE)
                        : IdxReader.readLabels(new ByteArrayInputStream(raw), SOURCE);
                byte[] file = gz ? IdxReaderTest.gzip(raw) : raw;
                int other = 0;
                for (int c = 0; c < CASES; c++) {
                    byte[] b = file.clone();
                    StringBuilder what = new StringBuilder((gz ? "gzip " : "raw ") + (image ? "images" : "labels") + ", seed " + SEED
                            + ", case " + c + ":");
                    for (int j = 1 + rnd.nextInt(3); j > 0; j--) {
                        int at = rnd.nextInt(b.length);
                        int x = 1 + rnd.nextInt(255);
                        b[at] ^= (byte) x;
                        what.append(" byte ").append(at).append(" ^= ").append(x);
                    }
                    other += check(b, image, valid, what.toString()) == Outcome.OTHER ? 1 : 0;
                }
                if (gz) { // a changed byte of compressed data never reads as other pixels: gzip's CRC32 catches it
                    assertEquals(0, other, (image ? "images" : "labels") + ": damaged gzip files read as other data");
                }
            }
        }
    }

    @Test
    void headerSizesAtExtremesAreRefusedBeforeAllocating() throws IOException {
        int[] extremes = {0, 1, 2, 5, 7, 65_535, 65_536, 65_537, 46_341, 1 << 24, Integer.MAX_VALUE - 8, Integer.MAX_VALUE, -1,
                Integer.MIN_VALUE};
        byte[] raw = images();
        IdxReader.Images valid = IdxReader.readImages(new ByteArrayInputStream(raw), SOURCE);
        for (int dim = 0; dim < 3; dim++) {
            for (int v : extremes) {
                for (boolean gz : new boolean[]{false, true}) {
                    byte[] b = raw.clone();
                    ByteBuffer.wrap(b).putInt(4 + 4 * dim, v);
                    check(gz ? IdxReaderTest.gzip(b) : b, true, valid, "dimension " + (dim + 1) + " set to " + v + (gz ? ", gzip" : ""));
                }
            }
        }
        int[] none = new int[0];
        for (int v : extremes) {
            byte[] b = labels();
            ByteBuffer.wrap(b).putInt(4, v);
            check(b, false, none, "label count set to " + v);
        }
    }

    /**
     * No images, each of 65,537 x 65,537 pixels: a file of 16 bytes, whose image size (rows x cols) overflows an int. Read as
     * it was, its feature count wrapped around to 131,073; it is refused as too large, naming the file.
     */
    @Test
    void anImageSizeBeyondAnIntIsRefusedEvenWithoutImages() {
        for (int side : new int[]{65_537, 65_536, 46_341}) {
            byte[] b = IdxReaderTest.idx(3, new int[]{0, side, side}, new byte[0]);
            IOException e = assertThrows(IOException.class, () -> IdxReader.readImages(new ByteArrayInputStream(b), SOURCE), side + "");
            assertTrue(e.getMessage().startsWith(SOURCE + ": ") && e.getMessage().contains(side + "x" + side), e.getMessage());
        }
    }

    /**
     * Sizes whose product (count x rows x cols) overflows a long: 2^30 x 2^30 x 16 wrapped to 0, so an empty body was read
     * as 2^30 images; 3 x (2^31 - 1) wrapped to a negative count (an IllegalArgumentException from readNBytes).
     */
    @Test
    void imageCountsWhoseProductOverflowsALongAreRefused() {
        int[][] shapes = {{1 << 30, 1 << 30, 16}, {Integer.MAX_VALUE, Integer.MAX_VALUE, Integer.MAX_VALUE}};
        for (int[] shape : shapes) {
            byte[] b = IdxReaderTest.idx(3, shape, new byte[0]);
            IOException e = assertThrows(IOException.class, () -> IdxReader.readImages(new ByteArrayInputStream(b), SOURCE),
                    Arrays.toString(shape));
            assertTrue(e.getMessage().startsWith(SOURCE + ": ") && e.getMessage().contains("too large"), e.getMessage());
        }
    }
}
