package org.distill4j.data;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * Finds and loads Fashion-MNIST (H. Xiao, K. Rasul, R. Vollgraf, arXiv:1708.07747) or any other
 * 10-class dataset in its IDX layout (MNIST too).
 *
 * <p>Where it looks, in order; the first that applies wins:
 * <ol>
 *   <li>an explicit directory (an error if it lacks the files: an explicit choice never falls back);</li>
 *   <li>the directory in {@code $DISTILL_DATA} (likewise an error if set but incomplete);</li>
 *   <li>{@code /usr/share/datasets/fashion-mnist}, where Debian's {@code dataset-fashion-mnist} puts it;</li>
 *   <li>the embedded subset on the class path under {@value #EMBEDDED_RESOURCE} (shipped in the
 *       examples jar, so demos run offline anywhere).</li>
 * </ol>
 * A directory holds {@code train-images-idx3-ubyte}, {@code train-labels-idx1-ubyte},
 * {@code t10k-images-idx3-ubyte} and {@code t10k-labels-idx1-ubyte}, each raw or with {@code .gz}.
 */
public final class FashionMnist {
    /** Environment variable naming a dataset directory. */
    public static final String ENV = "DISTILL_DATA";
    /** Where Debian's dataset-fashion-mnist package installs the files. */
    public static final Path SYSTEM_DIR = Path.of("/usr/share/datasets/fashion-mnist");
    /** Class-path folder of the embedded subset. */
    public static final String EMBEDDED_RESOURCE = "distill4j/datasets/fashion-mnist-subset/";
    /** The ten Fashion-MNIST class names, by label. */
    public static final List<String> CLASS_NAMES = List.of("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");

    static final String[] FILES = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

    private FashionMnist() {
    }

    /**
     * A train/test split, where it was read from, and the images' layout (one channel of the IDX files' rows and columns;
     * both splits have it).
     */
    public record Split(Dataset train, Dataset test, String source, ImageShape image) {
    }

    /** A split's part and its images' layout. */
    private record Part(Dataset data, ImageShape image, String source) {
    }

    /** The split of two parts, whose images must have one layout. */
    private static Split split(Part train, Part test, String source) {
        if (!train.image().equals(test.image())) {
            throw new IllegalArgumentException(test.source() + ": images of " + test.image().height() + "x" + test.image().width()
                    + " pixels, but the training images (" + train.source() + ") are " + train.image().height() + "x"
                    + train.image().width());
        }
        return new Split(train.data(), test.data(), source, train.image());
    }

    /**
     * No dataset in any place the lookup tries (no directory given, no {@code $DISTILL_DATA}, no system copy, no embedded
     * subset on the class path): a condition of the environment to change, not a programming error. An
     * {@link IllegalStateException}, as it was before it had a type of its own.
     */
    public static final class NotFoundException extends IllegalStateException {
        private static final long serialVersionUID = 1L;

        /** An exception with the given message, which should say where the lookup tried and how to provide the data. */
        public NotFoundException(String message) {
            super(message);
        }
    }

    /**
     * Loads from the first location that applies (see the class doc); {@code explicit} may be null.
     *
     * @throws NotFoundException when no location applies
     * @throws IllegalArgumentException when the directory given, or the one in {@code $DISTILL_DATA}, is not a folder of the
     *                                  IDX files (an explicit choice never falls back)
     */
    public static Split load(Path explicit) {
        return load(explicit, System::getenv, SYSTEM_DIR, FashionMnist.class.getClassLoader());
    }

    static Split load(Path explicit, Function<String, String> env, Path systemDir, ClassLoader loader) {
        if (explicit != null) {
            return loadDirectory(explicit, "the given data directory");
        }
        String fromEnv = env.apply(ENV);
        if (fromEnv != null && !fromEnv.isBlank()) {
            return loadDirectory(Path.of(fromEnv), "$" + ENV);
        }
        if (missingFiles(systemDir).isEmpty()) {
            return loadDirectory(systemDir, "the system dataset");
        }
        if (loader.getResource(EMBEDDED_RESOURCE + FILES[0] + ".gz") != null) {
            return loadEmbedded(loader);
        }
        throw new NotFoundException("no Fashion-MNIST found: pass a data directory, set $" + ENV
                + ", install Debian's dataset-fashion-mnist (" + systemDir + "), or put distill-examples (which embeds a subset) on the class path");
    }

