package org.distill4j.teacher.djl;

import org.distill4j.data.Batch;
import org.distill4j.data.Feature;
import org.distill4j.loss.TeacherValues;
import org.distill4j.teacher.Teacher;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A teacher exported from another framework (ONNX, TorchScript) and run through DJL: ONNX models on the
 * ONNX Runtime engine, TorchScript models on the PyTorch engine, both offline (the natives come from
 * Maven jars; DJL is told never to download). Build one with {@link #builder()}.
 *
 * <p>Each batch's features ({@code [rows, featureCount]}) go in as one float32 tensor of shape
 * {@code [rows, inputShape...]}, after the optional {@link InputTransform}. The model's outputs are
 * named (ONNX keeps its output names; TorchScript tuple elements are {@code output0, output1, ...} unless
 * {@link Builder#optOutputNames} names them). One output, 2-D {@code [rows, classes]}, is the teacher's
 * distribution ({@link Builder#optLogitsOutput}); any output can be read as a feature for feature losses
 * ({@link #feature}). The outputs of the last batch are kept, so the logits and features of one batch
 * cost one forward pass (a batch whose features changed in place since is run again).
 *
 * <p>Holds native memory: close it when done (closing twice is harmless). Not for concurrent use by
 * several threads (calls are serialized).
 */
public final class DjlTeacher implements Teacher, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DjlTeacher.class);

    private final Path modelPath;
    private final DjlEngine engine;
    private final long[] inputShape;
    private final int featureCount;
    private final String inputName;
    private final String logitsOutput;
    private final TeacherValues values;
    private final InputTransform inputTransform;
    private final OutputTransform outputTransform;
    private final int rawClasses;
    private final int classes;
    private final int maxBatch;
    private final Map<String, int[]> outputShapes;
    private final AtomicReference<DjlSession> session;

    private Batch lastBatch;
    private float[] lastFeatures; // a copy: a batch's features can change in place
    private Map<String, float[]> lastOutputs;

    private DjlTeacher(Builder b, DjlEngine engine, DjlSession session) {
        this.modelPath = b.modelPath;
        this.engine = engine;
        this.inputShape = b.inputShape.clone();
        this.featureCount = Math.toIntExact(Arrays.stream(inputShape).reduce(1, Math::multiplyExact));
        this.inputName = b.inputName;
        this.values = b.values;
        this.inputTransform = b.inputTransform;
        this.outputTransform = b.outputTransform;
        this.maxBatch = b.maxBatch;
        this.session = new AtomicReference<>(session);
        // probe: two rows of a fixed ramp, to learn the output names and shapes and to fail early
        // (wrong input shape, no 2-D output) with the file in the message
        Map<String, float[]> probe;
        Map<String, int[]> shapes = new LinkedHashMap<>();
        try {
            float[] x = new float[2 * featureCount];
            for (int i = 0; i < x.length; i++) {
                x[i] = (i % 17) / 17f;
            }
            probe = forward(x, 2, shapes);
        } catch (RuntimeException e) {
            closeQuietly();
            throw e;
        }
        this.outputShapes = Map.copyOf(shapes);
        String chosen = b.logitsOutput;
        if (chosen == null) {
            if (shapes.size() == 1) {
                chosen = shapes.keySet().iterator().next();
            } else if (shapes.containsKey("logits")) {
                chosen = "logits";
            } else {
                closeQuietly();
                throw new IllegalArgumentException(where() + " has " + shapes.size() + " outputs " + describeOutputs(shapes)
                        + "; choose the one with the class scores with optLogitsOutput(name)");
            }
        } else if (!shapes.containsKey(chosen)) {
            closeQuietly();
            throw new IllegalArgumentException(where() + " has no output '" + chosen + "'; its outputs: " + describeOutputs(shapes));
        }
        int[] s = shapes.get(chosen);
        if (s.length != 2 || s[0] != 2) {
            closeQuietly();
            throw new IllegalArgumentException(where() + ": output '" + chosen + "' has shape [rows" + (s.length > 1 ? ", " : "")
                    + tail(s) + "] for 2 input rows; a teacher's class scores must be [rows, classes]");
        }
        this.logitsOutput = chosen;
        this.rawClasses = s[1];
        float[] probeScores = probe.get(chosen);
        if (outputTransform != null) {
            try {
                probeScores = transformed(probeScores, 2);
            } catch (RuntimeException e) {
                closeQuietly();
                throw e;
            }
        }
        this.classes = probeScores.length / 2;
        if (b.classes > 0 && b.classes != classes) {
            closeQuietly();
            throw new IllegalArgumentException(where() + ": output '" + chosen + "' has " + classes + " classes, expected "
                    + b.classes);
        }
        if (values == TeacherValues.PROBABILITIES) {
            try {
                checkProbabilities(probeScores);
            } catch (RuntimeException e) {
                closeQuietly();
                throw e;
            }
        }
        log.info("loaded teacher {}", describe());
    }

    /** A builder; {@link Builder#setModelPath} and {@link Builder#setInputShape} are required. */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public int classes() {
        return classes;
    }

    @Override
    public TeacherValues values() {
        return values;
    }

    /** Per-sample input shape the model is fed (the batch's features reshaped). */
    public long[] inputShape() {
        return inputShape.clone();
    }

    /** Output names with their per-row shapes (the first dimension, rows, left out). */
    public Map<String, int[]> outputShapes() {
        Map<String, int[]> m = new LinkedHashMap<>();
        outputShapes.forEach((k, v) -> m.put(k, Arrays.copyOfRange(v, 1, v.length)));
        return m;
    }

    /** The engine that runs the model. */
    public String engine() {
        return engine.djlName();
    }

    @Override
    public synchronized float[] outputs(Batch batch) {
        float[] raw = run(batch).get(logitsOutput);
        if (outputTransform == null) {
            return raw.clone();
        }
        float[] t = transformed(raw.clone(), batch.size());
        if (t.length != batch.size() * classes) {
            throw new IllegalStateException("output transform returned " + t.length + " values for " + batch.size() + " rows; it gave "
                    + classes + " classes per row at load");
        }
        return t;
    }

    private float[] transformed(float[] raw, int rows) {
        float[] t;
        try {
            t = outputTransform.apply(raw, rows, rawClasses);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(where() + ": output transform failed on output '" + logitsOutput + "' [" + rows + ", "
                    + rawClasses + "]: " + e.getMessage(), e);
        }
        if (t.length == 0 || t.length % rows != 0) {
            throw new IllegalArgumentException(where() + ": output transform returned " + t.length + " values for " + rows
                    + " rows; expected rows x classes");
        }
        return t;
    }

    /** A model output other than the logits (or the logits themselves) as a feature, by its name. */
    @Override
    public synchronized Feature feature(Batch batch, String name) {
        int[] s = outputShapes.get(name);
        if (s == null) {
            throw new IllegalArgumentException(where() + " has no output '" + name + "'; its outputs: "
                    + describeOutputs(outputShapes));
        }
        return new Feature(run(batch).get(name).clone(), batch.size(), Arrays.copyOfRange(s, 1, s.length));
    }

    private Map<String, float[]> run(Batch batch) {
        if (batch == lastBatch && lastOutputs != null && Arrays.equals(batch.features(), lastFeatures)) {
            return lastOutputs;
        }
        if (batch.featureCount() != featureCount) {
            throw new IllegalArgumentException("batch has " + batch.featureCount() + " features per row, but " + where()
                    + " takes per-sample input shape " + Arrays.toString(inputShape) + " (" + featureCount + " values)");
        }
        int rows = batch.size();
        int step = maxBatch > 0 ? maxBatch : Math.max(rows, 1);
        Map<String, float[]> all = new LinkedHashMap<>();
        for (int from = 0; from < rows; from += step) {
            int n = Math.min(step, rows - from);
            float[] x = Arrays.copyOfRange(batch.features(), from * featureCount, (from + n) * featureCount);
            Map<String, float[]> part = forward(x, n, null);
            for (Map.Entry<String, float[]> e : part.entrySet()) {
                int per = e.getValue().length / n;
                float[] dst = all.computeIfAbsent(e.getKey(), k -> new float[rows * per]);
                System.arraycopy(e.getValue(), 0, dst, from * per, e.getValue().length);
            }
        }
        lastBatch = batch;
        lastFeatures = batch.features().clone();
        lastOutputs = all;
        return all;
    }

    /** One forward pass of {@code rows} rows; fills {@code shapes} (full output shapes) when given. */
    private Map<String, float[]> forward(float[] x, int rows, Map<String, int[]> shapes) {
        DjlSession s = session.get();
        if (s == null) {
            throw new IllegalStateException("teacher " + modelPath + " is closed");
        }
        float[] in = inputTransform == null ? x : inputTransform.apply(x, rows, featureCount);
        if (in.length != x.length) {
            throw new IllegalStateException("input transform returned " + in.length + " values for " + rows + " x "
                    + featureCount + "; it must keep the shape");
        }
        long[] dims = new long[inputShape.length + 1];
        dims[0] = rows;
        System.arraycopy(inputShape, 0, dims, 1, inputShape.length);
        Map<String, long[]> got = new LinkedHashMap<>();
        Map<String, float[]> result = s.forward(in, dims, inputName, got);
        for (Map.Entry<String, long[]> e : got.entrySet()) {
            long[] shape = e.getValue();
            if (shape.length == 0 || shape[0] != rows) {
                throw new IllegalArgumentException(where() + ": output '" + e.getKey() + "' has shape " + Arrays.toString(shape)
                        + " for " + rows + " input rows; every output must have the rows first");
            }
            if (shapes != null) {
                shapes.put(e.getKey(), Arrays.stream(shape).mapToInt(Math::toIntExact).toArray());
            }
        }
        return result;
    }

    private void checkProbabilities(float[] p) {
        for (int r = 0; r < 2; r++) {
            double sum = 0;
            for (int c = 0; c < classes; c++) {
                float v = p[r * classes + c];
                if (!(v >= 0)) {
                    throw new IllegalArgumentException(where() + ": output '" + logitsOutput + "' has value " + v
                            + ", but the teacher was declared to return PROBABILITIES; use LOGITS for scores or log-probabilities");
                }
                sum += v;
            }
            if (Math.abs(sum - 1) > 1e-3) {
                throw new IllegalArgumentException(where() + ": output '" + logitsOutput + "' rows sum to " + sum
                        + ", but the teacher was declared to return PROBABILITIES; use LOGITS for scores or log-probabilities");
            }
        }
    }

    private String where() {
        return "model " + modelPath + " (" + engine.djlName() + ")";
    }

    private static String tail(int[] s) {
        StringBuilder b = new StringBuilder();
        for (int i = 1; i < s.length; i++) {
            b.append(i > 1 ? ", " : "").append(s[i]);
        }
        return b.toString();
    }

    private static String describeOutputs(Map<String, int[]> shapes) {
        List<String> parts = new ArrayList<>();
        shapes.forEach((k, v) -> parts.add(k + " [rows" + (v.length > 1 ? ", " : "") + tail(v) + "]"));
        return String.join(", ", parts);
    }

    @Override
    public String identity() {
        String id = fileCrc;
        if (id == null) {
            java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
            try (java.io.InputStream in = java.nio.file.Files.newInputStream(modelPath)) {
                byte[] buf = new byte[1 << 20];
                for (int r; (r = in.read(buf)) > 0; ) {
                    crc.update(buf, 0, r);
                }
                id = Long.toHexString(crc.getValue());
            } catch (java.io.IOException e) {
                id = "unreadable (" + e.getMessage() + ")";
            }
            fileCrc = id;
        }
        return describe(false) + ", model file crc32c " + id; // not the file's name: a moved model is the same teacher
    }

    private volatile String fileCrc;

    @Override
    public String describe() {
        return describe(true);
    }

    private String describe(boolean fileName) {
        return "DJL " + engine.djlName() + " teacher " + (fileName ? modelPath.getFileName() + " " : "") + "(input " + Arrays.toString(inputShape)
                + ", output '" + logitsOutput + "': " + classes + " classes, " + values.name().toLowerCase(java.util.Locale.ROOT)
                + ")";
    }

    /**
     * Releases the model's native memory; later calls fail. Closing twice is harmless. Waits for a call under way on
     * another thread (serialized with it), so the model is never freed under a forward pass.
     */
    @Override
    public synchronized void close() {
        DjlSession s = session.getAndSet(null);
        if (s != null) {
            s.close();
            lastBatch = null;
            lastFeatures = null;
            lastOutputs = null;
        }
    }

    private void closeQuietly() {
        try {
            close();
        } catch (RuntimeException e) {
            log.debug("closing {} after a failed load", modelPath, e);
        }
    }

    /**
     * Rewrites a batch's features before they reach the model (normalization, scaling); must keep the
     * number of values. Runs on a copy; the batch is not changed.
     */
    @FunctionalInterface
    public interface InputTransform {
        /**
         * The rewritten features of {@code rows} samples of {@code featureCount} values each, row-major: exactly
         * {@code rows * featureCount} values (another count fails the call with an {@link IllegalStateException}).
         * {@code features} is a copy, which the transform may change and return. It is called once per model call: for
         * each part of at most the batch limit ({@link Builder#optMaxBatch}) of a batch, and on two probe rows at load.
         */
        float[] apply(float[] features, int rows, int featureCount);

        /** {@code (x - mean) / std} on every value (the usual torchvision Normalize for one channel). */
        static InputTransform normalize(double mean, double std) {
            if (!(std > 0) || !Double.isFinite(mean)) {
                throw new IllegalArgumentException("normalize needs a finite mean and a positive std, got mean " + mean
                        + ", std " + std);
            }
            return (x, rows, d) -> {
                float[] y = new float[x.length];
                for (int i = 0; i < x.length; i++) {
                    y[i] = (float) ((x[i] - mean) / std);
                }
                return y;
            };
        }
    }

    /**
     * Rewrites the class scores after the model (row-major {@code [rows, classes]} in, {@code [rows, classes']}
     * out): pick or reorder classes, rescale. Runs on a copy.
     */
    @FunctionalInterface
    public interface OutputTransform {
        /**
         * The rewritten class scores of {@code rows} samples, row-major {@code [rows, classes']}, from the model's
         * {@code [rows, classes]} ones; {@code scores} is a copy, which the transform may change and return. The number of
         * classes out is learned on two probe rows at load and must be the same on every call (else an
         * {@link IllegalStateException}); a result that is empty or not a multiple of {@code rows} fails the call, and an
         * exception the transform throws is rethrown as an {@link IllegalArgumentException} naming the model.
         */
        float[] apply(float[] scores, int rows, int classes);

        /**
         * Keeps the given classes, in the given order (e.g. the 10 ImageNet classes a 10-class student
         * learns). Logits only: probabilities would need renormalizing, which the losses do.
         */
        static OutputTransform columns(int... ids) {
            int[] keep = ids.clone();
            if (keep.length == 0) {
                throw new IllegalArgumentException("columns needs at least one class id");
            }
            return (x, rows, k) -> {
                for (int id : keep) {
                    if (id < 0 || id >= k) {
                        throw new IllegalArgumentException("class id " + id + " is outside the model's " + k + " classes");
                    }
                }
                float[] y = new float[rows * keep.length];
                for (int r = 0; r < rows; r++) {
                    for (int j = 0; j < keep.length; j++) {
                        y[r * keep.length + j] = x[r * k + keep[j]];
                    }
                }
                return y;
            };
        }
    }

    /** Settings for a {@link DjlTeacher}; {@code set*} are required, {@code opt*} optional. */
    public static final class Builder {
        private Path modelPath;
        private String engine;
        private long[] inputShape;
        private String inputName;
        private String logitsOutput;
        private List<String> outputNames;
        private TeacherValues values = TeacherValues.LOGITS;
        private InputTransform inputTransform;
        private OutputTransform outputTransform;
        private int classes;
        private int maxBatch;
        private final Map<String, String> engineOptions = new LinkedHashMap<>();

        private Builder() {
        }

        /** The model file: {@code .onnx} (ONNX Runtime) or {@code .pt}/{@code .pth}/{@code .torchscript} (PyTorch). */
        public Builder setModelPath(Path path) {
            this.modelPath = path;
            return this;
        }

        /** Per-sample input shape, e.g. {@code 784} or {@code 1, 28, 28}; the batch's features are reshaped to it. */
        public Builder setInputShape(long... shape) {
            this.inputShape = shape.clone();
            return this;
        }

        /**
         * The engine: {@code onnxruntime} (alias {@code onnx}) or {@code pytorch} (alias {@code torchscript}), or any
         * DJL engine name. Default: from the file extension.
         */
        public Builder optEngine(String engine) {
            this.engine = engine;
            return this;
        }

        /** The model's input name (ONNX models with a named input); by default the input is fed by position. */
        public Builder optInputName(String name) {
            this.inputName = name;
            return this;
        }

        /** The output with the class scores; default: the only output, else the one named {@code logits}. */
        public Builder optLogitsOutput(String name) {
            this.logitsOutput = name;
            return this;
        }

        /** Names for the model's outputs by position (TorchScript tuples have none); overrides names the model has. */
        public Builder optOutputNames(String... names) {
            this.outputNames = List.of(names);
            return this;
        }

        /** What the logits output holds: {@code LOGITS} (default; log-probabilities count as logits) or {@code PROBABILITIES}. */
        public Builder optValues(TeacherValues values) {
            this.values = values;
            return this;
        }

        /** A rewrite of the features before the model sees them (e.g. {@link InputTransform#normalize}). */
        public Builder optInputTransform(InputTransform transform) {
            this.inputTransform = transform;
            return this;
        }

        /** A rewrite of the class scores after the model (e.g. {@link OutputTransform#columns}); {@link #optClasses} checks its result. */
        public Builder optOutputTransform(OutputTransform transform) {
            this.outputTransform = transform;
            return this;
        }

        /** The number of classes the logits output must have (checked at load). */
        public Builder optClasses(int classes) {
            this.classes = classes;
            return this;
        }

        /**
         * An engine load option passed to DJL unchanged, e.g. ONNX Runtime's {@code intraOpNumThreads},
         * {@code interOpNumThreads} or {@code optLevel}. (libtorch's threads follow {@code OMP_NUM_THREADS}.)
         */
        public Builder optEngineOption(String key, String value) {
            engineOptions.put(key, value);
            return this;
        }

        /** Rows per forward call; larger batches are split (bounds the engine's memory). Default: whole batches. */
        public Builder optMaxBatch(int rows) {
            this.maxBatch = rows;
            return this;
        }

        /**
         * Loads the model offline (sets {@code ai.djl.offline=true} unless the JVM already sets it) and runs a
         * two-row probe to learn its outputs.
         *
         * @throws IllegalArgumentException a missing or unreadable model file, a file the engine cannot load,
         *                                  an input shape the model rejects, no usable logits output
         * @throws IllegalStateException    DJL or the engine is not on the classpath (names the Maven artifacts to add)
         */
        public DjlTeacher build() {
            if (modelPath == null) {
                throw new IllegalArgumentException("DjlTeacher needs a model file: setModelPath(path)");
            }
            if (inputShape == null || inputShape.length == 0) {
                throw new IllegalArgumentException("DjlTeacher for " + modelPath
                        + " needs the per-sample input shape: setInputShape(784) or setInputShape(1, 28, 28)");
            }
            java.math.BigInteger values = java.math.BigInteger.ONE;
            for (long d : inputShape) {
                if (d <= 0) {
                    throw new IllegalArgumentException("DjlTeacher for " + modelPath + ": input shape "
                            + Arrays.toString(inputShape) + " has a non-positive dimension");
                }
                values = values.multiply(java.math.BigInteger.valueOf(d));
            }
            if (values.bitLength() > 31) { // checked before the model loads, so nothing is left open
                throw new IllegalArgumentException("DjlTeacher for " + modelPath + ": input shape " + Arrays.toString(inputShape)
                        + " has " + values + " values per sample, more than a batch row holds (" + Integer.MAX_VALUE + ")");
            }
            if (classes < 0 || maxBatch < 0) {
                throw new IllegalArgumentException("DjlTeacher for " + modelPath + ": classes and maxBatch must be >= 0, got classes "
                        + classes + ", maxBatch " + maxBatch);
            }
            if (values == null) {
                throw new IllegalArgumentException("DjlTeacher for " + modelPath + ": values must be LOGITS or PROBABILITIES");
            }
            DjlEngine e = DjlEngine.resolve(engine, modelPath);
            e.requireOnClasspath();
            return load(e);
        }

        private DjlTeacher load(DjlEngine e) {
            if (!java.nio.file.Files.isRegularFile(modelPath)) {
                throw new IllegalArgumentException("teacher model file " + modelPath.toAbsolutePath() + " does not exist"
                        + (java.nio.file.Files.isDirectory(modelPath) ? " (it is a directory)" : "")
                        + "; expected " + e.fileKind() + " file");
            }
            if (System.getProperty("ai.djl.offline") == null) {
                System.setProperty("ai.djl.offline", "true");
            }
            return new DjlTeacher(this, e, DjlSession.open(modelPath, e, outputNames, engineOptions));
        }
    }
}
