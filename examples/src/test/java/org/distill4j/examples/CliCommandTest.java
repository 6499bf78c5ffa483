package org.distill4j.examples;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** Base of the CLI command tests: runs {@code distill} in-process with its standard output and error captured. */
abstract class CliCommandTest {
    private final ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
    private final ByteArrayOutputStream errBytes = new ByteArrayOutputStream();

    /** Runs {@code distill args...}; returns its exit code. Each call starts with empty output. */
    int run(String... args) {
        outBytes.reset();
        errBytes.reset();
        return Main.run(args, new PrintStream(outBytes, true, StandardCharsets.UTF_8), new PrintStream(errBytes, true, StandardCharsets.UTF_8));
    }

    /** What the last run printed on standard output. */
    String out() {
        return outBytes.toString(StandardCharsets.UTF_8);
    }

    /** What the last run printed on standard error. */
    String err() {
        return errBytes.toString(StandardCharsets.UTF_8);
    }
}