    /** Loads a directory in the IDX layout; {@code origin} says in errors how it was chosen. */
    public static Split loadDirectory(Path dir, String origin) {
        if (!java.nio.file.Files.exists(dir)) {
            throw new IllegalArgumentException(origin + " " + dir + " does not exist; expected a folder of Fashion-MNIST's idx"
                    + " files (" + String.join(", ", FILES) + ", each raw or .gz)");
        }
        if (!java.nio.file.Files.isDirectory(dir)) {
            throw new IllegalArgumentException(origin + " " + dir + " is a file, not a folder; expected a folder of Fashion-MNIST's"
                    + " idx files (" + String.join(", ", FILES) + ", each raw or .gz)");
        }
        List<String> missing = missingFiles(dir);
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(origin + " " + dir + " lacks " + String.join(", ", missing)
                    + " (each raw or .gz)");
        }
        try {
            Part train = read(dir, FILES[0], FILES[1], "fashion-mnist/train");
            Part test = read(dir, FILES[2], FILES[3], "fashion-mnist/test");
            return split(train, test, dir.toAbsolutePath().toString());
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    /** Loads the embedded subset from the class path. */
    public static Split loadEmbedded(ClassLoader loader) {
        try {
            Part train = readEmbedded(loader, FILES[0], FILES[1], "fashion-mnist-subset/train");
            Part test = readEmbedded(loader, FILES[2], FILES[3], "fashion-mnist-subset/test");
            return split(train, test, "embedded subset (classpath:" + EMBEDDED_RESOURCE + ")");
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    private static List<String> missingFiles(Path dir) {
        List<String> missing = new ArrayList<>();
        for (String f : FILES) {
            if (resolve(dir, f) == null) {
                missing.add(f);
            }
        }
        return missing;
    }

    private static Path resolve(Path dir, String base) {
        Path gz = dir.resolve(base + ".gz");
        if (Files.isRegularFile(gz)) {
            return gz;
        }
        Path raw = dir.resolve(base);
        return Files.isRegularFile(raw) ? raw : null;
    }

    private static Part read(Path dir, String images, String labels, String name) throws IOException {
        Path ip = resolve(dir, images);
        Path lp = resolve(dir, labels);
        IdxReader.Images im;
        int[] l;
        try (InputStream in = Files.newInputStream(ip)) {
            im = IdxReader.readImages(in, ip.toString());
        }
        try (InputStream in = Files.newInputStream(lp)) {
            l = IdxReader.readLabels(in, lp.toString());
        }
        return combine(im, l, name, ip.toString(), lp.toString());
    }

    private static Part readEmbedded(ClassLoader loader, String images, String labels, String name) throws IOException {
        String ip = EMBEDDED_RESOURCE + images + ".gz";
        String lp = EMBEDDED_RESOURCE + labels + ".gz";
        IdxReader.Images im;
        int[] l;
        try (InputStream in = open(loader, ip)) {
            im = IdxReader.readImages(in, "classpath:" + ip);
        }
        try (InputStream in = open(loader, lp)) {
            l = IdxReader.readLabels(in, "classpath:" + lp);
        }
        return combine(im, l, name, "classpath:" + ip, "classpath:" + lp);
    }

    private static InputStream open(ClassLoader loader, String resource) throws IOException {
        InputStream in = loader.getResourceAsStream(resource);
        if (in == null) {
            throw new IOException("classpath resource " + resource + " not found");
        }
        return in;
    }

    private static Part combine(IdxReader.Images im, int[] labels, String name, String imageSource, String labelSource) {
        if (im.count() != labels.length) {
            throw new IllegalArgumentException(imageSource + " / " + labelSource + ": " + im.count() + " images but "
                    + labels.length + " labels");
        }
        if (im.rows() <= 0 || im.cols() <= 0) {
            throw new IllegalArgumentException(imageSource + ": images of " + im.rows() + "x" + im.cols()
                    + " pixels, expected at least 1x1");
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] >= CLASS_NAMES.size()) {
                throw new IllegalArgumentException(labelSource + ": label " + i + " is " + labels[i] + ", expected a class in [0, "
                        + CLASS_NAMES.size() + ")");
            }
        }
        return new Part(new Dataset(name, im.pixels(), im.featureCount(), labels, CLASS_NAMES.size()),
                ImageShape.grayscale(im.rows(), im.cols()), imageSource);
    }
}
