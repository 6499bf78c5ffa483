package org.distill4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Ctrl-C or SIGTERM during a long command: it says how to go on. */
class InterruptedHintTest {
    @Test
    void resumableCommandsSayHowToGoOn() {
        assertTrue(Main.interruptedHint(new String[]{"run", "r.yaml"}).contains("run the same command with --resume"));
        assertTrue(Main.interruptedHint(new String[]{"demo", "--resume"}).contains("run the same command again (it has --resume)"));
        assertTrue(Main.interruptedHint(new String[]{"label", "--teacher", "t.zip", "--out", "s.d4j"})
                .contains("the same command goes on from there"));
        assertTrue(Main.interruptedHint(new String[]{"store", "import", "--npy", "a.npy", "--out", "s.d4j"})
                .startsWith("distill store import: interrupted."));
        for (String[] nothingToResume : List.of(new String[]{}, new String[]{"eval", "m.zip"}, new String[]{"list"},
                new String[]{"store", "verify", "s.d4j"}, new String[]{"run", "--help"}, new String[]{"label", "-h"})) {
            assertNull(Main.interruptedHint(nothingToResume), String.join(" ", nothingToResume));
        }
    }

    @Test
    void aTerminatedDemoPrintsTheHintAndAFinishedOneDoesNot(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        // a teacher that trains for long enough to be stopped after its first checkpoint
        Process p = child(tmp, "demo", "--data", "embedded", "--out", out.toString(), "--quiet", "--teacher-samples", "500",
                "--teacher-epochs", "1000", "--teacher-hidden", "16", "--transfer-samples", "200", "--test-samples", "100");
        Path checkpoint = out.resolve("checkpoints/teacher/" + org.distill4j.train.Checkpoints.FILE_NAME);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!Files.exists(checkpoint) && p.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertTrue(Files.exists(checkpoint), "the teacher saved a checkpoint:\n" + log(tmp));
        p.destroy(); // SIGTERM: the JVM runs its shutdown hooks
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertTrue(log(tmp).contains("distill demo: interrupted. Each row goes on from its last checkpoint"), log(tmp));

        Process usage = child(tmp, "demo", "--no-such-option"); // ends (exit 2) through System.exit: no hint
        assertTrue(usage.waitFor(60, TimeUnit.SECONDS));
        assertEquals(2, usage.exitValue());
        assertTrue(log(tmp).contains("unexpected argument") || log(tmp).contains("no-such-option"), log(tmp));
        assertFalse(log(tmp).contains("interrupted"), log(tmp));

        // an Error ends the command through the uncaught exception, which runs the hooks too: no hint either
        Process oom = child(tmp, List.of("-Xmx12m"), "demo", "--data", "embedded", "--out", tmp.resolve("oom").toString(), "--quiet");
        assertTrue(oom.waitFor(120, TimeUnit.SECONDS));
        assertEquals(1, oom.exitValue(), log(tmp));
        assertTrue(log(tmp).contains("OutOfMemoryError"), log(tmp));
        assertFalse(log(tmp).contains("interrupted"), log(tmp));
    }

    private static Process child(Path tmp, String... args) throws Exception {
        return child(tmp, List.of(), args);
    }

    private static Process child(Path tmp, List<String> jvmOptions, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile());
        pb.environment().put("OMP_NUM_THREADS", "1");
        return pb.start();
    }

    private static String log(Path tmp) throws java.io.IOException {
        return Files.readString(tmp.resolve("child.log"), StandardCharsets.UTF_8);
    }
}
