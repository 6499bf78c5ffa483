package org.distill4j.internal;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Files a reader never sees half-written: written to a temporary sibling, forced to disk, then renamed over the
 * target. The one place that knows the temporary names, so leftovers of an interrupted write can be found.
 */
public final class AtomicFiles {
    private AtomicFiles() {
    }

    /** Something that writes a whole file at the path it is given. */
    @FunctionalInterface
    public interface FileWriter {
        /**
         * Writes the whole content to {@code file}, an empty temporary file that already exists; the caller forces it to
         * disk and renames it. A failure leaves the target as it was.
         */
        void writeTo(Path file) throws IOException;
    }

    /**
     * Has {@code writer} write a temporary sibling of {@code target} (a unique name starting with "." and the target's
     * name, ending in {@code suffix}), makes it rw-r--r-- (createTempFile's 0600 would hide results from other users),
     * forces it to disk (so a crash cannot leave the new name on an empty file), renames it over {@code target} and
     * forces the folder (so the rename itself survives a power loss where the file system allows); the temporary file is
     * gone either way.
     */
    public static void write(Path target, String suffix, FileWriter writer) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, "." + target.getFileName(), suffix);
        try {
            writer.writeTo(tmp);
            try {
                Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--"));
            } catch (UnsupportedOperationException e) {
                // not a POSIX file system: its defaults stand
            }
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            move(tmp, target);
            forceFolder(dir);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * Forces {@code dir}'s entries to disk (fsync of the folder), so a rename into it is durable. Some platforms cannot
     * open a folder as a channel (Windows): there the rename is as durable as the file system makes it.
     */
    public static void forceFolder(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            // not supported here; the file's own content was forced before the rename
        }
    }

    /** Renames {@code from} over {@code to}, atomically where the file system can. */
    public static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /**
     * Deletes the temporary files that {@link #write}s of {@code target} with {@code suffix} left when they were
     * interrupted (a kill during the write), each as large as the file; returns what it deleted.
     */
    public static List<Path> deleteLeftovers(Path target, String suffix) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        List<Path> deleted = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return deleted;
        }
        String prefix = "." + target.getFileName();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(f -> f.getFileName().toString().startsWith(prefix)
                    && f.getFileName().toString().endsWith(suffix)).toList()) {
                if (Files.deleteIfExists(f)) {
                    deleted.add(f);
                }
            }
        }
        return deleted;
    }
}
