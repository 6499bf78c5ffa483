package org.distill4j.teacher.djl;

import ai.djl.Device;
import ai.djl.MalformedModelException;
import ai.djl.Model;
import ai.djl.inference.Predictor;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.translate.NoopTranslator;
import ai.djl.translate.TranslateException;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A loaded DJL model and its predictor: float32 in, named float32 outputs back. The only class of
 * Distill4J whose code uses DJL types, so the rest (including {@link DjlTeacher}) links without DJL on
 * the classpath and can say what is missing. Package-private.
 */
final class DjlSession implements AutoCloseable {
    private final Path file;
    private final DjlEngine engine;
    private final List<String> outputNames;
    private final Model model;
    private final Predictor<NDList, NDList> predictor;

    private DjlSession(Path file, DjlEngine engine, List<String> outputNames, Model model, Predictor<NDList, NDList> predictor) {
        this.file = file;
        this.engine = engine;
        this.outputNames = outputNames == null ? null : List.copyOf(outputNames);
        this.model = model;
        this.predictor = predictor;
    }

    /**
     * Loads {@code file} with {@code engine}. The model is made and loaded here, not through DJL's {@code Criteria}: its
     * loader makes the model and loads the file in one call, and a file that fails to load (a corrupt .onnx or .pt) leaves
     * that model unclosed and out of our reach (its manager attached to the engine's until the garbage collector finalizes
     * it, with DJL's warning "Model: ... was not closed explicitly", and ONNX Runtime's session options never freed). Made
     * here, a model that fails to load, or whose predictor cannot be made, is closed before the error goes up. The loader
     * also read a serving.properties and looked for block factories in jars and classes beside the model file: a teacher
     * is its one file (its id hashes that file's content), so nothing beside it changes how it loads.
     */
    static DjlSession open(Path file, DjlEngine engine, List<String> outputNames, Map<String, String> options) {
        Path absolute = file.toAbsolutePath();
        Model model = null;
        try {
            // named by the file's full name in its folder, as the loader named it: each engine finds the file by that name
            model = Model.newInstance(absolute.getFileName().toString(), (Device) null, engine.djlName());
            model.load(absolute.getParent(), null, options);
            return new DjlSession(file, engine, outputNames, model, model.newPredictor(new NoopTranslator()));
        } catch (MalformedModelException | IOException | RuntimeException e) {
            if (model != null) {
                try {
                    model.close(); // the native session (if one was made) and the model's manager
                } catch (RuntimeException closing) {
                    e.addSuppressed(closing);
                }
            }
            throw new IllegalArgumentException("cannot load teacher model " + file + " with DJL's " + engine.djlName()
                    + " engine; expected " + engine.fileKind() + " file: " + rootMessage(e), e);
        }
    }

    /**
     * Runs the model on {@code x} shaped {@code dims}; returns each output's values by name, and puts
     * each output's full shape into {@code shapes}.
     */
    Map<String, float[]> forward(float[] x, long[] dims, String inputName, Map<String, long[]> shapes) {
        try (NDManager manager = model.getNDManager().newSubManager()) {
            NDArray input = manager.create(x, new Shape(dims));
            if (inputName != null) {
                input.setName(inputName);
            }
            NDList out;
            try {
                out = predictor.predict(new NDList(input));
            } catch (TranslateException | RuntimeException e) {
                throw new IllegalArgumentException("model " + file + " (" + engine.djlName() + ") failed on input of shape "
                        + Arrays.toString(dims) + " (rows x per-sample shape " + Arrays.toString(Arrays.copyOfRange(dims, 1, dims.length))
                        + "); check the input shape" + (inputName != null ? " and name" : "") + " the model was exported with: "
                        + rootMessage(e), e);
            }
            Map<String, float[]> result = new LinkedHashMap<>();
            try {
                for (int i = 0; i < out.size(); i++) {
                    NDArray a = out.get(i);
                    String name = outputName(a, i);
                    shapes.put(name, a.getShape().getShape());
                    NDArray f = a.getDataType() == DataType.FLOAT32 ? a : a.toType(DataType.FLOAT32, false);
                    result.put(name, f.toFloatArray());
                }
            } finally {
                out.close();
            }
            return result;
        }
    }

    private String outputName(NDArray a, int i) {
        if (outputNames != null && i < outputNames.size()) {
            return outputNames.get(i);
        }
        String n = a.getName();
        return n != null && !n.isEmpty() ? n : "output" + i;
    }

    static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        String m = t.getMessage();
        return m == null ? t.getClass().getSimpleName() : m.strip();
    }

    @Override
    public void close() {
        predictor.close();
        model.close();
    }
}
