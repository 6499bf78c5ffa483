package org.distill4j.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which files Fashion-MNIST is read from (train and test, .gz or raw, a folder or the class path), and what each refusal names. */
class FashionMnistTest {
    private static final ClassLoader NONE = new ClassLoader(null) {
    };

    /** Images of n x rows x cols whose pixel j of image i is (seed + 3i + j) mod 256, labels (seed + i) mod 10. */
    private static void write(Path dir, String prefix, int n, int rows, int cols, int seed, boolean gz) throws IOException {
        byte[] px = new byte[n * rows * cols];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < rows * cols; j++) {
                px[i * rows * cols + j] = (byte) (seed + 3 * i + j);
            }
        }
        byte[] lb = new byte[n];
        for (int i = 0; i < n; i++) {
            lb[i] = (byte) ((seed + i) % 10);
        }
        Files.createDirectories(dir);
        byte[] im = IdxReaderTest.idx(3, new int[]{n, rows, cols}, px);
        byte[] l = IdxReaderTest.idx(1, new int[]{n}, lb);
        String s = gz ? ".gz" : "";
        Files.write(dir.resolve(prefix + "-images-idx3-ubyte" + s), gz ? IdxReaderTest.gzip(im) : im);
        Files.write(dir.resolve(prefix + "-labels-idx1-ubyte" + s), gz ? IdxReaderTest.gzip(l) : l);
    }

    private static void assertContent(Dataset d, String name, int n, int rows, int cols, int seed) {
        assertEquals(name, d.name());
        assertEquals(n, d.size());
        assertEquals(rows * cols, d.featureCount());
        assertEquals(10, d.classes());
        for (int i = 0; i < n; i++) {
            assertEquals((seed + i) % 10, d.labels()[i], name + " label " + i);
            for (int j = 0; j < rows * cols; j++) {
                assertEquals(((seed + 3 * i + j) & 0xff) / 255f, d.features()[i * rows * cols + j], 0f, name + " image " + i + " pixel " + j);
            }
        }
    }

    @Test
    void aDirectoryGivesTrainFromTrainFilesAndTestFromT10kFiles(@TempDir Path tmp) throws IOException {
        write(tmp, "train", 5, 3, 4, 17, false);
        write(tmp, "t10k", 3, 3, 4, 200, true);
        FashionMnist.Split s = FashionMnist.loadDirectory(tmp, "test dir");
        assertContent(s.train(), "fashion-mnist/train", 5, 3, 4, 17);
        assertContent(s.test(), "fashion-mnist/test", 3, 3, 4, 200);
        assertEquals(tmp.toAbsolutePath().toString(), s.source());
        assertEquals(ImageShape.grayscale(3, 4), s.image(), "the images' rows and columns");
        assertContent(FashionMnist.load(tmp).test(), "fashion-mnist/test", 3, 3, 4, 200); // an explicit folder comes first
        // a .gz beside a raw file of the same name is the one read
        write(tmp, "train", 2, 3, 4, 90, true);
        assertContent(FashionMnist.loadDirectory(tmp, "test dir").train(), "fashion-mnist/train", 2, 3, 4, 90);
    }

    @Test
    void theMissingFilesAreListed(@TempDir Path tmp) throws IOException {
        write(tmp, "train", 2, 2, 2, 0, true);
        Files.write(tmp.resolve("t10k-labels-idx1-ubyte"), IdxReaderTest.idx(1, new int[]{1}, new byte[1]));
        Files.createDirectories(tmp.resolve("t10k-images-idx3-ubyte.gz")); // a folder is not the file
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FashionMnist.loadDirectory(tmp, "the folder"));
        assertEquals("the folder " + tmp + " lacks t10k-images-idx3-ubyte (each raw or .gz)", e.getMessage());
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        e = assertThrows(IllegalArgumentException.class, () -> FashionMnist.loadDirectory(empty, "x"));
        assertEquals("x " + empty + " lacks train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                + "t10k-labels-idx1-ubyte (each raw or .gz)", e.getMessage());
        String files = "expected a folder of Fashion-MNIST's idx files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                + "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each raw or .gz)";
        e = assertThrows(IllegalArgumentException.class, () -> FashionMnist.loadDirectory(tmp.resolve("nowhere"), "x"));
        assertEquals("x " + tmp.resolve("nowhere") + " does not exist; " + files, e.getMessage());
        Path file = tmp.resolve("t10k-labels-idx1-ubyte");
        e = assertThrows(IllegalArgumentException.class, () -> FashionMnist.loadDirectory(file, "x"));
        assertEquals("x " + file + " is a file, not a folder; " + files, e.getMessage());
    }

    @Test
    void labelsMustBeOneOfTheTenClassesAndImagesAtLeastOnePixel(@TempDir Path tmp) throws IOException {
        write(tmp, "train", 2, 2, 2, 0, false);
        write(tmp, "t10k", 2, 2, 2, 0, false);
        Path labels = tmp.resolve("train-labels-idx1-ubyte");
        Files.write(labels, IdxReaderTest.idx(1, new int[]{2}, new byte[]{9, 10}));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FashionMnist.loadDirectory(tmp, "d"));
        assertEquals(labels + ": label 1 is 10, expected a class in [0, 10)", e.getMessage());
        Files.write(labels, IdxReaderTest.idx(1, new int[]{2}, new byte[]{9, 0}));
        assertArrayEquals(new int[]{9, 0}, FashionMnist.loadDirectory(tmp, "d").train().labels());

        Path images = tmp.resolve("train-images-idx3-ubyte");
        Files.write(images, IdxReaderTest.idx(3, new int[]{2, 0, 28}, new byte[0]));
        e = assertThrows(IllegalArgumentException.class, () -> FashionMnist.loadDirectory(tmp, "d"));
        assertEquals(images + ": images of 0x28 pixels, expected at least 1x1", e.getMessage());
        Files.write(images, IdxReaderTest.idx(3, new int[]{2, 28, 0}, new byte[0]));
        e = assertThrows(IllegalArgumentException.class, () -> FashionMnist.loadDirectory(tmp, "d"));
        assertEquals(images + ": images of 28x0 pixels, expected at least 1x1", e.getMessage());
        Files.write(images, IdxReaderTest.idx(3, new int[]{3, 1, 1}, new byte[3]));
        e = assertThrows(IllegalArgumentException.class, () -> FashionMnist.loadDirectory(tmp, "d"));
        assertEquals(images + " / " + labels + ": 3 images but 2 labels", e.getMessage());
    }

    @Test
    void trainAndTestImagesMustHaveOneShape(@TempDir Path tmp) throws IOException {
        write(tmp, "train", 2, 3, 4, 0, false);
        write(tmp, "t10k", 2, 4, 3, 0, false);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FashionMnist.loadDirectory(tmp, "d"));
        assertEquals(tmp.resolve("t10k-images-idx3-ubyte") + ": images of 4x3 pixels, but the training images ("
                + tmp.resolve("train-images-idx3-ubyte") + ") are 3x4", e.getMessage());
    }

    /** The embedded subset is read from the class path, after an explicit folder, $DISTILL_DATA and the system folder. */
    @Test
    void theEmbeddedSubsetIsReadFromTheClassPathLast(@TempDir Path tmp) throws IOException {
        Path root = tmp.resolve("cp");
        Path res = root.resolve(FashionMnist.EMBEDDED_RESOURCE);
        write(res, "train", 4, 2, 3, 50, true);
        write(res, "t10k", 2, 2, 3, 60, true);
        write(tmp.resolve("env"), "train", 6, 2, 3, 1, false);
        write(tmp.resolve("env"), "t10k", 1, 2, 3, 1, false);
        try (URLClassLoader cp = new URLClassLoader(new URL[]{root.toUri().toURL()}, null)) {
            FashionMnist.Split s = FashionMnist.load(null, k -> null, tmp.resolve("absent"), cp);
            assertContent(s.train(), "fashion-mnist-subset/train", 4, 2, 3, 50);
            assertContent(s.test(), "fashion-mnist-subset/test", 2, 2, 3, 60);
            assertEquals("embedded subset (classpath:" + FashionMnist.EMBEDDED_RESOURCE + ")", s.source());
            assertEquals(ImageShape.grayscale(2, 3), s.image());
            // a blank $DISTILL_DATA is not set; a set one comes before the class path
            assertEquals(4, FashionMnist.load(null, Map.of(FashionMnist.ENV, " ")::get, tmp.resolve("absent"), cp).train().size());
            assertEquals(6, FashionMnist.load(null, Map.of(FashionMnist.ENV, tmp.resolve("env").toString())::get, tmp.resolve("absent"),
                    cp).train().size());
            // a system folder that lacks a file is passed over
            Path partial = tmp.resolve("partial");
            write(partial, "train", 3, 2, 3, 1, false);
            assertEquals(4, FashionMnist.load(null, k -> null, partial, cp).train().size());
        }
        Files.delete(res.resolve("t10k-labels-idx1-ubyte.gz"));
        try (URLClassLoader cp = new URLClassLoader(new URL[]{root.toUri().toURL()}, null)) {
            UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> FashionMnist.loadEmbedded(cp));
            assertEquals("classpath resource " + FashionMnist.EMBEDDED_RESOURCE + "t10k-labels-idx1-ubyte.gz not found", e.getMessage());
        }
        // a condition of the environment, with a type of its own (a command line prints it as one line, not as a bug); still
        // an IllegalStateException for callers that caught one (IdxReaderTest catches it as one)
        FashionMnist.NotFoundException none = assertThrows(FashionMnist.NotFoundException.class,
                () -> FashionMnist.load(null, k -> null, tmp.resolve("absent"), NONE));
        assertTrue(none.getMessage().startsWith("no Fashion-MNIST found: pass a data directory, set $DISTILL_DATA, install Debian's "
                + "dataset-fashion-mnist (" + tmp.resolve("absent") + ")"), none.getMessage());
    }
}
