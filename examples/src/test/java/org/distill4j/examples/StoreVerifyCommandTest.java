package org.distill4j.examples;

import org.distill4j.store.StoreHeader;
import org.distill4j.store.StoreWriter;
import org.distill4j.store.ValueCodec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code distill store verify}: every problem of a store (a damaged chunk, bad values, a truncated file, a corrupt header),
 * one line each, then a summary that counts problems, not chunks; exit code 1 when there is any. A small store written
 * here (3 classes, 10 rows in chunks of 4), no teacher.
 */
class StoreVerifyCommandTest extends CliCommandTest {
    private static StoreHeader header() {
        return new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F32, StoreHeader.ValueKind.LOGITS, 3, 0, 10, 4, 1.0,
                "{\"teacher\":\"test\"}");
    }

    private static Path store(Path p) throws Exception {
        StoreHeader h = header();
        float[] v = new float[10 * 3];
        for (int i = 0; i < v.length; i++) {
            v[i] = i * 0.5f - 3;
        }
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeDense(v, 10);
            w.finish();
        }
        return p;
    }

    @Test
    void aGoodStoreIsOkWithItsChunksAndRows(@TempDir Path tmp) throws Exception {
        Path p = store(tmp.resolve("s.d4j"));
        assertEquals(0, run("store", "verify", p.toString()), err());
        assertEquals(p + ": OK, 3 chunks, 10 rows\n", out());
        assertEquals("", err());
    }

    /** A flipped byte in chunk 1: its problem, then "1 problem found in FILE" (not "1 of 3 chunks are corrupt"); exit 1. */
    @Test
    void aDamagedChunkIsNamedAndCountedAsAProblem(@TempDir Path tmp) throws Exception {
        Path p = store(tmp.resolve("s.d4j"));
        byte[] bytes = Files.readAllBytes(p);
        bytes[(int) header().chunkOffset(1) + 5] ^= 0x01;
        Files.write(p, bytes);
        assertEquals(1, run("store", "verify", p.toString()), err());
        String[] lines = err().split("\n");
        assertEquals(2, lines.length, err());
        assertEquals(p + ": checksum mismatch in chunk 1 (rows 4 to 7): the file is corrupt", lines[0]);
        assertEquals("1 problem found in " + p, lines[1]);
        assertEquals("", out());
    }

    /**
     * A truncated store, or one whose header is corrupt, cannot be opened: verify reports that as one problem naming the
     * file, with the same summary and exit code as a damaged chunk (no "distill store verify:" line of its own, no stack trace).
     */
    @Test
    void aTruncatedStoreOrACorruptHeaderIsOneProblem(@TempDir Path tmp) throws Exception {
        Path p = store(tmp.resolve("s.d4j"));
        byte[] good = Files.readAllBytes(p);
        Files.write(p, Arrays.copyOf(good, good.length - 30));
        assertEquals(1, run("store", "verify", p.toString()), err());
        assertEquals(p + ": truncated: " + (good.length - 30) + " bytes, a complete store of 10 rows has " + good.length + "\n"
                + "1 problem found in " + p + "\n", err());

        byte[] header = good.clone();
        header[60] ^= 0x20; // a byte of the provenance
        Files.write(p, header);
        assertEquals(1, run("store", "verify", p.toString()), err());
        assertEquals(p + ": header checksum mismatch: the header is corrupt\n1 problem found in " + p + "\n", err());
    }

    /** Two damaged chunks: both named, then "2 problems found in FILE". */
    @Test
    void everyProblemIsPrintedThenTheirNumber(@TempDir Path tmp) throws Exception {
        Path p = store(tmp.resolve("s.d4j"));
        byte[] bytes = Files.readAllBytes(p);
        StoreHeader h = header();
        bytes[(int) h.chunkOffset(0) + 1] ^= 0x40;
        bytes[(int) h.chunkOffset(2) + 2] ^= 0x40;
        Files.write(p, bytes);
        assertEquals(1, run("store", "verify", p.toString()), err());
        String[] lines = err().split("\n");
        assertEquals(3, lines.length, err());
        assertEquals(p + ": checksum mismatch in chunk 0 (rows 0 to 3): the file is corrupt", lines[0]);
        assertEquals(p + ": checksum mismatch in chunk 2 (rows 8 to 9): the file is corrupt", lines[1]);
        assertEquals("2 problems found in " + p, lines[2]);
    }
}
