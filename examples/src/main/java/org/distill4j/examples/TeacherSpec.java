package org.distill4j.examples;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * One teacher of an experiment: trained here (an MLP or a small CNN spec, {@link DemoModels#model}), loaded from a saved
 * DL4J model, or a foreign model run through DJL (ONNX, TorchScript). In an ensemble each member has a weight.
 *
 * @param hidden  hidden layer sizes of a trained model (null for a loaded model)
 * @param conv    channels of a trained model's convolution blocks, before its hidden layers (empty for an MLP, null for a
 *                loaded model)
 * @param dropout dropout of a trained model (on its dense layers' inputs)
 * @param epochs  epochs of a trained MLP
 * @param model   a model file to load (null for a trained MLP)
 * @param djl     how to run {@code model} through DJL; null for a DL4J model file
 * @param weight  the member's weight in an ensemble (normalized there)
 */
public record TeacherSpec(int[] hidden, int[] conv, double dropout, int epochs, Path model, Djl djl, double weight) {

    /** A trained MLP teacher. */
    public static TeacherSpec trained(int[] hidden, double dropout, int epochs, double weight) {
        return trained(new int[0], hidden, dropout, epochs, weight);
    }

    /** A trained teacher with convolution blocks of {@code conv} channels before its hidden layers (none: an MLP). */
    public static TeacherSpec trained(int[] conv, int[] hidden, double dropout, int epochs, double weight) {
        return new TeacherSpec(hidden.clone(), conv.clone(), dropout, epochs, null, null, weight);
    }

    /** A saved DL4J MultiLayerNetwork. */
    public static TeacherSpec dl4j(Path model, double weight) {
        return new TeacherSpec(null, null, 0, 0, model, null, weight);
    }

    /** A foreign model through DJL. */
    public static TeacherSpec djl(Path model, Djl djl, double weight) {
        return new TeacherSpec(null, null, 0, 0, model, djl, weight);
    }

    /** Whether the file's extension says it is a model for DJL (ONNX or TorchScript) rather than a DL4J zip. */
    public static boolean isForeignModel(Path model) {
        String f = model.getFileName() == null ? "" : model.getFileName().toString().toLowerCase(Locale.ROOT);
        return f.endsWith(".onnx") || f.endsWith(".pt") || f.endsWith(".pth") || f.endsWith(".torchscript");
    }

    /**
     * The DJL engines the command line ships with (its class path has their jars), each with the names that ask for it, in
     * any case: a recipe's {@code engine} and the commands' {@code --engine} take these, nothing else.
     */
    public static final java.util.Map<String, List<String>> ENGINES = java.util.Map.of(
            "onnxruntime", List.of("onnxruntime", "onnx", "ort"),
            "pytorch", List.of("pytorch", "torchscript", "pt"));

    /** The engine of {@link #ENGINES} that {@code name} asks for (any case, spaces around it dropped), or null. */
    public static String engine(String name) {
        String n = name.strip().toLowerCase(Locale.ROOT);
        return ENGINES.entrySet().stream().filter(e -> e.getValue().contains(n)).map(java.util.Map.Entry::getKey).findFirst()
                .orElse(null);
    }

    /** The engine of {@link #ENGINES} that a model file's extension implies (.onnx, .pt, .pth, .torchscript), or null. */
    public static String engineOf(Path model) {
        String f = model.getFileName() == null ? "" : model.getFileName().toString().toLowerCase(Locale.ROOT);
        return f.endsWith(".onnx") ? "onnxruntime"
                : f.endsWith(".pt") || f.endsWith(".pth") || f.endsWith(".torchscript") ? "pytorch" : null;
    }

    /** "onnxruntime (or onnx, ort), pytorch (or torchscript, pt)". */
    public static String engineNames() {
        return String.join(", ", ENGINES.keySet().stream().sorted().map(e -> {
            List<String> names = ENGINES.get(e);
            return e + " (or " + String.join(", ", names.subList(1, names.size())) + ")";
        }).toList());
    }

    /**
     * DJL settings for a foreign teacher.
     *
     * @param engine       engine name or alias, null for the one the extension implies
     * @param inputShape   per-sample input shape, null for {@code [featureCount]}
     * @param logitsOutput the output with the class scores, null for the default
     * @param outputNames  names for unnamed outputs (TorchScript), null for none
     */
    public record Djl(String engine, long[] inputShape, String logitsOutput, List<String> outputNames) {
    }
}
