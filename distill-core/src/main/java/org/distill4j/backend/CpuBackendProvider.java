package org.distill4j.backend;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Provides {@link CpuBackend}; priority 0, always available. */
public final class CpuBackendProvider implements ComputeBackendProvider {

    @Override
    public String name() {
        return CpuBackend.NAME;
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public Availability probe() {
        return Availability.available(describeCpu());
    }

    @Override
    public ComputeBackend create() {
        return new CpuBackend();
    }

    /** "N cores, model name" where /proc/cpuinfo tells the model, else "N cores, os.arch". */
    static String describeCpu() {
        int cores = Runtime.getRuntime().availableProcessors();
        String model = System.getProperty("os.arch");
        Path info = Path.of("/proc/cpuinfo");
        if (Files.isReadable(info)) {
            try (Stream<String> lines = Files.lines(info)) {
                model = lines.filter(l -> l.startsWith("model name")).map(l -> l.substring(l.indexOf(':') + 1).trim())
                        .findFirst().orElse(model);
            } catch (IOException | RuntimeException e) {
                // keep os.arch: the description is informational only
            }
        }
        return cores + " cores, " + model;
    }
}
