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
}
