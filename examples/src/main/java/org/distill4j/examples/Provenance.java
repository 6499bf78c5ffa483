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
        versions.put("distill4j", distill4jVersion());
        versions.put("deeplearning4j", versionOf(MultiLayerNetwork.class));
        versions.put("djl", versionOf(ai.djl.engine.Engine.class));
        versions.put("onnxruntime", versionOf(ai.onnxruntime.OrtEnvironment.class));
        versions.put("djlPytorchEngine", versionOf(ai.djl.pytorch.jni.JniUtils.class));
        versions.put("java", System.getProperty("java.vendor") + " " + Runtime.version());
        versions.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        m.put("versions", versions);
        m.put("environment", environment());
        m.putAll(git(Main.codeLocation()));
        m.put("started", started.toString());
        m.put("finished", finished.toString());
        m.put("wallSeconds", (finished.toEpochMilli() - started.toEpochMilli()) / 1000.0);
        return m;
    }

    /** The resource that Maven's resource filtering writes the build's version into (examples/pom.xml). */
    static final String VERSION_RESOURCE = "distill4j-version.properties";

    /**
     * The Distill4J version: distill-core's jar's (manifest or file name), else the version this code was built as, from
     * {@link #VERSION_RESOURCE} (class folders, as in the tests or {@code java -cp target/classes}, have neither a manifest
     * nor a versioned name), else "unknown".
     */
    static String distill4jVersion() {
        return distill4jVersion(versionOf(Distiller.class));
    }

    /** {@code v}, distill-core's version from its jar, or where that is "unknown" the version this code was built as. */
    static String distill4jVersion(String v) {
        if (!v.equals("unknown")) {
            return v;
        }
        try (java.io.InputStream in = Provenance.class.getResourceAsStream(VERSION_RESOURCE)) {
            if (in != null) {
                java.util.Properties p = new java.util.Properties();
                p.load(in);
                String built = p.getProperty("version", "").trim();
                if (!built.isEmpty() && !built.contains("${")) { // not filtered (an IDE's copy): no version known
                    return built;
                }
            }
        } catch (IOException e) {
            // fall through: provenance is best effort for versions
        }
        return "unknown";
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
        // what 'auto' obeys: a backend named here wins over the highest-priority available one
        String property = System.getProperty(org.distill4j.backend.Backends.PROPERTY);
        env.put(org.distill4j.backend.Backends.PROPERTY, property == null ? "unset" : property);
        String variable = System.getenv(org.distill4j.backend.Backends.ENV);
        env.put(org.distill4j.backend.Backends.ENV, variable == null ? "unset" : variable);
        return env;
    }

    /**
     * The commit of the Distill4J source tree the running code was built in: {@code gitCommit}, and
     * {@code gitDirty} when tracked files differ from it (the run's code may then not be that commit's).
     * Found upwards from the code's jar or classes folder, never from the working directory (which may be
     * another project's checkout); empty when the code does not sit in a Distill4J checkout (an installed
     * jar) or git cannot tell.
     */
    static Map<String, Object> git(Path codeLocation) {
        Map<String, Object> m = new LinkedHashMap<>();
        Path tree = sourceTree(codeLocation);
        if (tree == null) {
            return m;
        }
        String head = run(tree, "rev-parse", "HEAD");
        if (head == null || !head.matches("[0-9a-f]{40}")) {
            return m;
        }
        m.put("gitCommit", head);
        String status = run(tree, "status", "--porcelain", "--untracked-files=no");
        if (status != null) {
            m.put("gitDirty", !status.isEmpty());
        }
        return m;
    }

    /** The nearest folder above {@code codeLocation} that is a Distill4J checkout (a .git and the parent pom), or null. */
    static Path sourceTree(Path codeLocation) {
        for (Path d = codeLocation == null ? null : codeLocation.toAbsolutePath(); d != null; d = d.getParent()) {
            Path pom = d.resolve("pom.xml");
            if (java.nio.file.Files.exists(d.resolve(".git")) && java.nio.file.Files.isRegularFile(pom)) {
                try {
                    return java.nio.file.Files.readString(pom).contains("<artifactId>distill4j-parent</artifactId>") ? d : null;
                } catch (IOException e) {
                    return null;
                }
            }
        }
        return null;
    }

    /** {@code git -C dir args...}: its trimmed output, or null when git is missing, fails or takes over 5 s. */
    private static String run(Path dir, String... args) {
        java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of("git", "-C", dir.toString()));
        cmd.addAll(java.util.List.of(args));
        Path out = null;
        try {
            // output to a file: a pipe could fill (a long status) and block git past the timeout
            out = java.nio.file.Files.createTempFile("distill-git", ".txt");
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).redirectOutput(out.toFile()).start();
            if (!p.waitFor(5, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return null;
            }
            return p.exitValue() == 0 ? java.nio.file.Files.readString(out, StandardCharsets.UTF_8).trim() : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        } finally {
            if (out != null) {
                try {
                    java.nio.file.Files.deleteIfExists(out);
                } catch (IOException e) {
                    // a temporary file left behind is harmless
                }
            }
        }
    }
}
