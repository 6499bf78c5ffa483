package org.distill4j.internal;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A write that fails leaves the old file whole and no temporary file; leftovers are found by their names only. */
class AtomicFilesTest {

    @Test
    void aWriteReplacesTheFileWholeAndReadableByOthers(@TempDir Path tmp) throws IOException {
        Path target = tmp.resolve("sub/dir/result.bin"); // the directories are made
        AtomicFiles.write(target, ".tmp", f -> Files.write(f, new byte[]{1, 2, 3}));
        AtomicFiles.write(target, ".tmp", f -> Files.write(f, new byte[]{4, 5}));
        assertArrayEquals(new byte[]{4, 5}, Files.readAllBytes(target));
        assertEquals("rw-r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(target)));
        try (var files = Files.list(target.getParent())) {
            assertEquals(List.of(target), files.toList(), "no temporary file is left");
        }
    }

    @Test
    void aWriterThatFailsLeavesTheOldFileAndNoTemporaryFile(@TempDir Path tmp) throws IOException {
        Path target = tmp.resolve("state.ckpt");
        Files.write(target, new byte[]{9, 8, 7});
        IOException boom = new IOException("disk full");
        IOException e = assertThrows(IOException.class, () -> AtomicFiles.write(target, ".tmp", f -> {
            Files.write(f, new byte[1000]); // half written
            throw boom;
        }));
        assertSame(boom, e);
        RuntimeException bug = new IllegalStateException("writer bug");
        assertSame(bug, assertThrows(IllegalStateException.class, () -> AtomicFiles.write(target, ".tmp", f -> {
            Files.write(f, new byte[10]);
            throw bug;
        })));
        assertArrayEquals(new byte[]{9, 8, 7}, Files.readAllBytes(target), "the old file is whole");
        try (var files = Files.list(tmp)) {
            assertEquals(List.of(target), files.toList(), "the temporary files are gone");
        }
    }

    @Test
    void leftoversAreTheTemporaryNamesOfThatTargetOnly(@TempDir Path tmp) throws IOException {
        Path target = tmp.resolve("distill.ckpt");
        Files.write(target, new byte[]{1});
        Path leftover = Files.write(tmp.resolve(".distill.ckpt8123.tmp"), new byte[5]);
        List<Path> keep = List.of(Files.write(tmp.resolve(".distill.ckpt8123.part"), new byte[1]),
                Files.write(tmp.resolve(".other.ckpt1.tmp"), new byte[1]), Files.write(tmp.resolve("distill.ckpt.tmp"), new byte[1]));
        assertEquals(List.of(leftover), AtomicFiles.deleteLeftovers(target, ".tmp"));
        assertTrue(Files.exists(target));
        for (Path p : keep) {
            assertTrue(Files.exists(p), p + " is not a leftover of distill.ckpt");
        }
        assertEquals(List.of(), AtomicFiles.deleteLeftovers(tmp.resolve("absent/distill.ckpt"), ".tmp"));
    }
}
