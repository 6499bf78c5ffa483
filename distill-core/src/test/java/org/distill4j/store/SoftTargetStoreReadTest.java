package org.distill4j.store;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The reader's refusals of its own arguments, and of files it cannot open, each with what is wrong; nothing left open. */
class SoftTargetStoreReadTest {

    private static Path store(Path tmp, String name) throws IOException {
        Path p = tmp.resolve(name);
        try (StoreWriter w = StoreWriter.open(p, SoftTargetStoreTest.dense(ValueCodec.F32, 5, 9, 4))) {
            w.writeDense(SoftTargetStoreTest.values(71, 45), 9);
            w.finish();
        }
        return p;
    }

    @Test
    void argumentsOutOfRangeAreNamed(@TempDir Path tmp) throws IOException {
        Path p = store(tmp, "s.d4j");
        for (long window : new long[]{0, -1}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SoftTargetStore.open(p, window));
            assertEquals("window bytes must be in [1, 2147483647], got " + window, e.getMessage());
        }
        try (SoftTargetStore s = SoftTargetStore.open(p, 1)) { // one byte: a window per chunk
            assertEquals(3, s.windows());
            float[] want = SoftTargetStoreTest.values(71, 45);
            assertArrayEquals(Arrays.copyOfRange(want, 40, 45), s.dense(new int[]{8}), 0f);
            for (int row : new int[]{-1, -5, 9, Integer.MAX_VALUE}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.dense(new int[]{0, row}));
                assertEquals(p + ": row " + row + " is out of range; the store has 9 rows", e.getMessage());
            }
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.topK(new int[]{0}));
            assertEquals(p + " holds dense rows; read them with dense", e.getMessage());
        }
        Path t = tmp.resolve("t.d4j");
        try (StoreWriter w = StoreWriter.open(t, SoftTargetStoreTest.topk(40, 5, 2, 4))) {
            w.writeTopK(new int[]{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, SoftTargetStoreTest.logProbs(72, 2, 5), 2);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(t)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.dense(new int[]{0}));
            assertEquals(t + " holds top-k rows (k = 5); read them with topK", e.getMessage());
        }
    }

    @Test
    void bytesAfterTheFooterAreCounted(@TempDir Path tmp) throws IOException {
        Path p = store(tmp, "s.d4j");
        Files.write(p, new byte[]{1, 2, 3, 4, 5}, java.nio.file.StandardOpenOption.APPEND);
        StoreFormatException e = assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
        assertEquals(p + ": 5 unexpected bytes after the footer", e.getMessage());
    }

    /** How many of this process's file descriptors are open on {@code p} (Linux). */
    private static long openOn(Path p) throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).equals(p.toAbsolutePath());
                } catch (IOException e) {
                    return false; // closed meanwhile (the listing's own descriptor)
                }
            }).count();
        }
    }

    /** A file refused when it is opened (truncated, trailing bytes, no footer, corrupt header) is closed again. */
    @Test
    void aRefusedFileIsClosed(@TempDir Path tmp) throws IOException {
        Assumptions.assumeTrue(Files.isDirectory(Path.of("/proc/self/fd")), "needs /proc/self/fd");
        Path p = store(tmp, "s.d4j");
        byte[] good = Files.readAllBytes(p);
        byte[] footer = good.clone();
        footer[footer.length - 1] ^= 1;
        byte[] header = good.clone();
        header[60] ^= 1;
        for (byte[] bad : List.of(Arrays.copyOf(good, good.length - 1), Arrays.copyOf(good, good.length + 1), footer, header,
                Arrays.copyOf(good, 40))) {
            Files.write(p, bad);
            for (int i = 0; i < 3; i++) {
                assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
            }
            assertEquals(0, openOn(p), "no descriptor left open on " + p);
        }
        Files.write(p, good);
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            assertEquals(1, openOn(p), "an open store holds its file");
        }
        assertEquals(0, openOn(p));
    }

    /** verify(Path) of something that is not a readable file says so, naming it, instead of throwing. */
    @Test
    void verifyOfAFolderSaysItCannotBeRead(@TempDir Path tmp) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("a-folder.d4j"));
        List<String> problems = SoftTargetStore.verify(dir);
        assertEquals(1, problems.size(), problems.toString());
        assertTrue(problems.get(0).startsWith(dir + ": cannot be read: "), problems.get(0));
    }
}
