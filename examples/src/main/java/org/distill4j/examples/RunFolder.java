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
 * let a third run lock a new file beside a second run's hold on the old one).
 */
public final class RunFolder implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RunFolder.class);
    /** The lock file's name in the run folder. */
    public static final String LOCK_FILE = ".distill.lock";

    private final FileChannel channel;

    private RunFolder(FileChannel channel) {
        this.channel = channel;
    }

    /**
     * Locks {@code dir} (made if absent) for one run, or refuses: another run, in this process or another, holds it. Where
     * the file system cannot lock (some network mounts), it warns and goes on without the guard.
     *
     * @throws InUseException when another run holds the folder; nothing in it was changed
     */
    public static RunFolder lock(Path dir) throws IOException {
        Files.createDirectories(dir);
        Path file = dir.resolve(LOCK_FILE);
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock lock;
        try {
            lock = ch.tryLock();
        } catch (OverlappingFileLockException e) { // a run in this process holds it
            lock = null;
        } catch (IOException e) {
            LOG.warn("cannot lock {} ({}); a second run on {} at the same time would not be noticed", file, e.toString(), dir);
            return new RunFolder(ch);
        }
        if (lock == null) {
            ch.close();
            throw new InUseException(dir + " is in use by another run (a distill run or demo with this --out, in this process or "
                    + "another, holds " + LOCK_FILE + " there); wait for it to finish, or give another --out");
        }
        return new RunFolder(ch);
    }

    /** Releases the folder. */
    @Override
    public void close() throws IOException {
        channel.close(); // releases the lock
    }

    /** Another run holds the folder: a setting to change (another --out) or a wait, not a failure of this run. */
    public static final class InUseException extends IllegalStateException {
        private static final long serialVersionUID = 1L;

        InUseException(String message) {
            super(message);
        }
    }
}
