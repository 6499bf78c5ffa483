package org.distill4j.examples;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Constructor;
import java.nio.file.FileSystemException;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Which failures the CLI prints as one line and which with their stack trace ({@link Main#isBug}), and the one line it
 * prints ({@link Main#ioMessage}), type by type. Mutation testing found each of these cases unchecked: a user-facing type
 * dropped from {@link Main#isUserError}, a bug type dropped from {@link Main#bugType}, the no-message rule, the cause
 * cycle guard, and most file-system reasons could go without a test failing.
 */
class CliErrorClassificationTest {

    /** Every user-facing exception type, at the top and as the cause under an I/O wrapper: one line, no trace. */
    @Test
    void everyUserFacingTypeIsOneLineAtTheTopAndAsACause() throws Exception {
        List<Exception> user = List.of(new IOException("m.zip: no such model file"),
                new UncheckedIOException("cannot write r.json: disk full", new IOException("disk full")),
                new IllegalArgumentException("m.zip: 3 classes, the data has 10"),
                new org.distill4j.examples.recipe.RecipeException("r.yaml:3:5: training.epochs: expected an integer"),
                new org.distill4j.store.StoreMismatchException("s.d4j already holds a store with other settings"),
                new org.distill4j.store.StoreFormatException("s.d4j: chunk 3 checksum mismatch"),
                new org.distill4j.store.StoreBusyException("s.d4j is being written by another process"),
                new org.distill4j.checkpoint.CheckpointMismatchException("run/distill.ckpt was started with other settings"),
                new RunFolder.InUseException("run is in use by another run"),
                unavailableBackend(), unavailableEngine(),
                new org.distill4j.data.FashionMnist.NotFoundException("no Fashion-MNIST found"),
                new java.util.concurrent.CancellationException("labeling s.d4j was cancelled"),
                new InterruptedException("interrupted while labeling"));
        for (Exception e : user) {
            assertTrue(Main.isUserError(e), e.getClass().getName());
            assertFalse(Main.isBug(e), "at the top: " + e);
            assertFalse(Main.bugType(e), "as a cause: " + e);
            assertFalse(Main.isBug(new IOException("cannot read m.zip: " + e.getMessage(), e)), "under an IOException: " + e);
        }
    }

    /** Each programming-error type under a user-type wrapper keeps its trace: the wrapper does not explain it. */
    @Test
    void everyBugTypeUnderAUserWrapperKeepsItsTrace() {
        List<Throwable> bugs = List.of(new AssertionError("x"), new OutOfMemoryError("Java heap space"), new NullPointerException("x"),
                new ClassCastException("x"), new ArrayIndexOutOfBoundsException(3), new ArithmeticException("/ by zero"),
                new IllegalStateException("store writer is closed"), new UnsupportedOperationException("x"),
                new ArrayStoreException("x"), new java.util.ConcurrentModificationException("x"),
                new java.util.NoSuchElementException("x"), new RuntimeException("Op [matmul] execution failed"));
        for (Throwable bug : bugs) {
            assertTrue(Main.bugType(bug), bug.toString());
            assertTrue(Main.isBug(new IllegalArgumentException("bad model file m.zip", bug)), "under an IllegalArgumentException: " + bug);
            assertTrue(Main.isBug(new IOException("cannot read m.zip", new IOException("reader failed", bug))), "two levels down: " + bug);
        }
        // a RuntimeException subclass no list names is no bug type as a cause (only RuntimeException itself, as ND4J throws)
        assertFalse(Main.bugType(new java.util.MissingResourceException("x", "C", "k")));
        assertFalse(Main.isBug(new IOException("cannot read m.zip", new java.util.MissingResourceException("x", "C", "k"))));
    }

    /** An exception no list names, at the top, is a bug: only known user-input failures are one line. */
    @Test
    void anUnknownTypeAtTheTopIsABug() {
        assertTrue(Main.isBug(new Exception("a checked exception no command expects")));
        assertTrue(Main.isBug(new SecurityException("access denied by the security manager")));
        assertTrue(Main.isBug(new java.util.MissingResourceException("missing resource", "C", "k")));
    }

    /** No message, or a blank one, says nothing to a user: a bug, whatever its type; a file-system error names its file. */
    @Test
    void anExceptionWithoutAMessageIsABugExceptAFileSystemError() {
        assertTrue(Main.isBug(new IOException((String) null)));
        assertTrue(Main.isBug(new IllegalArgumentException("  ")));
        assertTrue(Main.isBug(new org.distill4j.store.StoreFormatException("")));
        FileSystemException noMessage = new java.nio.file.AccessDeniedException(null);
        assertEquals(null, noMessage.getMessage());
        assertFalse(Main.isBug(noMessage), "a file-system error is told by its type (ioMessage says it in words)");
        assertFalse(Main.isBug(new java.nio.file.NoSuchFileException("/r/x")));
    }

    /** A cause chain that loops back on itself ends (a user error), instead of walking forever. */
    @Test
    void aCauseCycleEnds() {
        IOException a = new IOException("cannot read m.zip");
        IOException b = new IOException("reader failed", a);
        a.initCause(b);
        assertFalse(assertTimeoutPreemptively(Duration.ofSeconds(20), () -> Main.isBug(a)));
        IllegalStateException bug = new IllegalStateException("closed");
        IOException c = new IOException("cannot read m.zip");
        IOException d = new IOException("reader failed", bug);
        c.initCause(new IOException("again", d));
        assertTrue(assertTimeoutPreemptively(Duration.ofSeconds(20), () -> Main.isBug(c)), "a bug down the chain is still found");
    }

    /** A file diagnosed as not a model ends the walk: what the reader threw on the way (a bug type) is explained. */
    @Test
    void aFileThatIsNotAModelEndsTheWalk() {
        Exception e = new IOException("cannot load m.zip", new ModelFiles.NotAModelException("m.zip is not a DL4J model: it is an empty zip",
                new NullPointerException("x")));
        assertFalse(Main.isBug(e));
        assertTrue(Main.isBug(new IOException("cannot load m.zip", new IOException("m.zip", new NullPointerException("x")))),
                "the same chain without the diagnosis is a bug");
    }

    /** Each file-system reason in words, a two-file error names both, and what has no message shows its type's name. */
    @Test
    void theOneLineOfAnIoFailure() {
        assertEquals("/r/x: no such file or folder", Main.ioMessage(new java.nio.file.NoSuchFileException("/r/x")));
        assertEquals("/r/x: permission denied", Main.ioMessage(new java.nio.file.AccessDeniedException("/r/x")));
        assertEquals("/r/x: already exists", Main.ioMessage(new java.nio.file.FileAlreadyExistsException("/r/x")));
        assertEquals("/r/x: not a folder", Main.ioMessage(new java.nio.file.NotDirectoryException("/r/x")));
        assertEquals("/r/x: the folder is not empty", Main.ioMessage(new java.nio.file.DirectoryNotEmptyException("/r/x")));
        assertEquals("/r/x: not a symbolic link", Main.ioMessage(new java.nio.file.NotLinkException("/r/x")));
        assertEquals("/r/x: a loop of symbolic links", Main.ioMessage(new java.nio.file.FileSystemLoopException("/r/x")));
        assertEquals("/r/x: cannot be used", Main.ioMessage(new FileSystemException("/r/x")));
        assertEquals("/r/a -> /r/b: Directory not empty", Main.ioMessage(new FileSystemException("/r/a", "/r/b", "Directory not empty")));
        assertEquals("/r/a -> /r/b: already exists", Main.ioMessage(new java.nio.file.FileAlreadyExistsException("/r/a", "/r/b", null)));
        // new UncheckedIOException(null, cause) has no message of its own: the cause's
        assertEquals("disk full", Main.ioMessage(new UncheckedIOException(null, new IOException("disk full"))));
        assertEquals("IOException", Main.ioMessage(new IOException((String) null)));
        assertEquals("IllegalStateException", Main.ioMessage(new IllegalStateException()));
    }

    /** Made as Backends makes it (its constructor is the library's own). */
    private static Exception unavailableBackend() throws Exception {
        Constructor<org.distill4j.backend.Backends.UnavailableBackendException> c = org.distill4j.backend.Backends.UnavailableBackendException.class
                .getDeclaredConstructor(String.class, String.class, org.distill4j.backend.Availability.class, List.class);
        c.setAccessible(true);
        return c.newInstance("cuda", "-Ddistill.backend=cuda", org.distill4j.backend.Availability.unavailable("no CUDA runtime"), List.of("cpu"));
    }

    private static Exception unavailableEngine() throws Exception {
        Constructor<org.distill4j.train.StepEngines.UnavailableEngineException> c = org.distill4j.train.StepEngines.UnavailableEngineException.class
                .getDeclaredConstructor(String.class, String.class, List.class);
        c.setAccessible(true);
        return c.newInstance("cuda-mlp", "-Ddistill.engine=cuda-mlp", List.of("no CUDA runtime"));
    }
}
