package org.distill4j.examples;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The {@code ./distill} launcher rebuilds the examples jar when sources change, and Maven rewrites that jar and
 * {@code target/lib} in place: under a running job that would break it. The script is run here on a copy of the
 * project's layout with a fake {@code mvnw} and {@code java} that only record that they ran.
 */
class LauncherScriptTest {
    @TempDir
    Path root;
    private Path log;
    private Path lock;

    @BeforeEach
    void layout() throws IOException {
        assumeTrue(onPath("flock") && onPath("bash"), "needs bash and flock(1) (util-linux)");
        Files.copy(Path.of("..", "distill"), root.resolve("distill"));
        log = root.resolve("calls.log");
        lock = root.resolve("examples/target/.distill-jar.lock");
        script(root.resolve("mvnw"), "echo mvnw \"$@\" >> " + log + "\ntouch examples/target/distill-examples.jar\n");
        // the fake java answers the launcher's version probe, and says whether the jar's lock is held while it runs
        // (flock -n on a new open of the file fails while the launcher's shared lock, inherited as fd 9, is held)
        script(root.resolve("jdk/bin/java"), """
                case "$1" in -XshowSettings*) echo '    java.specification.version = 17' >&2; exit 0;; esac
                if flock -x -n %s true; then held=no; else held=yes; fi
                echo "java $* lock-held=$held" >> %s
                """.formatted(lock, log));
        Files.createDirectories(root.resolve("examples/target/lib"));
        Path jar = Files.writeString(root.resolve("examples/target/distill-examples.jar"), "jar");
        Path source = root.resolve("examples/src/main/java/A.java");
        Files.createDirectories(source.getParent());
        Files.writeString(source, "class A {}");
        Files.setLastModifiedTime(jar, FileTime.fromMillis(System.currentTimeMillis() - 60_000)); // sources changed since
    }

    @Test
    void aJobHoldsTheJarLockWhileItRuns() throws Exception {
        Result r = launch(null, "list");
        assertEquals(0, r.rc, r.err);
        List<String> calls = calls();
        assertTrue(calls.get(0).startsWith("mvnw ") && calls.get(0).contains("-pl examples -am package"), calls.toString());
        assertEquals("java -jar " + root.toRealPath() + "/examples/target/distill-examples.jar list lock-held=yes", calls.get(1));
        assertEquals(2, calls.size(), calls.toString());
    }

    @Test
    void changedSourcesUnderARunningJobAreRefusedNotRebuilt() throws Exception {
        Process job = holdSharedLock();
        try {
            Result r = launch(null, "list");
            assertEquals(2, r.rc, r.err);
            assertTrue(r.err.contains("sources changed since the examples jar was built, but another distill is running from it")
                    && r.err.contains("DISTILL_NO_REBUILD=1"), r.err);
            assertFalse(Files.exists(log), "neither maven nor java ran");

            Result anyway = launch("1", "list"); // the jar as built, without rebuilding
            assertEquals(0, anyway.rc, anyway.err);
            assertTrue(anyway.err.contains("DISTILL_NO_REBUILD is set: running the jar as built"), anyway.err);
            assertEquals(List.of("java -jar " + root.toRealPath() + "/examples/target/distill-examples.jar list lock-held=yes"),
                    calls());
        } finally {
            job.destroy();
            job.waitFor(10, TimeUnit.SECONDS);
        }
        Files.delete(log);
        Result after = launch(null, "list"); // the job ended: the rebuild goes ahead
        assertEquals(0, after.rc, after.err);
        assertTrue(calls().get(0).startsWith("mvnw "), calls().toString());
    }

    @Test
    void anUnchangedJarRunsBesideARunningJob() throws Exception {
        Files.setLastModifiedTime(root.resolve("examples/target/distill-examples.jar"), FileTime.fromMillis(System.currentTimeMillis() + 60_000));
        Process job = holdSharedLock();
        try {
            Result r = launch(null, "list");
            assertEquals(0, r.rc, r.err);
            assertEquals(List.of("java -jar " + root.toRealPath() + "/examples/target/distill-examples.jar list lock-held=yes"),
                    calls());
        } finally {
            job.destroy();
            job.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aLauncherWaitsForAnotherOnesBuildAndBuildsItselfWhenThatBuildFailed() throws Exception {
        // another launcher building (the exclusive lock), which fails after a while: it built nothing
        Process other = holdLock("-x", "sleep 1");
        try {
            Result r = launch(null, "list");
            assertEquals(0, r.rc, r.err);
            assertTrue(r.err.contains("waiting for another distill to finish building the examples jar"), r.err);
            List<String> calls = calls();
            assertTrue(calls.get(0).startsWith("mvnw "), calls.toString());
            assertTrue(calls.get(1).endsWith("list lock-held=yes"), calls.toString());
        } finally {
            other.destroy();
            other.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aLockFileThatCannotBeOpenedIsRunWithout() throws Exception {
        Files.createSymbolicLink(lock, root.resolve("no-such-dir/lock")); // neither opened nor created
        Result r = launch(null, "list");
        assertEquals(0, r.rc, r.err);
        assertTrue(r.err.contains("cannot open " + lock + ": running without the jar lock"), r.err);
        assertTrue(calls().get(0).startsWith("mvnw ") && calls().get(1).startsWith("java -jar "), calls().toString());
    }

    /** Another distill running from the jar: a process holding the shared lock as the launcher's java does. */
    private Process holdSharedLock() throws Exception {
        return holdLock("-s", "exec sleep 60");
    }

    /** A process that takes the jar's lock in {@code mode} (-s or -x), then runs {@code then} holding it. */
    private Process holdLock(String mode, String then) throws Exception {
        Files.createDirectories(lock.getParent());
        Path ready = root.resolve("ready");
        Files.deleteIfExists(ready);
        Process p = new ProcessBuilder("bash", "-c", "exec 9>>" + lock + " && flock " + mode + " 9 && touch " + ready + " && " + then)
                .redirectErrorStream(true).start();
        for (int i = 0; i < 200 && !Files.exists(ready); i++) {
            Thread.sleep(50);
        }
        assertTrue(Files.exists(ready), "the lock holder started");
        return p;
    }

    private Result launch(String noRebuild, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("bash", root.resolve("distill").toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(root.toFile());
        pb.environment().put("JAVA_HOME", root.resolve("jdk").toString());
        pb.environment().remove("DISTILL_NO_REBUILD");
        pb.environment().remove("DISTILL_JAVA_OPTS");
        if (noRebuild != null) {
            pb.environment().put("DISTILL_NO_REBUILD", noRebuild);
        }
        Process p = pb.start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the launcher finished");
        return new Result(p.exitValue(), out, err);
    }

    private record Result(int rc, String out, String err) {
    }

    private List<String> calls() throws IOException {
        return Files.readAllLines(log);
    }

    private static void script(Path file, String body) throws IOException {
        Files.createDirectories(file.getParent());
        Files.writeString(file, "#!/usr/bin/env bash\n" + body);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    private static boolean onPath(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, tool))) {
                return true;
            }
        }
        return false;
    }
}
