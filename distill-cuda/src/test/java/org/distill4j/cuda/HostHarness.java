package org.distill4j.cuda;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A C++ program under {@code src/test/cuda} that runs a kernel header's algebra on the CPU, compiled with
 * the system C++ compiler (g++, c++ or clang++; the tests that use one are skipped with that reason when
 * there is none). {@link #run} writes the input bytes to a file, runs the program on it and returns what
 * it wrote.
 */
public final class HostHarness {
    private final Path exe;

    private HostHarness(Path exe) {
        this.exe = exe;
    }

    /** Compiles {@code src/test/cuda/<name>.cpp} against {@code src/main/cuda} into {@code target/host-tests}. */
    public static HostHarness compile(String name) throws IOException, InterruptedException {
        String cxx = null;
        for (String c : new String[] {"g++", "c++", "clang++"}) {
            if (onPath(c)) {
                cxx = c;
                break;
            }
        }
        Assumptions.assumeTrue(cxx != null, "no C++ compiler on PATH (g++, c++, clang++): the kernel algebra is not checked here");
        Path dir = Path.of("target", "host-tests");
        Files.createDirectories(dir);
        Path exe = dir.resolve(name);
        Process p = new ProcessBuilder(cxx, "-std=c++17", "-O2", "-Wall", "-Werror", "-I", "src/main/cuda", "-o", exe.toString(),
                "src/test/cuda/" + name + ".cpp").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), "compiling the host harness " + name + ":\n" + out);
        return new HostHarness(exe);
    }

    private static boolean onPath(String exe) {
        String path = System.getenv("PATH");
        if (path == null) {
            return false;
        }
        for (String d : path.split(java.io.File.pathSeparator)) {
            if (Files.isExecutable(Path.of(d, exe))) {
                return true;
            }
        }
        return false;
    }

    /** Runs the program on {@code input}; returns its output file's bytes (it must exit 0 within a minute). */
    public byte[] run(byte[] input) throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("host-harness");
        Path in = dir.resolve("in.bin");
        Path outFile = dir.resolve("out.bin");
        try {
            Files.write(in, input);
            Process p = new ProcessBuilder(exe.toAbsolutePath().toString(), in.toString(), outFile.toString()).redirectErrorStream(true)
                    .start();
            String log = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException(exe + " timed out");
            }
            assertEquals(0, p.exitValue(), exe + ": " + log);
            return Files.readAllBytes(outFile);
        } finally {
            Files.deleteIfExists(in);
            Files.deleteIfExists(outFile);
            Files.delete(dir);
        }
    }
}
