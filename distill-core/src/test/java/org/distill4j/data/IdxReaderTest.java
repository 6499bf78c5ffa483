package org.distill4j.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class IdxReaderTest {

    static byte[] idx(int dims, int[] shape, byte[] body) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * shape.length + body.length);
        b.put((byte) 0).put((byte) 0).put((byte) 8).put((byte) dims);
        for (int s : shape) {
            b.putInt(s);
        }
        b.put(body);
        return b.array();
    }

    static byte[] gzip(byte[] raw) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
            gz.write(raw);
        }
        return out.toByteArray();
    }

    static byte[] pixels(int n) {
        byte[] p = new byte[n];
        for (int i = 0; i < n; i++) {
            p[i] = (byte) (i * 37 + 11);
        }
        return p;
    }

    @Test
    void readsRawAndGzipImagesAndLabels() throws IOException {
        byte[] body = pixels(3 * 2 * 5);
        byte[] raw = idx(3, new int[]{3, 2, 5}, body);
        for (byte[] file : new byte[][]{raw, gzip(raw)}) {
            IdxReader.Images im = IdxReader.readImages(new ByteArrayInputStream(file), "x");
            assertEquals(3, im.count());
            assertEquals(10, im.featureCount());
            for (int i = 0; i < body.length; i++) {
                assertEquals((body[i] & 0xff) / 255f, im.pixels()[i], 0f);
            }
        }
        byte[] labels = idx(1, new int[]{4}, new byte[]{3, 0, 9, 1});
        assertArrayEquals(new int[]{3, 0, 9, 1}, IdxReader.readLabels(new ByteArrayInputStream(gzip(labels)), "l"));
    }

    @Test
    void wrongMagicNamesTheSourceAndTheExpectedMagic() {
        byte[] bad = idx(3, new int[]{1, 1, 1}, new byte[1]);
        bad[0] = 0x50;
        IOException e = assertThrows(IOException.class, () -> IdxReader.readImages(new ByteArrayInputStream(bad), "imgs.idx"));
        assertTrue(e.getMessage().contains("imgs.idx: not an IDX file (magic 50 00 08 03, expected 00 00 08 03"), e.getMessage());
        byte[] labelsAsImages = idx(1, new int[]{2}, new byte[2]);
        e = assertThrows(IOException.class, () -> IdxReader.readImages(new ByteArrayInputStream(labelsAsImages), "f"));
        assertTrue(e.getMessage().contains("has 1 dimensions") && e.getMessage().contains("expected 3"), e.getMessage());
        byte[] floats = idx(1, new int[]{2}, new byte[2]);
        floats[2] = 0x0d;
        e = assertThrows(IOException.class, () -> IdxReader.readLabels(new ByteArrayInputStream(floats), "f"));
        assertTrue(e.getMessage().contains("data type 0x0d is not supported"), e.getMessage());
    }

    @Test
    void truncatedFilesSayHowMuchWasMissing() throws IOException {
        byte[] raw = idx(3, new int[]{4, 3, 3}, pixels(36));
        byte[] cut = Arrays.copyOf(raw, raw.length - 7);
        IOException e = assertThrows(IOException.class, () -> IdxReader.readImages(new ByteArrayInputStream(cut), "cut"));
        assertTrue(e.getMessage().contains("cut: truncated: expected 36 pixel bytes") && e.getMessage().contains("found 29"),
                e.getMessage());
        byte[] gz = gzip(raw);
        byte[] cutGz = Arrays.copyOf(gz, gz.length - 12);
        e = assertThrows(IOException.class, () -> IdxReader.readImages(new ByteArrayInputStream(cutGz), "cut.gz"));
        assertTrue(e.getMessage().contains("cut.gz") && e.getMessage().contains("truncated"), e.getMessage());
        byte[] header = Arrays.copyOf(raw, 9);
        e = assertThrows(IOException.class, () -> IdxReader.readImages(new ByteArrayInputStream(header), "h"));
        assertTrue(e.getMessage().contains("truncated in the header"), e.getMessage());
    }

    @Test
    void aCorruptHeaderDeclaringHugeSizesFailsAsTruncatedNotOutOfMemory() {
        byte[] lie = idx(3, new int[]{2_000_000, 28, 28}, pixels(100)); // claims 1.5 GB, holds 100 bytes
        IOException e = assertThrows(IOException.class, () -> IdxReader.readImages(new ByteArrayInputStream(lie), "lie"));
        assertTrue(e.getMessage().contains("lie: truncated: expected 1568000000 pixel bytes") && e.getMessage().contains("found 100"),
                e.getMessage());
    }

    /** Gzip with stored (uncompressed) blocks: a changed data byte still inflates, and only the gzip CRC32 can tell. */
    static byte[] gzipStored(byte[] raw) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out) {
            {
                def.setLevel(java.util.zip.Deflater.NO_COMPRESSION);
            }
        }) {
            gz.write(raw);
        }
        return out.toByteArray();
    }

    @Test
    void aGzipFileWhosePixelsChangedFailsItsChecksumNamingTheSource() throws IOException {
        byte[] body = pixels(4 * 3 * 3);
        byte[] gz = gzipStored(idx(3, new int[]{4, 3, 3}, body));
        int at = -1; // where the last pixel byte lies in the stored block
        for (int i = gz.length - 9; i >= 0 && at < 0; i--) {
            if (gz[i] == body[body.length - 1] && gz[i - 1] == body[body.length - 2]) {
                at = i;
            }
        }
        assertTrue(at > 0, "the stored block holds the pixels verbatim");
        byte[] changed = gz.clone();
        changed[at] ^= 0x40;
        IOException e = assertThrows(IOException.class, () -> IdxReader.readImages(new ByteArrayInputStream(changed), "px.gz"));
        assertTrue(e.getMessage().startsWith("px.gz: ") && e.getMessage().contains("corrupt"), e.getMessage());
        byte[] labels = gzipStored(idx(1, new int[]{4}, new byte[]{1, 2, 3, 4}));
        labels[labels.length - 9] ^= 0x01; // the last label
        e = assertThrows(IOException.class, () -> IdxReader.readLabels(new ByteArrayInputStream(labels), "lb.gz"));
        assertTrue(e.getMessage().startsWith("lb.gz: ") && e.getMessage().contains("corrupt"), e.getMessage());
    }

    @Test
    void damagedCompressedDataNamesTheSource() throws IOException {
        byte[] gz = gzip(idx(3, new int[]{40, 9, 9}, pixels(40 * 81)));
        byte[] damaged = gz.clone();
        for (int i = 12; i < 40; i++) {
            damaged[i] = (byte) 0xff; // not a valid deflate stream
        }
        IOException e = assertThrows(IOException.class, () -> IdxReader.readImages(new ByteArrayInputStream(damaged), "bad.gz"));
        assertTrue(e.getMessage().startsWith("bad.gz: "), e.getMessage());
    }

    @Test
    void bytesBeyondTheDeclaredSizesAreAMismatchNotIgnored() throws IOException {
        byte[] more = idx(1, new int[]{3}, new byte[]{1, 2, 3, 4, 5}); // the header says 3 labels, the file holds 5
        for (byte[] file : new byte[][]{more, gzip(more)}) {
            IOException e = assertThrows(IOException.class, () -> IdxReader.readLabels(new ByteArrayInputStream(file), "more"));
            assertTrue(e.getMessage().contains("more: ") && e.getMessage().contains("3 labels"), e.getMessage());
        }
        byte[] images = idx(3, new int[]{2, 2, 2}, pixels(12));
        IOException e = assertThrows(IOException.class, () -> IdxReader.readImages(new ByteArrayInputStream(images), "im"));
        assertTrue(e.getMessage().contains("im: ") && e.getMessage().contains("2 images of 2x2"), e.getMessage());
    }

    @Test
    void aLabelOutsideTheTenClassesNamesTheLabelFile(@TempDir Path tmp) throws IOException {
        writeSplit(tmp, 4, 2, false);
        Path labels = tmp.resolve("t10k-labels-idx1-ubyte");
        Files.write(labels, idx(1, new int[]{2}, new byte[]{3, 12}));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FashionMnist.loadDirectory(tmp, "test dir"));
        assertTrue(e.getMessage().contains(labels.toString()) && e.getMessage().contains("12"), e.getMessage());
    }

    private static void writeSplit(Path dir, int train, int test, boolean gz) throws IOException {
        Files.createDirectories(dir);
        int[][] sizes = {{train}, {test}};
        String[] prefixes = {"train", "t10k"};
        for (int s = 0; s < 2; s++) {
            int n = sizes[s][0];
            byte[] im = idx(3, new int[]{n, 28, 28}, pixels(n * 784));
            byte[] lb = new byte[n];
            for (int i = 0; i < n; i++) {
                lb[i] = (byte) (i % 10);
            }
            byte[] l = idx(1, new int[]{n}, lb);
            String suffix = gz ? ".gz" : "";
            Files.write(dir.resolve(prefixes[s] + "-images-idx3-ubyte" + suffix), gz ? gzip(im) : im);
            Files.write(dir.resolve(prefixes[s] + "-labels-idx1-ubyte" + suffix), gz ? gzip(l) : l);
        }
    }

    @Test
    void lookupOrderIsExplicitThenEnvironmentThenSystemThenEmbedded(@TempDir Path tmp) throws IOException {
        Path explicit = tmp.resolve("explicit");
        Path env = tmp.resolve("env");
        Path system = tmp.resolve("system");
        writeSplit(explicit, 3, 2, true);
        writeSplit(env, 5, 2, false);
        writeSplit(system, 7, 2, true);
        ClassLoader none = new ClassLoader(null) {
        };
        Map<String, String> vars = Map.of(FashionMnist.ENV, env.toString());
        assertEquals(3, FashionMnist.load(explicit, vars::get, system, none).train().size());
        assertEquals(5, FashionMnist.load(null, vars::get, system, none).train().size());
        assertEquals(7, FashionMnist.load(null, k -> null, system, none).train().size());
        IllegalStateException nothing = assertThrows(IllegalStateException.class,
                () -> FashionMnist.load(null, k -> null, tmp.resolve("absent"), none));
        assertTrue(nothing.getMessage().contains("dataset-fashion-mnist"), nothing.getMessage());
    }

    @Test
    void anExplicitOrEnvironmentDirectoryNeverFallsBackSilently(@TempDir Path tmp) throws IOException {
        Path system = tmp.resolve("system");
        writeSplit(system, 7, 2, true);
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        ClassLoader none = new ClassLoader(null) {
        };
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> FashionMnist.load(null, Map.of(FashionMnist.ENV, empty.toString())::get, system, none));
        assertTrue(e.getMessage().contains("$DISTILL_DATA " + empty) && e.getMessage().contains("train-images-idx3-ubyte"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> FashionMnist.load(empty, k -> null, system, none));
        assertTrue(e.getMessage().contains("the given data directory"), e.getMessage());
    }

    @Test
    void imageAndLabelCountsMustAgree(@TempDir Path tmp) throws IOException {
        writeSplit(tmp, 4, 2, false);
        Files.write(tmp.resolve("train-labels-idx1-ubyte"), idx(1, new int[]{3}, new byte[]{1, 2, 3}));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> FashionMnist.loadDirectory(tmp, "test dir"));
        assertTrue(e.getMessage().contains("4 images but 3 labels"), e.getMessage());
        Files.write(tmp.resolve("train-labels-idx1-ubyte"), new byte[]{0, 0, 8});
        UncheckedIOException u = assertThrows(UncheckedIOException.class, () -> FashionMnist.loadDirectory(tmp, "test dir"));
        assertTrue(u.getMessage().contains("train-labels-idx1-ubyte"), u.getMessage());
    }

    /** Every byte value maps to byte / 255 (pixels) or 0 to 255 (labels): bytes are unsigned, never negative. */
    @Test
    void everyByteValueIsReadUnsigned() throws IOException {
        byte[] all = new byte[256];
        for (int i = 0; i < 256; i++) {
            all[i] = (byte) (255 - i);
        }
        IdxReader.Images im = IdxReader.readImages(new ByteArrayInputStream(idx(3, new int[]{1, 16, 16}, all)), "all");
        assertEquals(1, im.count());
        assertEquals(16, im.rows());
        assertEquals(16, im.cols());
        assertEquals(256, im.featureCount());
        for (int i = 0; i < 256; i++) {
            assertEquals((float) ((255 - i) / 255.0), im.pixels()[i], 0f, "byte " + (255 - i));
        }
        assertEquals(1f, im.pixels()[0], 0f);
        assertEquals(0f, im.pixels()[255], 0f);
        int[] labels = IdxReader.readLabels(new ByteArrayInputStream(gzip(idx(1, new int[]{256}, all))), "all");
        for (int i = 0; i < 256; i++) {
            assertEquals(255 - i, labels[i]);
        }
        IdxReader.Images none = IdxReader.readImages(new ByteArrayInputStream(idx(3, new int[]{0, 28, 28}, new byte[0])), "none");
        assertEquals(0, none.count());
        assertEquals(784, none.featureCount());
        assertEquals(0, IdxReader.readLabels(new ByteArrayInputStream(idx(1, new int[]{0}, new byte[0])), "none").length);
    }

    /** The header's refusals, each naming the source and what was expected. */
    @Test
    void headerMistakesSayWhatWasExpected() {
        assertMessage("h: not an IDX file (magic ff 00 08 03, expected 00 00 08 03 for images (idx3))",
                headerOf((byte) 0xff, 0, 8, 3), true);
        assertMessage("h: not an IDX file (magic 00 01 08 01, expected 00 00 08 01 for labels (idx1))", headerOf(0, 1, 8, 1), false);
        assertMessage("h: IDX data type 0x09 is not supported, expected 0x08 (unsigned byte)", headerOf(0, 0, 9, 3), true);
        assertMessage("h: IDX file has 3 dimensions (magic 00 00 08 03), expected 1 for labels (idx1)", headerOf(0, 0, 8, 3), false);
        assertMessage("h: truncated: expected 4 the 4-byte magic number, found 2", new byte[]{0, 0}, true);
        assertMessage("h: truncated: expected 4 the 4-byte magic number, found 0", new byte[0], false);
        assertMessage("h: truncated in the header (dimension 3 of 3)", Arrays.copyOf(idx(3, new int[]{1, 2, 3}, new byte[6]), 14), true);
        assertMessage("h: truncated in the header (dimension 1 of 1)", headerOf(0, 0, 8, 1), false);
        assertMessage("h: dimension 2 is negative (-5)", idx(3, new int[]{1, -5, 3}, new byte[0]), true);
        assertMessage("h: dimension 1 is negative (-1)", idx(1, new int[]{-1}, new byte[0]), false);
        assertMessage("h: truncated in the gzip header", new byte[]{0x1f, (byte) 0x8b, 8}, true);
        // gzip is its two magic bytes together: one of them alone is a raw file's first byte
        assertMessage("h: not an IDX file (magic 1f 00 08 03, expected 00 00 08 03 for images (idx3))", headerOf(0x1f, 0, 8, 3), true);
        assertMessage("h: not an IDX file (magic 00 8b 08 01, expected 00 00 08 01 for labels (idx1))", headerOf(0, 0x8b, 8, 1), false);
    }

    /** Sizes whose product does not fit an array are refused before anything is read; one image's size must fit too. */
    @Test
    void sizesTooLargeForAnArrayAreRefused() {
        assertMessage("h: 65536 images of 256x128 is too large", idx(3, new int[]{65536, 256, 128}, new byte[0]), true);
        assertMessage("h: 0 images of 65536x65536 is too large", idx(3, new int[]{0, 65536, 65536}, new byte[0]), true);
        // one short of the limit in each product: read as truncated, not refused as too large
        assertMessage("h: truncated: expected 2147483639 pixel bytes (1 images of 1x2147483639), found 0",
                idx(3, new int[]{1, 1, Integer.MAX_VALUE - 8}, new byte[0]), true);
        assertMessage("h: 1 images of 1x2147483640 is too large", idx(3, new int[]{1, 1, Integer.MAX_VALUE - 7}, new byte[0]), true);
        assertMessage("h: 2147483640 images of 1x1 is too large", idx(3, new int[]{Integer.MAX_VALUE - 7, 1, 1}, new byte[0]), true);
    }

    /** Data that ends early or goes on past the declared sizes is named with the counts. */
    @Test
    void theDataMustEndWhereTheHeaderSays() throws IOException {
        assertMessage("h: truncated: expected 5 label bytes (5 labels), found 3", idx(1, new int[]{5}, new byte[3]), false);
        assertMessage("h: 2 more bytes after the label bytes (3 labels) the header declares: the header and the data disagree",
                idx(1, new int[]{3}, new byte[5]), false);
        assertMessage("h: 1 more bytes after the pixel bytes (2 images of 2x3) the header declares: the header and the data disagree",
                idx(3, new int[]{2, 2, 3}, new byte[13]), true);
        byte[] gz = gzip(idx(1, new int[]{3}, new byte[]{1, 2, 3}));
        IOException e = assertThrows(IOException.class, () -> IdxReader.readLabels(new ByteArrayInputStream(Arrays.copyOf(gz, gz.length - 4)), "h"));
        assertTrue(e.getMessage().startsWith("h: "), e.getMessage()); // the gzip trailer cut: its length is never checked
    }

    private static byte[] headerOf(int a, int b, int c, int d) {
        return new byte[]{(byte) a, (byte) b, (byte) c, (byte) d};
    }

    private static void assertMessage(String want, byte[] file, boolean images) {
        IOException e = assertThrows(IOException.class, () -> {
            if (images) {
                IdxReader.readImages(new ByteArrayInputStream(file), "h");
            } else {
                IdxReader.readLabels(new ByteArrayInputStream(file), "h");
            }
        });
        assertEquals(want, e.getMessage());
    }
}
