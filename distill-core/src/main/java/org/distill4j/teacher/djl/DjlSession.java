package org.distill4j.teacher.djl;

import ai.djl.MalformedModelException;
import ai.djl.inference.Predictor;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ModelNotFoundException;
import ai.djl.repository.zoo.ZooModel;
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
    private final ZooModel<NDList, NDList> model;
    private final Predictor<NDList, NDList> predictor;

    private DjlSession(Path file, DjlEngine engine, List<String> outputNames, ZooModel<NDList, NDList> model) {
        this.file = file;
        this.engine = engine;
        this.outputNames = outputNames == null ? null : List.copyOf(outputNames);
        this.model = model;
        this.predictor = model.newPredictor();
    }

    static DjlSession open(Path file, DjlEngine engine, List<String> outputNames, Map<String, String> options) {
        Criteria.Builder<NDList, NDList> builder = Criteria.builder()
                .setTypes(NDList.class, NDList.class)
                // the folder and the file's full name (not the file itself, which DJL's repository warns about)
                .optModelPath(file.toAbsolutePath().getParent())
                .optModelName(file.getFileName().toString())
                .optEngine(engine.djlName())
                .optTranslator(new NoopTranslator());
        options.forEach(builder::optOption);
        Criteria<NDList, NDList> criteria = builder.build();
        try {
            ZooModel<NDList, NDList> model = criteria.loadModel();
            try {
                return new DjlSession(file, engine, outputNames, model);
            } catch (RuntimeException e) { // no predictor: the loaded model's native session would stay open
                model.close();
                throw e;
            }
        } catch (ModelNotFoundException | MalformedModelException | IOException | RuntimeException e) {
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
