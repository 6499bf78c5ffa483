package org.distill4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The git commit in provenance is the running code's checkout's, never the working directory's, and says when it is dirty. */
class ProvenanceTest {
    /** {@code git -C dir args}; its trimmed output. */
    private static String git(Path dir, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("git", "-C", dir.toString(), "-c", "user.name=t", "-c", "user.email=t@t",
                "-c", "commit.gpgsign=false"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertEquals(0, p.waitFor(), String.join(" ", cmd) + ": " + out);
        return out;
    }

    private static boolean hasGit() {
        try {
            return new ProcessBuilder("git", "--version").start().waitFor() == 0;
        } catch (Exception e) {
            return false;
        }
    }

    /** A git repository at {@code dir} with {@code pom} as its pom.xml, committed; returns the commit. */
    private static String repo(Path dir, String pom) throws Exception {
        Files.createDirectories(dir.resolve("examples/target/classes"));
        Files.writeString(dir.resolve("pom.xml"), pom);
        git(dir, "init", "-q");
        git(dir, "add", "pom.xml");
        git(dir, "commit", "-q", "-m", "init");
        return git(dir, "rev-parse", "HEAD");
    }

    @Test
    void theCommitIsTheRunningCodesCheckoutsAndNotesADirtyTree(@TempDir Path tmp) throws Exception {
        assumeTrue(hasGit(), "git is not installed");
        Path ours = tmp.resolve("distill4j");
        String commit = repo(ours, "<project><artifactId>distill4j-parent</artifactId></project>\n");
        Path classes = ours.resolve("examples/target/classes");
        assertEquals(Map.of("gitCommit", commit, "gitDirty", false), Provenance.git(classes));
        Files.writeString(ours.resolve("pom.xml"), "<project><artifactId>distill4j-parent</artifactId><!-- edited --></project>\n");
        assertEquals(Map.of("gitCommit", commit, "gitDirty", true), Provenance.git(classes), "a tracked file differs from the commit");

        // code inside another project's checkout (or an installed jar): no commit rather than the wrong one
        Path other = tmp.resolve("other");
        repo(other, "<project><artifactId>someone-else</artifactId></project>\n");
        assertEquals(Map.of(), Provenance.git(other.resolve("examples/target/classes")));
        assertEquals(Map.of(), Provenance.git(tmp.resolve("lib/distill-examples.jar")));
        assertEquals(Map.of(), Provenance.git(null));
    }

    /**
     * The Distill4J version is recorded in every layout: from a jar's manifest or name, and from class folders too (the
     * tests, {@code java -cp target/classes}), where there is neither; there it was "unknown". It is the build's version,
     * the one in the parent pom.
     */
    @Test
    void theDistill4jVersionIsKnownWhenTheCodeRunsFromClassFolders() throws Exception {
        String pom = Files.readString(Path.of("..", "pom.xml"));
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(
                "<artifactId>distill4j-parent</artifactId>\\s*<version>([^<]+)</version>").matcher(pom);
        assertTrue(m.find(), "the parent pom's version");
        String version = m.group(1).trim();
        // distill-core runs from its class folder under `mvn test` and from its jar under `mvn verify` (CI): the fallback is
        // checked as such, whichever this run has
        assertEquals(version, Provenance.distill4jVersion("unknown"), "no version from a jar: the version this was built as");
        assertEquals("9.9.9-from-a-jar", Provenance.distill4jVersion("9.9.9-from-a-jar"), "a jar's version wins");
        try (org.distill4j.backend.CpuBackend cpu = new org.distill4j.backend.CpuBackend()) {
            Map<String, Object> p = Provenance.record(Map.of(), "test", cpu, java.time.Instant.EPOCH, java.time.Instant.EPOCH);
            assertEquals(version, ((Map<?, ?>) p.get("versions")).get("distill4j"), p.toString());
        }
    }

    @Test
    void thisBuildRecordsItsOwnCheckout() throws Exception {
        assumeTrue(hasGit(), "git is not installed");
        Path root = Provenance.sourceTree(Main.codeLocation());
        assumeTrue(root != null, "the tests run from a Distill4J checkout");
        Map<String, Object> g = Provenance.git(Main.codeLocation());
        assertEquals(git(root, "rev-parse", "HEAD"), g.get("gitCommit"));
        assertTrue(g.get("gitDirty") instanceof Boolean, g.toString());
    }

    /**
     * The record holds what it says: the settings and data source given, the backend's name and device, the versions of the
     * libraries on the class path, the environment that decides speed and backend choice (cores, heap, OMP_NUM_THREADS,
     * -Ddistill.backend, DISTILL_BACKEND), the start and end as ISO instants and the seconds between them.
     */
    @Test
    void theRecordHoldsTheRunsSettingsVersionsEnvironmentAndTimes() throws Exception {
        Map<String, Object> settings = Map.of("seed", 42L);
        String before = System.getProperty(org.distill4j.backend.Backends.PROPERTY);
        System.setProperty(org.distill4j.backend.Backends.PROPERTY, "cpu");
        Map<String, Object> p;
        try (org.distill4j.backend.CpuBackend cpu = new org.distill4j.backend.CpuBackend()) {
            p = Provenance.record(settings, "embedded subset", cpu, java.time.Instant.ofEpochMilli(1_000),
                    java.time.Instant.ofEpochMilli(3_250));
            assertEquals(cpu.device(), p.get("device"));
            System.clearProperty(org.distill4j.backend.Backends.PROPERTY);
            Map<String, Object> unset = Provenance.record(settings, "d", cpu, java.time.Instant.EPOCH, java.time.Instant.EPOCH);
            assertEquals("unset", ((Map<?, ?>) unset.get("environment")).get(org.distill4j.backend.Backends.PROPERTY));
            assertEquals(0.0, (Double) unset.get("wallSeconds"), 0.0);
        } finally {
            if (before == null) {
                System.clearProperty(org.distill4j.backend.Backends.PROPERTY);
            } else {
                System.setProperty(org.distill4j.backend.Backends.PROPERTY, before);
            }
        }
        assertEquals(settings, p.get("settings"));
        assertEquals("embedded subset", p.get("dataSource"));
        assertEquals("cpu", p.get("backend"));
        assertEquals("1970-01-01T00:00:01Z", p.get("started"));
        assertEquals("1970-01-01T00:00:03.250Z", p.get("finished"));
        assertEquals(2.25, (Double) p.get("wallSeconds"), 0.0);
        Map<?, ?> versions = (Map<?, ?>) p.get("versions");
        assertEquals(List.of("distill4j", "deeplearning4j", "djl", "onnxruntime", "djlPytorchEngine", "java", "os"),
                List.copyOf(versions.keySet()));
        assertEquals("1.0.0-M2.1", versions.get("deeplearning4j"));
        assertEquals("0.35.1", versions.get("djl"));
        assertEquals("0.35.1", versions.get("djlPytorchEngine"));
        assertEquals(System.getProperty("java.vendor") + " " + Runtime.version(), versions.get("java"));
        assertEquals(System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"),
                versions.get("os"));
        Map<?, ?> env = (Map<?, ?>) p.get("environment");
        assertEquals(Runtime.getRuntime().availableProcessors(), env.get("cores"));
        assertEquals(Runtime.getRuntime().maxMemory() >> 20, env.get("maxHeapMiB"));
        String omp = System.getenv("OMP_NUM_THREADS");
        assertEquals(omp == null ? "unset" : omp, env.get("OMP_NUM_THREADS"));
        assertEquals("cpu", env.get(org.distill4j.backend.Backends.PROPERTY), "the property 'auto' obeys, as set");
        String variable = System.getenv(org.distill4j.backend.Backends.ENV);
        assertEquals(variable == null ? "unset" : variable, env.get(org.distill4j.backend.Backends.ENV));
        assertEquals(Provenance.git(Main.codeLocation()).keySet().isEmpty(), !p.containsKey("gitCommit"));
    }

    /**
     * A library's version: its jar manifest's Implementation-Version where it has one (jna-platform's says "4.3.0 (b0)"),
     * else the version in its jar's file name; a class from a folder or the JDK has none.
     */
    @Test
    void aVersionComesFromTheManifestElseTheJarsName() throws Exception {
        Class<?> manifest = Class.forName("com.sun.jna.platform.FileUtils", false, getClass().getClassLoader());
        assertEquals("4.3.0 (b0)", Provenance.versionOf(manifest));
        assertEquals("1.0.0-M2.1", Provenance.versionOf(org.nd4j.linalg.factory.Nd4j.class), "no manifest version: the name's");
        assertEquals("unknown", Provenance.versionOf(ProvenanceTest.class), "a class folder");
        assertEquals("unknown", Provenance.versionOf(int.class), "no package, no code source");
    }

    /** Upwards from the code: the nearest checkout, and none where the nearest .git has no pom or the pom is a folder. */
    @Test
    void theSourceTreeIsTheNearestCheckoutAboveTheCode(@TempDir Path tmp) throws Exception {
        String parent = "<project><artifactId>distill4j-parent</artifactId></project>\n";
        Path ours = Files.createDirectories(tmp.resolve("a/examples/target/classes"));
        Files.writeString(tmp.resolve("a/pom.xml"), parent);
        assertEquals(null, Provenance.sourceTree(ours), "a pom without .git beside it is no checkout");
        Files.createDirectories(tmp.resolve("a/.git"));
        assertEquals(tmp.resolve("a").toAbsolutePath(), Provenance.sourceTree(ours));
        Files.createDirectories(tmp.resolve("a/examples/.git"));
        Files.createDirectories(tmp.resolve("a/examples/pom.xml"));
        assertEquals(tmp.resolve("a").toAbsolutePath(), Provenance.sourceTree(ours), "a folder named pom.xml is no pom");
        Files.delete(tmp.resolve("a/examples/pom.xml"));
        Files.writeString(tmp.resolve("a/examples/pom.xml"), parent);
        assertEquals(tmp.resolve("a/examples").toAbsolutePath(), Provenance.sourceTree(ours), "the nearest");
        if (hasGit()) {
            assertEquals(Map.of(), Provenance.git(ours), "a .git git does not take: no commit");
        }
    }
}
