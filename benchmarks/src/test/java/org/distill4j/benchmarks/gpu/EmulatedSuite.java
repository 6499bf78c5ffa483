package org.distill4j.benchmarks.gpu;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Runs a GPU suite's {@code main} in a JVM of its own on distill-cuda's CUDA emulator ({@code distill-cuda/target/cuda-emu},
 * built by distill-cuda's {@code process-test-classes}: run these tests with {@code -am}), as a lent device would run it
 * but with tiny shapes. Skipped, with the reason, where the emulator has not been built.
 */
final class EmulatedSuite {
    private EmulatedSuite() {
    }

    /** The suite's exit status and everything it printed. */
    record Result(int exit, String out) {
    }

    static Path emulatorLib() {
        return Path.of("..", "distill-cuda", "target", "cuda-emu", "lib").toAbsolutePath().normalize();
    }

    /** Runs {@code mainClass} with {@code args} on the emulator, {@code env} added to its environment. */
    static Result run(Class<?> mainClass, Map<String, String> env, String... args) throws IOException, InterruptedException {
        Path lib = emulatorLib();
        assumeTrue(Files.exists(lib.resolve("libcuda.so.1")), "no CUDA emulator at " + lib
                + " (distill-cuda's process-test-classes builds it where g++ and the CUDA headers are: run with -am)");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> cmd = new ArrayList<>(List.of(java.toString(), "-Xss4m",
                "-Dorg.bytedeco.javacpp.platform.linkpath=" + lib,
                // a JavaCPP cache of its own, so the user's cache never links to the emulator's libraries
                "-Dorg.bytedeco.javacpp.cachedir=" + Path.of("target", "cuda-emu-javacpp-cache").toAbsolutePath(),
                "-cp", System.getProperty("java.class.path"), mainClass.getName()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("LD_LIBRARY_PATH", lib.toString());
        pb.environment().put("OMP_NUM_THREADS", "1");
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), "the suite did not finish");
        return new Result(p.exitValue(), out);
    }
}
