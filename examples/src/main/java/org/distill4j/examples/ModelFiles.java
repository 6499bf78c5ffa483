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

    /** Loads {@code path} for the data {@code d}: a model of another number of inputs or classes is refused, naming both. */
    static Loaded load(Path path, Options o, org.distill4j.data.Dataset d) throws IOException, Main.UsageException {
        return load(path, o, d.featureCount(), d.classes(), d.name());
    }

    /** Loads {@code path} for data with {@code features} inputs and {@code classes} classes. */
    static Loaded load(Path path, Options o, int features, int classes) throws IOException, Main.UsageException {
        return load(path, o, features, classes, "the data");
    }

    private static Loaded load(Path path, Options o, int features, int classes, String data) throws IOException, Main.UsageException {
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
        MultiLayerNetwork net;
        try {
            net = ModelSerializer.restoreMultiLayerNetwork(path.toFile(), false);
        } catch (IOException | RuntimeException e) {
            throw new IOException("cannot read " + path + " as a DL4J MultiLayerNetwork (ModelSerializer zip; for ONNX or "
                    + "TorchScript use a .onnx / .pt name or --engine): " + e.getMessage(), e);
        }
        // a model of other classes would be read with the data's row stride (wrong numbers, or an index out of bounds), and
        // labeled into a store of another vocabulary; one of other inputs fails in DL4J without naming the file
        Dl4jTeacher t = Dl4jTeacher.of(net);
        if (t.classes() != classes) {
            throw new IllegalArgumentException(path + ": a DL4J model of " + t.classes() + " classes, but the data " + data + " has "
                    + classes);
        }
        if (net.getLayerWiseConfigurations().getInputPreProcess(0) == null
                && net.getLayerWiseConfigurations().getConf(0).getLayer() instanceof org.deeplearning4j.nn.conf.layers.FeedForwardLayer f
                && f.getNIn() != features) {
            throw new IllegalArgumentException(path + ": a DL4J model of " + f.getNIn() + " inputs, but the data " + data + " has "
                    + features + " features");
        }
        return new Loaded(t, "DL4J " + path.getFileName(), net.numParams(), Demo.teacherId(net));
    }
}
