package org.distill4j.examples;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A run's hold on its output folder: an exclusive lock on {@code OUT/.distill.lock} for as long as the run lasts (an fcntl
 * lock on Linux, which the operating system releases when the process ends, however it ends), so two runs on one folder
 * never mix their files: the second is refused before it touches anything. The lock file itself stays (deleting it would
 * let a third run lock a new file beside a second run's hold on the old one), except in a folder the hold made and the run
 * left with nothing else in it (a run refused or failed before writing): that folder goes, lock file and all.
 */
public final class RunFolder implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RunFolder.class);
    /** The lock file's name in the run folder. */
    public static final String LOCK_FILE = ".distill.lock";

    /**
     * The lock files this process holds, by real path. Checked before the lock file is opened: on Linux (fcntl locks) closing
     * any channel of a file releases every lock the process holds on it, so a refused second attempt in this process, once
     * its channel closed, would silently drop the first run's hold and let another process take the folder.
     */
    private static final java.util.Set<Path> HELD = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private final FileChannel channel;
    private final Path held;
    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

    /** The folder when this hold made it (null when it was there before): removed at close if the run left only the lock. */
    private final Path created;

    private RunFolder(FileChannel channel, Path held, Path created) {
        this.channel = channel;
        this.held = held;
        this.created = created;
    }

    /**
     * Locks {@code dir} (made if absent) for one run, or refuses: another run, in this process or another, holds it. Where
     * the file system cannot lock (some network mounts), it warns and goes on without the guard.
     *
     * @throws InUseException when another run holds the folder; nothing in it was changed
     */
    public static RunFolder lock(Path dir) throws IOException {
        Path made = Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS) ? null : dir;
        try {
            Files.createDirectories(dir);
        } catch (java.nio.file.FileSystemException e) { // a file in the way, no permission, a read-only file system
            Path file = fileInTheWay(dir);
            throw new NotAFolderException("--out " + dir + ": cannot create the folder: " + (file != null ? file
                    + " is a file, not a folder; give --out a path in a folder" : Main.ioMessage(e)));
        }
        Path file = dir.resolve(LOCK_FILE);
        Path key = dir.toRealPath().resolve(LOCK_FILE);
        if (!HELD.add(key)) { // a run in this process holds it: refused without opening (and closing) the lock file
            throw inUse(dir);
        }
        try {
            FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock lock;
            try {
                lock = ch.tryLock();
            } catch (OverlappingFileLockException e) { // other code in this process holds it (not a RunFolder)
                lock = null;
            } catch (IOException e) {
                LOG.warn("cannot lock {} ({}); a second run on {} at the same time would not be noticed", file, e.toString(), dir);
                return new RunFolder(ch, key, made);
            }
            if (lock == null) {
                ch.close();
                throw inUse(dir);
            }
            return new RunFolder(ch, key, made);
        } catch (IOException | RuntimeException e) {
            HELD.remove(key);
            throw e;
        }
    }

    /**
     * The file that keeps {@code dir} from being a folder: {@code dir} itself or the nearest of its parents that exists,
     * when that is not a folder; null when the nearest existing one is a folder (or none exists).
     */
    static Path fileInTheWay(Path dir) {
        for (Path p = dir; p != null; p = p.getParent()) {
            if (Files.exists(p)) {
                return Files.isDirectory(p) ? null : p;
            }
        }
        return null;
    }

    private static InUseException inUse(Path dir) {
        return new InUseException(dir + " is in use by another run (a distill run or demo with this --out, in this process or "
                + "another, holds " + LOCK_FILE + " there); wait for it to finish, or give another --out");
    }

    /** The report files a run writes into its folder, beside results.json (written last) and the row models. */
    static final java.util.List<String> OUTPUTS = java.util.List.of("provenance.json", "report.html", "metrics.csv", "curves.png",
            "accuracy.png");
    /** The names of the row models a run saves ({@code Demo.fileName(row) + ".zip"}): teachers, students, distilled rows. */
    private static final String ROW_MODEL_NAME =
            "(teacher(-[0-9]+)?|student-alone|student-distilled|distilled-[a-z0-9-]+)(-seed-(minus-)?[0-9]+)?\\.zip";
    private static final java.util.regex.Pattern ROW_MODEL = java.util.regex.Pattern.compile(ROW_MODEL_NAME);
    /**
     * The temporary files of this folder's saves (AtomicFiles: "." + the target's name + random digits + ".tmp", a plot's
     * ".tmp.png"), left when a save was interrupted.
     */
    private static final java.util.regex.Pattern LEFTOVER = java.util.regex.Pattern.compile("\\.("
            + java.util.stream.Stream.concat(java.util.stream.Stream.of("results.json"), OUTPUTS.stream())
                    .map(java.util.regex.Pattern::quote).collect(java.util.stream.Collectors.joining("|"))
            + "|" + ROW_MODEL_NAME + ")[0-9]+\\.tmp(\\.png)?");

    /**
     * Deletes the temporary files that interrupted saves of this folder's outputs left (a model's as large as the model);
     * only names the run itself makes. Safe while the run holds the folder: no other run writes them.
     */
    static java.util.List<Path> deleteLeftovers(Path dir) throws IOException {
        java.util.List<Path> deleted = new java.util.ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return deleted;
        }
        try (java.util.stream.Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(f -> LEFTOVER.matcher(f.getFileName().toString()).matches()).sorted().toList()) {
                if (Files.isRegularFile(f, java.nio.file.LinkOption.NOFOLLOW_LINKS) && Files.deleteIfExists(f)) {
                    deleted.add(f);
                }
            }
        }
        return deleted;
    }

    /**
     * Deletes what a previous run wrote into {@code dir} (results.json first, so the folder stops claiming a completed run
     * at once; then provenance.json, the report files and the row models), except the files in {@code keep} (the run's own
     * inputs: a teacher model, --save-teacher, a store, wherever they are); returns what it deleted. For a run that starts
     * over: a folder it leaves, completed or not, holds this run's files only.
     */
    static java.util.List<Path> deletePreviousOutputs(Path dir, java.util.Collection<Path> keep) throws IOException {
        java.util.List<Path> deleted = new java.util.ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return deleted;
        }
        java.util.List<Path> candidates = new java.util.ArrayList<>();
        candidates.add(dir.resolve("results.json"));
        OUTPUTS.forEach(f -> candidates.add(dir.resolve(f)));
        try (java.util.stream.Stream<Path> files = Files.list(dir)) {
            files.filter(f -> ROW_MODEL.matcher(f.getFileName().toString()).matches()).sorted().forEach(candidates::add);
        }
        for (Path f : candidates) {
            if (Files.isRegularFile(f) && keep.stream().noneMatch(k -> same(k, f)) && Files.deleteIfExists(f)) {
                deleted.add(f);
            }
        }
        return deleted;
    }

    private static boolean same(Path a, Path b) {
        if (a == null) {
            return false;
        }
        try {
            return a.toAbsolutePath().normalize().equals(b.toAbsolutePath().normalize()) || Files.exists(a) && Files.isSameFile(a, b);
        } catch (IOException e) {
            return true; // cannot tell: keep it
        }
    }

    /** Releases the folder. */
    @Override
    public void close() throws IOException {
        if (!closed.compareAndSet(false, true)) {
            return; // closed already: the folder may be another hold's by now
        }
        boolean remove = false;
        try {
            // a folder this run made and left as it found it (a run refused or failed before writing anything): the folder
            // goes too, so no empty folder holding only the lock file stays behind. The lock file is deleted while still
            // held; a run that locks a new one after is on a folder no run holds
            if (created != null) {
                try (java.util.stream.Stream<Path> files = Files.list(created)) {
                    remove = files.map(f -> f.getFileName().toString()).toList().equals(java.util.List.of(LOCK_FILE));
                } catch (IOException e) {
                    remove = false;
                }
                if (remove) {
                    Files.deleteIfExists(created.resolve(LOCK_FILE));
                }
            }
        } finally {
            try {
                channel.close(); // releases the lock
            } finally {
                HELD.remove(held);
            }
        }
        if (remove) {
            try {
                Files.deleteIfExists(created);
            } catch (java.nio.file.DirectoryNotEmptyException e) {
                // another run has begun in it since: its folder now
            }
        }
    }

    /** The output folder cannot be made (a file is in the way, no permission): a path to change, nothing was written. */
    public static final class NotAFolderException extends IOException {
        private static final long serialVersionUID = 1L;

        NotAFolderException(String message) {
            super(message);
        }
    }

    /** Another run holds the folder: a setting to change (another --out) or a wait, not a failure of this run. */
    public static final class InUseException extends IllegalStateException {
        private static final long serialVersionUID = 1L;

        InUseException(String message) {
            super(message);
        }
    }
}
