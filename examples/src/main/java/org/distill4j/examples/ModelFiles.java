package org.distill4j.examples;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.distill4j.teacher.Dl4jTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.djl.DjlTeacher;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Model files on the command line: a DL4J MultiLayerNetwork zip, or an ONNX / TorchScript file run
 * through DJL, as a {@link Teacher} (a model that gives class scores), with the options that the
 * {@code label} and {@code eval} commands share: {@code --engine}, {@code --input-shape},
 * {@code --logits}, {@code --output-names} (each with a prefix, e.g. {@code --teacher-engine}).
 */
final class ModelFiles {
    private ModelFiles() {
    }

    /**
     * A loaded model.
     *
     * @param model      the model as a teacher (scores per row)
     * @param describe   what it is, for tables
     * @param parameters its parameter count, -1 when unknown (foreign models)
     * @param id         a content id: a store labeled by it is reused only for the very same model
     */
    record Loaded(Teacher model, String describe, long parameters, String id) implements AutoCloseable {
        @Override
        public void close() {
            if (model instanceof AutoCloseable c) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new IllegalStateException("closing " + describe + ": " + e.getMessage(), e);
                }
            }
        }
    }

    /** DJL options gathered from the command line; {@link #isSet(String)} tells whether an option is one of them. */
    static final class Options {
        private final String prefix;
        String engine;
        long[] inputShape;
        String logits;
        List<String> outputNames;

        Options(String prefix) {
            this.prefix = prefix;
        }

        boolean isSet(String option) {
            return option.equals(prefix + "engine") || option.equals(prefix + "input-shape") || option.equals(prefix + "logits")
                    || option.equals(prefix + "output-names");
        }

        void set(String option, String value) throws Main.UsageException {
            String o = option.substring(prefix.length());
            switch (o) {
                case "engine" -> engine = engine(option, name(option, value, "an engine name (onnxruntime, pytorch, auto)"));
                case "input-shape" -> inputShape = Arrays.stream(Main.sizes(option, value)).asLongStream().toArray();
                case "logits" -> logits = name(option, value, "an output name");
                case "output-names" -> {
                    // every name counts: a blank one would silently name an output "" (or, for ",", none at all)
                    List<String> names = Arrays.stream(value.split(",", -1)).map(String::trim).toList();
                    if (names.stream().anyMatch(String::isEmpty)) {
                        throw new Main.UsageException(option + ": '" + value + "' has a blank name; expected distinct output names "
                                + "separated by commas, e.g. logits,embedding");
                    }
                    for (String n : names) {
                        if (names.indexOf(n) != names.lastIndexOf(n)) {
                            throw new Main.UsageException(option + ": '" + value + "' names '" + n + "' twice; expected distinct output names");
                        }
                    }
                    outputNames = names;
                }
                default -> throw new Main.UsageException("unknown option " + option);
            }
        }

        /**
         * The DJL engines this command line ships with (its class path has their jars), each with the names that ask for it,
         * as DjlTeacher reads them (any case).
         */
        static final java.util.Map<String, List<String>> ENGINES = TeacherSpec.ENGINES;

        /**
         * {@code value} when it names an engine of {@link #ENGINES}: any other (one DJL has but this command line does not
         * ship, such as tensorflow, or no engine at all) is bad usage naming the option and the engines available, before
         * any data is loaded, not a failure deep in DjlTeacher.
         */
        private static String engine(String option, String value) throws Main.UsageException {
            String n = value.strip().toLowerCase(java.util.Locale.ROOT);
            if (n.equals("auto")) {
                return null; // as a recipe's engine and provenance write it: the one the extension implies
            }
            if (ENGINES.values().stream().noneMatch(names -> names.contains(n))) {
                throw new Main.UsageException(option + ": '" + Main.printable(value) + "' is not an available engine; available: "
                        + String.join(", ", ENGINES.keySet().stream().sorted().map(e -> {
                            List<String> names = ENGINES.get(e);
                            return e + " (or " + String.join(", ", names.subList(1, names.size())) + ")";
                        }).toList()));
            }
            return value;
        }

        private static String name(String option, String value, String expected) throws Main.UsageException {
            if (value.isBlank()) {
                throw new Main.UsageException(option + ": '" + value + "' is blank; expected " + expected);
            }
            return value;
        }

        boolean any() {
            return engine != null || inputShape != null || logits != null || outputNames != null;
        }

        TeacherSpec.Djl djl() {
            return new TeacherSpec.Djl(engine, inputShape, logits, outputNames);
        }

        /** Help lines for these options, aligned to {@code width} columns. */
        String help(int width) {
            String f = "  %-" + width + "s %s%n";
            return String.format(java.util.Locale.ROOT, f, prefix + "engine NAME", "onnxruntime | pytorch | auto (default, auto: from the extension, .onnx / .pt)")
                    + String.format(java.util.Locale.ROOT, f, prefix + "input-shape A,B", "per-sample input shape of an ONNX / TorchScript model (default: the feature count)")
                    + String.format(java.util.Locale.ROOT, f, prefix + "logits NAME", "the output with the class scores (default: the only output, or 'logits')")
                    + String.format(java.util.Locale.ROOT, f, prefix + "output-names A,B", "names for the outputs by position (TorchScript outputs have none)");
        }
    }

    /**
     * Loads {@code path} for the data {@code d} of images {@code image} (null: not known): a model of another number of
     * inputs or classes, or a convolutional one of other images, is refused, naming both.
     */
    static Loaded load(Path path, Options o, org.distill4j.data.Dataset d, org.distill4j.data.ImageShape image)
            throws IOException, Main.UsageException {
        return load(path, o, d.featureCount(), d.classes(), d.name(), image);
    }

    /** Loads {@code path} for data with {@code features} inputs and {@code classes} classes. */
    static Loaded load(Path path, Options o, int features, int classes) throws IOException, Main.UsageException {
        return load(path, o, features, classes, "the data", null);
    }

    /**
     * Why a DL4J network cannot read rows of {@code features} values laid out as {@code image} (null: not known), or null
     * when it can: a first dense layer of another width, or a convolutional input (a {@code convolutionalFlat} input type,
     * as {@link DemoModels#model} makes) of other images or another number of values. Without this DL4J fails at the first
     * batch with a message that names neither the file nor the data.
     *
     * @param data the data as the message names it, e.g. "the data" or a dataset's name
     */
    static String inputProblem(MultiLayerNetwork net, int features, org.distill4j.data.ImageShape image, String data) {
        org.deeplearning4j.nn.conf.InputPreProcessor pre = net.getLayerWiseConfigurations().getInputPreProcess(0);
        if (pre == null && net.getLayerWiseConfigurations().getConf(0).getLayer() instanceof org.deeplearning4j.nn.conf.layers.FeedForwardLayer f
                && f.getNIn() != features) {
            return "a DL4J model of " + f.getNIn() + " inputs, but " + data + " has " + features + " features";
        }
        if (pre instanceof org.deeplearning4j.nn.conf.preprocessor.FeedForwardToCnnPreProcessor cnn) {
            long c = cnn.getNumChannels();
            long h = cnn.getInputHeight();
            long w = cnn.getInputWidth();
            String model = "a DL4J model of " + c + "x" + h + "x" + w + " images (channels x height x width)";
            if (c * h * w != features) {
                return model + ", " + c * h * w + " inputs, but " + data + " has " + features + " features"
                        + (image != null ? " (" + image + " images)" : "");
            }
            if (image != null && (image.channels() != c || image.height() != h || image.width() != w)) {
                return model + ", but " + data + " has " + image + " images: as many values, in another layout";
            }
        }
        return null;
    }

    private static Loaded load(Path path, Options o, int features, int classes, String data, org.distill4j.data.ImageShape image)
            throws IOException, Main.UsageException {
        if (!Files.isRegularFile(path)) {
            throw new Main.UsageException(path + ": no such model file");
        }
        if (o.engine != null || TeacherSpec.isForeignModel(path)) {
            DjlTeacher t = Demo.djlTeacher(TeacherSpec.djl(path, o.djl(), 1), features, classes);
            return new Loaded(t, t.engine() + " " + path.getFileName(), -1, Demo.fileId(path));
        }
        if (o.any()) {
            throw new Main.UsageException(path.getFileName() + " is read as a DL4J model; --engine, --input-shape, --logits and "
                    + "--output-names apply to ONNX / TorchScript files");
        }
        // the checks' own messages name the file and the entry; ModelSerializer's are prefixed here
        MultiLayerNetwork net = readChecked(path, false, in -> {
            try {
                return ModelSerializer.restoreMultiLayerNetwork(in, false);
            } catch (IOException | RuntimeException e) {
                String holds = notAModel(path);
                if (holds != null) { // DL4J's own "Model wasnt found within file: gotConfig: [false], ..." says none of this
                    throw new NotAModelException(path + " is not a DL4J model: " + holds + "; expected a ModelSerializer zip"
                            + " (configuration.json and coefficients.bin), or for ONNX or TorchScript a .onnx / .pt name or --engine", e);
                }
                throw new IOException("cannot read " + path + " as a DL4J MultiLayerNetwork (ModelSerializer zip; for ONNX or "
                        + "TorchScript use a .onnx / .pt name or --engine): " + e.getMessage(), e);
            }
        });
        // a model of other classes would be read with the data's row stride (wrong numbers, or an index out of bounds), and
        // labeled into a store of another vocabulary; one of other inputs fails in DL4J without naming the file
        Dl4jTeacher t = Dl4jTeacher.of(net);
        if (t.classes() != classes) {
            throw new IllegalArgumentException(path + ": a DL4J model of " + t.classes() + " classes, but the data " + data + " has "
                    + classes);
        }
        String problem = inputProblem(net, features, image, data.equals("the data") ? data : "the data " + data);
        if (problem != null) {
            throw new IllegalArgumentException(path + ": " + problem);
        }
        return new Loaded(t, "DL4J " + path.getFileName(), net.numParams(), Demo.teacherId(net));
    }

    /**
     * What {@code path} holds when it is not a DL4J model, for the error ("an empty file", "a soft-target store", "a zip of
     * 1 entry (a.txt) without configuration.json"), or null when it looks like one (a zip with both entries) or cannot be read.
     */
    static String notAModel(Path path) {
        byte[] head = new byte[8];
        int n;
        try (java.io.InputStream in = Files.newInputStream(path)) {
            n = in.readNBytes(head, 0, head.length);
        } catch (IOException e) {
            return null;
        }
        if (n == 0) {
            return "the file is empty";
        }
        String start = new String(head, 0, n, java.nio.charset.StandardCharsets.ISO_8859_1);
        if (start.startsWith("D4JSTORE")) {
            return "it is a soft-target store (distill store info shows it)";
        }
        if (start.startsWith("PK\5\6")) {
            return "it is an empty zip";
        }
        if (!start.startsWith("PK\3\4")) {
            return "it is not a zip file";
        }
        List<String> names = new java.util.ArrayList<>();
        try (java.util.zip.ZipFile z = new java.util.zip.ZipFile(path.toFile())) {
            z.stream().forEach(e -> names.add(e.getName()));
        } catch (IOException e) {
            return "it is not a readable zip file (" + e.getMessage() + ")";
        }
        List<String> lacks = java.util.stream.Stream.of("configuration.json", "coefficients.bin").filter(e -> !names.contains(e)).toList();
        if (lacks.isEmpty()) {
            return null;
        }
        if (names.isEmpty()) {
            return "it is an empty zip";
        }
        return String.format(java.util.Locale.ROOT, "it is a zip of %d %s (%s%s) without %s", names.size(),
                names.size() == 1 ? "entry" : "entries", String.join(", ", names.subList(0, Math.min(5, names.size()))),
                names.size() > 5 ? ", ..." : "", String.join(" or ", lacks));
    }

    /** Reads a zip that {@link #readChecked} has checked. */
    interface ZipReader<T> {
        T read(java.io.InputStream zip) throws IOException;
    }

    /**
     * {@code reader}'s result for {@code zip} (e.g. {@code ModelSerializer.restoreMultiLayerNetwork(in, false)}), once
     * {@link #checkArrays(Path, boolean)} has passed. Both read the same open file: a file put in its place between the
     * two passes (a rename) is not the one read the second time.
     */
    static <T> T readChecked(Path zip, boolean loadUpdater, ZipReader<T> reader) throws IOException {
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(zip, java.nio.file.StandardOpenOption.READ)) {
            java.io.InputStream open = java.nio.channels.Channels.newInputStream(ch);
            check(zip, new java.io.BufferedInputStream(new java.io.FilterInputStream(open) {
                @Override
                public void close() {
                    // the channel stays open for the reader
                }
            }), loadUpdater, inflateBudget());
            ch.position(0);
            return reader.read(new java.io.BufferedInputStream(java.nio.channels.Channels.newInputStream(ch)));
        }
    }

    /**
     * The most bytes a zip's entries may inflate to, in all: a third of the most heap this JVM may use. ModelSerializer
     * (DL4J 1.0.0-M2.1) reads every entry into a byte array and holds them all at once; an entry whose size the zip does
     * not declare, as in the zips ModelSerializer writes, grows in a ByteArrayOutputStream to up to twice its size before it
     * is copied out, so one entry may take three times its size while it is read.
     */
    static long inflateBudget() {
        return Runtime.getRuntime().maxMemory() / 3;
    }

    /**
     * How many times configuration.json counts against the budget: ModelSerializer reads it line by line into a
     * StringBuilder (two bytes a character, grown by doubling), makes a String of it and parses it with Jackson.
     */
    static final int CONFIGURATION_WEIGHT = 8;

    /** The largest Java array, in bytes, as the JDK's own buffers bound it: ModelSerializer reads each entry into one. */
    static final long MAX_ENTRY_BYTES = Integer.MAX_VALUE - 8;

    /** The most bytes deflate gives per compressed byte: 258 repeated bytes from 2 bits. */
    private static final long MAX_DEFLATE_RATIO = 1032;

    /** The most values an ND4J shape buffer holds: {@code 2 * rank + 4} for ND4J's largest rank, 32. */
    private static final int MAX_SHAPE_VALUES = 2 * 32 + 4;

    /**
     * Checks the ND4J arrays that {@code ModelSerializer.restoreMultiLayerNetwork(zip, loadUpdater)} (DL4J 1.0.0-M2.1) hands
     * to {@code Nd4j.read}: each {@code coefficients.bin} entry, and each {@code updaterState.bin} with
     * {@code loadUpdater}. {@code Nd4j.read} allocates (natively) what a buffer's length field declares before it reads,
     * and builds the array of the shape buffer's shape over whatever data buffer follows: a damaged length got the JVM
     * killed for memory, a damaged shape reads out of bounds. So, reading the zip as ModelSerializer does (ZipInputStream,
     * by local headers; a name that comes twice is checked each time) and allocating nothing from a declared length, every
     * array must be as {@code Nd4j.write} writes it:
     * <ul>
     * <li>two buffers, each a header ({@code writeUTF} of an allocation mode; its length, an int for DIRECT, HEAP and
     * JAVACPP, a long for LONG_SHAPE and MIXED_DATA_TYPES, as {@code BaseDataBuffer.readHeader} reads it; {@code writeUTF}
     * of a data type) and its values, big-endian, each of the type's size;</li>
     * <li>names ND4J knows; the shape buffer of LONG (or INT) values, the data buffer of numbers (not COMPRESSED, whose
     * decompressed size nothing in the file vouches for, nor UTF8);</li>
     * <li>every declared length times its element size within the bytes the entry holds;</li>
     * <li>a shape buffer of {@code 2 * rank + 4} values (rank, shape, strides, extras, element-wise stride, order 'c' or
     * 'f') whose shape and strides stay inside the data buffer, and whose data type, where it names one, is the data
     * buffer's.</li>
     * </ul>
     * An entry of an empty coefficients.bin (a model without parameters) has no array to check.
     *
     * <p>ModelSerializer also reads every entry, of any name, into a byte array of the size its local header declares, or,
     * where it declares none, of all the entry inflates to: a zip bomb (a small file whose entry inflates to gigabytes)
     * or a header declaring gigabytes ended in an OutOfMemoryError. So every entry is checked, as ModelSerializer reads it
     * (the local headers; the central directory, which {@code ZipFile} would read, is not what it trusts, and its sizes
     * need not be the local headers'): a declared size above {@link #MAX_ENTRY_BYTES}, above what its compressed bytes
     * can give (stored: as many, deflated: {@value #MAX_DEFLATE_RATIO} times as many), or above the budget left is
     * refused before anything is inflated; and since a declared size may lie low or be missing, the bytes are counted as
     * they inflate, the check stopping at the first byte past an entry's limit or the budget ({@link #inflateBudget()},
     * all entries together; configuration.json counts {@value #CONFIGURATION_WEIGHT} times, for the String and JSON tree
     * made of it), having held 8 KiB at a time. A {@code preprocessor.bin} entry, which ModelSerializer would deserialize
     * with {@code ObjectInputStream} (whatever classes and array sizes it names), is refused. What this protects against is the heap of this JVM being
     * exhausted by the zip's own declarations and contents, not the time it takes to inflate up to the budget, nor a file
     * written over in place between this check and ModelSerializer's read ({@link #readChecked} reads one open file, so
     * a file renamed into its place is not read), nor memory the JVM needs for other things at the time.
     *
     * @throws IOException naming the file, the entry and what was expected, for a damaged array, an entry too large to
     *                     load, or a zip that cannot be read through
     */
    static void checkArrays(Path zip, boolean loadUpdater) throws IOException {
        checkArrays(zip, loadUpdater, inflateBudget());
    }

    /** {@link #checkArrays(Path, boolean)} with at most {@code budget} bytes inflated, in all. */
    static void checkArrays(Path zip, boolean loadUpdater, long budget) throws IOException {
        check(zip, new java.io.BufferedInputStream(Files.newInputStream(zip)), loadUpdater, budget);
    }

    /** Checks the zip {@code raw} reads (and closes it). */
    private static void check(Path zip, java.io.InputStream raw, boolean loadUpdater, long budget) throws IOException {
        String name = null; // the entry being read, for a zip that breaks off inside it
        try (java.util.zip.ZipInputStream in = new java.util.zip.ZipInputStream(raw)) {
            long inflated = 0; // by the entries before this one
            for (java.util.zip.ZipEntry e; (e = nextEntry(zip, in)) != null; ) {
                name = e.getName();
                if (e.isDirectory()) { // ModelSerializer throws an IllegalArgumentException without a message
                    throw new IOException(zip + ": entry " + Main.printable(name) + " is a directory; expected a DL4J ModelSerializer "
                            + "zip, which holds files only");
                }
                if (name.equals(ModelSerializer.PREPROCESSOR_BIN)) {
                    // read with ObjectInputStream.readObject: any class on the class path, any array a 27-byte stream declares
                    throw new IOException(zip + ": entry " + name + " holds a Java-serialized object, which ModelSerializer would "
                            + "deserialize (the classes and sizes the file names, unchecked): refused; DL4J 1.0.0-M2.1 does not write it, "
                            + "so re-save the model with ModelSerializer.writeModel");
                }
                // configuration.json becomes a String (two bytes a character, built in a StringBuilder) and a JSON tree
                Inflated entry = new Inflated(zip, name, in, inflated, budget,
                        name.equals(ModelSerializer.CONFIGURATION_JSON) ? CONFIGURATION_WEIGHT : 1);
                entry.declared(e);
                if (name.equals(ModelSerializer.COEFFICIENTS_BIN) || loadUpdater && name.equals(ModelSerializer.UPDATER_BIN)) {
                    new ArrayEntry(zip, name, entry, e.getSize()).check();
                }
                entry.drain();
                inflated += entry.charged();
            }
        } catch (java.util.zip.ZipException | java.io.EOFException e) {
            throw new IOException(zip + ": not a whole zip (" + e.getMessage() + (name == null ? "" : ", in entry " + Main.printable(name))
                    + "); expected a DL4J ModelSerializer zip", e);
        }
    }

    /**
     * One entry as it inflates: its bytes counted, and refused (an IOException naming the file and the entry) at the first
     * byte past {@link #MAX_ENTRY_BYTES} or past the budget the entries before it left.
     */
    private static final class Inflated extends java.io.InputStream {
        private final Path zip;
        private final String name;
        private final java.io.InputStream in;
        private final long before;
        private final long budget;
        /** How many bytes of the budget each inflated byte takes. */
        private final int weight;
        long count;

        Inflated(Path zip, String name, java.io.InputStream in, long before, long budget, int weight) {
            this.zip = zip;
            this.name = name;
            this.in = in;
            this.before = before;
            this.budget = budget;
            this.weight = weight;
        }

        /** The budget this entry has taken. */
        long charged() {
            return count * weight;
        }

        /** Refuses sizes the local header declares that ModelSerializer could not allocate, or that the bytes cannot give. */
        void declared(java.util.zip.ZipEntry e) throws IOException {
            long size = e.getSize();
            if (size < 0) {
                return; // in a data descriptor after the data: counted as it inflates
            }
            if (size > MAX_ENTRY_BYTES) {
                throw new IOException(where() + " declares " + size + " bytes; ModelSerializer reads each entry into one byte array, "
                        + "which holds at most " + MAX_ENTRY_BYTES);
            }
            long compressed = e.getCompressedSize();
            boolean stored = e.getMethod() == java.util.zip.ZipEntry.STORED;
            long most = stored ? compressed
                    : compressed >= Long.MAX_VALUE / MAX_DEFLATE_RATIO - 1 ? Long.MAX_VALUE : (compressed + 1) * MAX_DEFLATE_RATIO;
            if (compressed >= 0 && size > most) {
                throw new IOException(where() + " declares " + size + " bytes from " + compressed + (stored ? " stored" : " deflated")
                        + " bytes, more than they can give (" + (stored ? "a stored entry holds its bytes as they are"
                        : "deflate gives at most " + MAX_DEFLATE_RATIO + " bytes a byte") + "): a damaged or forged header");
            }
            if (size > (budget - before) / weight) {
                throw overBudget();
            }
        }

        @Override
        public int read() throws IOException {
            int b = in.read();
            if (b >= 0) {
                counted(1);
            }
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = in.read(b, off, len);
            if (n > 0) {
                counted(n);
            }
            return n;
        }

        /** Reads the rest of the entry, counting it. */
        void drain() throws IOException {
            byte[] b = new byte[8192];
            while (read(b, 0, b.length) >= 0) {
                // counted
            }
        }

        private void counted(int n) throws IOException {
            count += n;
            if (count > MAX_ENTRY_BYTES) {
                throw new IOException(where() + " inflates to more than " + MAX_ENTRY_BYTES + " bytes; ModelSerializer reads each entry "
                        + "into one byte array, which holds at most that");
            }
            if (charged() > budget - before) {
                throw overBudget();
            }
        }

        private IOException overBudget() {
            return new IOException(where() + ": the entries inflate to more than " + budget + " bytes in all"
                    + (weight > 1 ? " (this one counted " + weight + " times: ModelSerializer reads it into a String and parses it)" : "")
                    + "; ModelSerializer holds every entry in memory at once (up to three times over while it reads one), and this "
                    + "JVM's heap is at most "
                    + Runtime.getRuntime().maxMemory() + " bytes; for a model this large, give the JVM more heap (-Xmx, e.g. "
                    + "DISTILL_JAVA_OPTS=-Xmx8g)");
        }

        private String where() {
            return zip + ": entry " + Main.printable(name);
        }
    }

    /** The next entry of {@code in}: one whose name is not UTF-8 (ZipInputStream's IllegalArgumentException) is an IOException. */
    private static java.util.zip.ZipEntry nextEntry(Path zip, java.util.zip.ZipInputStream in) throws IOException {
        try {
            return in.getNextEntry();
        } catch (IllegalArgumentException e) {
            throw new IOException(zip + ": an entry's name is not UTF-8 (" + e.getMessage() + "); expected a DL4J ModelSerializer zip", e);
        }
    }

    /** One array entry being read: the bytes it has given so far, and the size the zip declares for it (-1: none). */
    private static final class ArrayEntry {
        private final Path zip;
        private final String name;
        private final long declared;
        private final java.io.DataInputStream in;
        private long read;
        private boolean ended; // the entry gave all it holds (an EOFException is then its end, not a damaged zip's)

        ArrayEntry(Path zip, String name, java.io.InputStream entry, long declared) {
            this.zip = zip;
            this.name = name;
            this.declared = declared;
            this.in = new java.io.DataInputStream(new java.io.InputStream() {
                @Override
                public int read() throws IOException {
                    int b = entry.read();
                    count(b < 0 ? -1 : 1);
                    return b;
                }

                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    int n = entry.read(b, off, len);
                    count(n);
                    return n;
                }
            });
        }

        private void count(int n) {
            if (n < 0) {
                ended = true;
            } else {
                read += n;
            }
        }

        void check() throws IOException {
            if (declared == 0) {
                return; // ModelSerializer reads an empty coefficients.bin as a model without parameters
            }
            org.nd4j.linalg.api.buffer.DataBuffer.AllocationMode shapeMode;
            try {
                shapeMode = mode("shape buffer", in.readUTF());
            } catch (java.io.EOFException e) {
                if (ended && read == 0) {
                    return; // empty, its size not declared (a data descriptor's)
                }
                throw ends("the shape buffer's header", e);
            } catch (java.io.UTFDataFormatException e) {
                throw bad("the shape buffer's allocation mode is not a name (" + e.getMessage() + ")");
            }
            long shapeLength = length("shape buffer", shapeMode);
            org.nd4j.linalg.api.buffer.DataType shapeType = type("shape buffer");
            if (shapeType != org.nd4j.linalg.api.buffer.DataType.LONG && shapeType != org.nd4j.linalg.api.buffer.DataType.INT) {
                throw bad("the shape buffer holds " + shapeType + " values; expected LONG (or INT)");
            }
            int width = shapeType == org.nd4j.linalg.api.buffer.DataType.LONG ? 8 : 4;
            fits("the shape buffer", shapeLength, shapeType, width, false);
            if (shapeLength > MAX_SHAPE_VALUES) {
                throw bad("the shape buffer declares " + shapeLength + " values; an ND4J shape buffer holds 2 * rank + 4 of them, at "
                        + "most " + MAX_SHAPE_VALUES + " (rank 32)");
            }
            long[] info = new long[(int) shapeLength];
            try {
                for (int i = 0; i < info.length; i++) {
                    info[i] = width == 8 ? in.readLong() : in.readInt();
                }
            } catch (java.io.EOFException e) {
                throw ends("the shape buffer (" + shapeLength + " " + shapeType + " values)", e);
            }
            checkLayout(info);
            org.nd4j.linalg.api.buffer.DataBuffer.AllocationMode dataMode;
            try {
                dataMode = mode("data buffer", in.readUTF());
            } catch (java.io.EOFException e) {
                throw ends("the data buffer's header", e);
            } catch (java.io.UTFDataFormatException e) {
                throw bad("the data buffer's allocation mode is not a name (" + e.getMessage() + ")");
            }
            long dataLength = length("data buffer", dataMode);
            org.nd4j.linalg.api.buffer.DataType dataType = type("data buffer");
            int size = switch (dataType) {
                case DOUBLE, LONG, UINT64 -> 8;
                case FLOAT, INT, UINT32 -> 4;
                case HALF, BFLOAT16, SHORT, UINT16 -> 2;
                case BYTE, UBYTE, BOOL -> 1;
                default -> throw bad("the data buffer holds " + dataType + " values; expected numbers (DOUBLE, FLOAT, HALF, ...): a "
                        + "COMPRESSED buffer's size is not the file's to vouch for, and ModelSerializer writes none");
            };
            checkShape(info, dataLength, dataType);
            fits("the data buffer", dataLength, dataType, size, true);
        }

        /** {@code info}, a shape buffer's values, is one: rank, shape, strides, extras, element-wise stride, order. */
        private void checkLayout(long[] info) throws IOException {
            long rank = info.length == 0 ? -1 : info[0];
            if (rank < 0 || rank > 32) {
                throw bad("the shape buffer's rank " + rank + " is not one ND4J has; expected 0 to 32");
            }
            if (info.length != 2 * rank + 4) {
                throw bad("the shape buffer holds " + info.length + " values, but its rank " + rank + " needs 2 * rank + 4 = " + (2 * rank + 4));
            }
            int r = (int) rank;
            long order = info[2 * r + 3];
            if (order != 'c' && order != 'f') {
                throw bad("the shape buffer's order is " + order + "; expected 'c' (99) or 'f' (102)");
            }
        }

        /** {@code info}, a shape buffer's values, describes an array inside a data buffer of {@code length} values of {@code type}. */
        private void checkShape(long[] info, long length, org.nd4j.linalg.api.buffer.DataType type) throws IOException {
            int r = (int) info[0];
            long[] shape = Arrays.copyOfRange(info, 1, 1 + r);
            long[] strides = Arrays.copyOfRange(info, 1 + r, 1 + 2 * r);
            org.nd4j.linalg.api.buffer.DataType named;
            try {
                named = org.nd4j.linalg.api.shape.options.ArrayOptionsHelper.dataType(info[2 * r + 1]);
            } catch (org.nd4j.linalg.exception.ND4JUnknownDataTypeException e) {
                named = null; // Nd4j.read gives it the data buffer's type
            }
            if (named != null && named != type) {
                throw bad("the shape buffer names " + named + " values, but the data buffer holds " + type);
            }
            long reach = 1; // elements from the first one to the last one the shape and strides reach, inclusive
            try {
                for (int i = 0; i < r; i++) {
                    if (shape[i] < 0 || strides[i] < 0) {
                        throw bad("the shape " + Arrays.toString(shape) + " with strides " + Arrays.toString(strides)
                                + " has a negative value; expected sizes and strides >= 0");
                    }
                    reach = shape[i] == 0 || reach == 0 ? 0 : Math.addExact(reach, Math.multiplyExact(shape[i] - 1, strides[i]));
                }
            } catch (ArithmeticException e) {
                reach = Long.MAX_VALUE;
            }
            if (reach > length) {
                throw bad("the shape " + Arrays.toString(shape) + " with strides " + Arrays.toString(strides) + " reaches "
                        + (reach == Long.MAX_VALUE ? "beyond 2^63" : Long.toString(reach)) + " elements, but the data buffer holds "
                        + length);
            }
        }

        private org.nd4j.linalg.api.buffer.DataBuffer.AllocationMode mode(String buffer, String name) throws IOException {
            try {
                return org.nd4j.linalg.api.buffer.DataBuffer.AllocationMode.valueOf(name);
            } catch (IllegalArgumentException e) {
                throw bad("the " + buffer + "'s allocation mode '" + Main.printable(name) + "' is not one ND4J knows ("
                        + Arrays.toString(org.nd4j.linalg.api.buffer.DataBuffer.AllocationMode.values()) + ")");
            }
        }

        /** A buffer's length, as BaseDataBuffer.readHeader reads it: an int for the modes before LONG_SHAPE, else a long. */
        private long length(String buffer, org.nd4j.linalg.api.buffer.DataBuffer.AllocationMode mode) throws IOException {
            long length;
            try {
                length = mode.ordinal() < org.nd4j.linalg.api.buffer.DataBuffer.AllocationMode.LONG_SHAPE.ordinal() ? in.readInt() : in.readLong();
            } catch (java.io.EOFException e) {
                throw ends("the " + buffer + "'s header", e);
            }
            if (length < 0) {
                throw bad("the " + buffer + " declares a length of " + length + "; expected a count of values >= 0");
            }
            return length;
        }

        private org.nd4j.linalg.api.buffer.DataType type(String buffer) throws IOException {
            String name;
            try {
                name = in.readUTF();
            } catch (java.io.EOFException e) {
                throw ends("the " + buffer + "'s header", e);
            } catch (java.io.UTFDataFormatException e) {
                throw bad("the " + buffer + "'s data type is not a name (" + e.getMessage() + ")");
            }
            try {
                return org.nd4j.linalg.api.buffer.DataType.valueOf(name);
            } catch (IllegalArgumentException e) {
                throw bad("the " + buffer + "'s data type '" + Main.printable(name) + "' is not one ND4J knows ("
                        + Arrays.toString(org.nd4j.linalg.api.buffer.DataType.values()) + ")");
            }
        }

        /**
         * {@code count} values of {@code size} bytes follow: checked against the entry's declared size where the zip
         * declares it, else, with {@code skip}, read through (counting, in a small buffer) to the entry's end at most.
         */
        private void fits(String buffer, long count, org.nd4j.linalg.api.buffer.DataType type, int size, boolean skip) throws IOException {
            long bytes;
            try {
                bytes = Math.multiplyExact(count, size);
            } catch (ArithmeticException e) {
                bytes = Long.MAX_VALUE;
            }
            long at = read;
            if (declared >= 0) {
                if (bytes > declared - at) {
                    throw tooFew(buffer, count, type, size, bytes, declared - at);
                }
                return;
            }
            if (!skip) {
                return;
            }
            byte[] b = new byte[8192];
            for (long left = bytes; left > 0; ) {
                int n = in.read(b, 0, (int) Math.min(b.length, left));
                if (n < 0) {
                    throw tooFew(buffer, count, type, size, bytes, read - at);
                }
                left -= n;
            }
        }

        private IOException tooFew(String buffer, long count, org.nd4j.linalg.api.buffer.DataType type, int size, long bytes, long held) {
            return bad(buffer + " declares " + count + " " + type + " values of " + size + " bytes ("
                    + (bytes == Long.MAX_VALUE ? "more than 2^63" : Long.toString(bytes)) + " bytes), but the entry holds "
                    + held + " bytes after its headers (" + (declared >= 0 ? declared : read) + " bytes in all)");
        }

        /** The entry ended inside {@code where}; an EOFException of a zip cut short (not the entry's end) is rethrown. */
        private IOException ends(String where, java.io.EOFException e) throws java.io.EOFException {
            if (!ended) {
                throw e;
            }
            return bad("the entry ends inside " + where + ", after " + read + " bytes");
        }

        private IOException bad(String what) {
            return new IOException(zip + ": entry " + name + ": " + what + "; expected an ND4J array as Nd4j.write writes it");
        }
    }

    /** A file that is not a model at all (no zip, a zip of something else): what the reader threw on the way is explained. */
    static final class NotAModelException extends IOException {
        NotAModelException(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
