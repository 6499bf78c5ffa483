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
