package org.distill4j.teacher.djl;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * The DJL engines a {@link DjlTeacher} can use, their aliases, file kinds and the Maven artifacts that
 * bring them. Touches DJL classes only in {@link #requireOnClasspath()}, after checking DJL is there.
 */
enum DjlEngine {
    ONNX_RUNTIME("OnnxRuntime", "an ONNX (.onnx)",
            "ai.djl.onnxruntime:onnxruntime-engine:0.35.1 with com.microsoft.onnxruntime:onnxruntime:1.24.2",
            "onnxruntime", "onnx", "ort"),
    PYTORCH("PyTorch", "a TorchScript (.pt, saved with torch.jit.save)",
            "ai.djl.pytorch:pytorch-engine:0.35.1, ai.djl.pytorch:pytorch-jni:2.7.1-0.35.1 and "
                    + "ai.djl.pytorch:pytorch-native-cpu:2.7.1:linux-x86_64 (newer sets download libtorch at run time)",
            "pytorch", "torchscript", "pt"),
    TENSORFLOW("TensorFlow", "a TensorFlow SavedModel", "ai.djl.tensorflow:tensorflow-engine (not tested with Distill4J)",
            "tensorflow", "tf");

    private static final String DJL_API = "ai.djl:api:0.35.1";

    private final String djlName;
    private final String fileKind;
    private final String artifacts;
    private final String[] aliases;

    DjlEngine(String djlName, String fileKind, String artifacts, String... aliases) {
        this.djlName = djlName;
        this.fileKind = fileKind;
        this.artifacts = artifacts;
        this.aliases = aliases;
    }

    String djlName() {
        return djlName;
    }

    String fileKind() {
        return fileKind;
    }

    /** The engine named (an alias or DJL's own name, any case), or the one the file extension implies. */
    static DjlEngine resolve(String name, Path model) {
        if (name != null && !name.isBlank()) {
            String n = name.strip().toLowerCase(Locale.ROOT);
            for (DjlEngine e : values()) {
                if (e.djlName.toLowerCase(Locale.ROOT).equals(n)) {
                    return e;
                }
                for (String a : e.aliases) {
                    if (a.equals(n)) {
                        return e;
                    }
                }
            }
            throw new IllegalArgumentException("unknown DJL engine '" + name + "' for " + model + "; known: " + known());
        }
        String file = model.getFileName() == null ? "" : model.getFileName().toString().toLowerCase(Locale.ROOT);
        if (file.endsWith(".onnx")) {
            return ONNX_RUNTIME;
        }
        if (file.endsWith(".pt") || file.endsWith(".pth") || file.endsWith(".torchscript")) {
            return PYTORCH;
        }
        throw new IllegalArgumentException("cannot tell the engine of " + model + " from its extension (expected .onnx, .pt, "
                + ".pth or .torchscript); name it: " + known());
    }

    static String known() {
        StringBuilder b = new StringBuilder();
        for (DjlEngine e : values()) {
            b.append(b.length() > 0 ? "; " : "").append(e.djlName).append(" (").append(String.join(", ", e.aliases)).append(')');
        }
        return b.toString();
    }

    /**
     * Fails with the artifacts to add when DJL's API or this engine is not on the classpath.
     *
     * @throws IllegalStateException naming the missing Maven artifacts
     */
    void requireOnClasspath() {
        ClassLoader loader = DjlEngine.class.getClassLoader();
        try {
            Class.forName("ai.djl.engine.Engine", false, loader);
        } catch (ClassNotFoundException | LinkageError e) {
            throw new IllegalStateException("DJL is not on the classpath, so the " + djlName + " teacher cannot load; Distill4J"
                    + " keeps DJL optional: add " + DJL_API + " and " + artifacts);
        }
        Availability.require(this);
    }

    /** The DJL calls, in a class of their own so that {@link DjlEngine} links without DJL. */
    private static final class Availability {
        static void require(DjlEngine e) {
            if (!ai.djl.engine.Engine.hasEngine(e.djlName)) {
                Set<String> found = new TreeSet<>(ai.djl.engine.Engine.getAllEngines());
                throw new IllegalStateException("DJL engine " + e.djlName + " is not on the classpath (engines found: "
                        + (found.isEmpty() ? "none" : String.join(", ", found)) + "); add " + e.artifacts);
            }
        }
    }
}
