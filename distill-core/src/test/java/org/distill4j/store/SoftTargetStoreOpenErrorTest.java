package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Permission;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@link SoftTargetStore#open} opens the file, then reads its header on a thread of its own. Whatever ends the open
 * early, an Error too (the JVM's {@code OutOfMemoryError: unable to create native thread} when that thread cannot
 * start), the file is closed before the failure reaches the caller: a long-running job that retries must not leak a
 * descriptor per attempt.
 */
class SoftTargetStoreOpenErrorTest {

    /** How many of this process's descriptors are open on {@code p} (Linux's /proc). */
    private static long descriptorsOn(Path p) throws IOException {
        Path real = p.toRealPath();
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).equals(real);
                } catch (IOException | UnsupportedOperationException e) {
                    return false; // closed meanwhile, or not a link
                }
            }).count();
        }
    }

    /** Refuses to let one given thread create threads, with the Error the JVM throws when it cannot start one. */
    private static final class NoThreadsFor extends SecurityManager {
        private final Thread refused;

        NoThreadsFor(Thread refused) {
            this.refused = refused;
        }

        @Override
        public void checkAccess(ThreadGroup g) {
            if (Thread.currentThread() == refused) {
                throw new OutOfMemoryError("unable to create native thread (test)");
            }
        }

        @Override
        public void checkPermission(Permission perm) {
        }

        @Override
        public void checkPermission(Permission perm, Object context) {
        }
    }

    @Test
    @SuppressWarnings("removal")
    void anErrorWhileOpeningClosesTheFile(@TempDir Path tmp) throws Exception {
        assumeTrue(Files.isDirectory(Path.of("/proc/self/fd")), "counts descriptors through Linux's /proc");
        assumeTrue(Runtime.version().feature() < 18, "installs a SecurityManager (refused by default from JDK 18 on)");
        Path p = tmp.resolve("s.d4j");
        try (StoreWriter w = StoreWriter.open(p, SoftTargetStoreTest.dense(ValueCodec.F32, 3, 4, 2))) {
            w.writeDense(SoftTargetStoreTest.values(1, 12), 4);
            w.finish();
        }
        SoftTargetStore.open(p).close(); // every class the open needs is loaded before the Error is armed
        assertEquals(0, descriptorsOn(p));
        NoThreadsFor sm = new NoThreadsFor(Thread.currentThread());
        OutOfMemoryError e;
        System.setSecurityManager(sm);
        try {
            e = assertThrows(OutOfMemoryError.class, () -> SoftTargetStore.open(p));
        } finally {
            System.setSecurityManager(null);
        }
        assertEquals("unable to create native thread (test)", e.getMessage());
        assertEquals(0, descriptorsOn(p), "the file is closed when the open fails with an Error");
        try (SoftTargetStore s = SoftTargetStore.open(p)) { // and the store opens as before
            assertEquals(4L, s.rows());
        }
    }
}
