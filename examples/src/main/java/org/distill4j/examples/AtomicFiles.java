package org.distill4j.examples;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Writes files so that a reader never sees a half-written one: a temporary sibling, then a rename. */
public final class AtomicFiles {
    private AtomicFiles() {
    }

    /** Something that writes a whole file at the path it is given. */
    @FunctionalInterface
    public interface FileWriter {
        void writeTo(Path file) throws IOException;
    }

    public static void writeString(Path target, String content) throws IOException {
        write(target, ".tmp", tmp -> Files.writeString(tmp, content, StandardCharsets.UTF_8));
    }

    /**
     * Has {@code writer} write a temporary sibling of {@code target} (a unique name ending in {@code suffix}, for
     * writers that want an extension), then renames it over {@code target}; the temporary file is gone either way.
     */
    public static void write(Path target, String suffix, FileWriter writer) throws IOException {
        org.distill4j.internal.AtomicFiles.write(target, suffix, writer::writeTo); // rw-r--r--, forced to disk, renamed
    }
}
