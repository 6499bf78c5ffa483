package org.distill4j.examples;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.backend.ComputeBackend;
import org.distill4j.train.Distiller;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** The record written next to every result: resolved settings, versions, backend, device, times. */
public final class Provenance {
    private Provenance() {
    }

    public static Map<String, Object> record(Map<String, Object> settings, String dataSource, ComputeBackend backend,
                                             Instant started, Instant finished) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("settings", settings);
        m.put("dataSource", dataSource);
        m.put("backend", backend.name());
        m.put("device", backend.device());
        Map<String, Object> versions = new LinkedHashMap<>();
        versions.put("distill4j", versionOf(Distiller.class));
        versions.put("deeplearning4j", versionOf(MultiLayerNetwork.class));
        versions.put("djl", versionOf(ai.djl.engine.Engine.class));
        versions.put("onnxruntime", versionOf(ai.onnxruntime.OrtEnvironment.class));
        versions.put("djlPytorchEngine", versionOf(ai.djl.pytorch.jni.JniUtils.class));
        versions.put("java", System.getProperty("java.vendor") + " " + Runtime.version());
        versions.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        m.put("versions", versions);
        m.put("environment", environment());
        String commit = gitCommit();
        if (commit != null) {
            m.put("gitCommit", commit);
        }
        m.put("started", started.toString());
        m.put("finished", finished.toString());
        m.put("wallSeconds", (finished.toEpochMilli() - started.toEpochMilli()) / 1000.0);
        return m;
    }

    /** The implementation version from the jar manifest, else the version in the jar's file name, else "unknown". */
    static String versionOf(Class<?> c) {
        Package p = c.getPackage();
        if (p != null && p.getImplementationVersion() != null) {
            return p.getImplementationVersion();
        }
        try {
            var src = c.getProtectionDomain().getCodeSource();
            if (src != null) {
                String name = Path.of(src.getLocation().toURI()).getFileName().toString();
                var m = java.util.regex.Pattern.compile("-(\\d[\\w.\\-]*?)\\.jar$").matcher(name);
                if (m.find()) {
                    return m.group(1);
                }
            }
        } catch (URISyntaxException | RuntimeException e) {
            // fall through: provenance is best effort for versions
        }
        return "unknown";
    }

    private static Map<String, Object> environment() {
        Map<String, Object> env = new LinkedHashMap<>();
        env.put("cores", Runtime.getRuntime().availableProcessors());
        env.put("maxHeapMiB", Runtime.getRuntime().maxMemory() >> 20);
        String omp = System.getenv("OMP_NUM_THREADS");
        env.put("OMP_NUM_THREADS", omp == null ? "unset" : omp);
        return env;
    }

    /** The current git commit when run inside a checkout, else null. */
    static String gitCommit() {
        try {
            Process p = new ProcessBuilder("git", "rev-parse", "HEAD").redirectErrorStream(true).start();
            if (!p.waitFor(5, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return null;
            }
            String s = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            return p.exitValue() == 0 && s.matches("[0-9a-f]{40}") ? s : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }
}
