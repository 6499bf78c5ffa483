package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;

import static org.distill4j.store.SoftTargetStoreTest.dense;
import static org.distill4j.store.SoftTargetStoreTest.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The edges of a resume (store-format.md, "Writing, crash safety, resumption"): which {@code .partial} is started over,
 * which is refused and kept, which chunks are kept, and what the file holds when the writer is opened again.
 */
class StoreWriterResumeTest {
    /** 7 classes, f32, 10 rows in chunks of 4: chunk 2 holds two rows. */
    private static StoreHeader header(String provenance) {
        return new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F32, StoreHeader.ValueKind.LOGITS, 7, 0, 10, 4, 1.0, provenance);
    }

    private static final float[] ALL = values(41, 7 * 10);

    private static byte[] uninterrupted(Path tmp, StoreHeader h) throws IOException {
        Path whole = tmp.resolve("whole-" + h.provenance().length() + ".d4j");
        try (StoreWriter w = StoreWriter.open(whole, h)) {
            w.writeDense(ALL, 10);
            w.finish();
        }
        return Files.readAllBytes(whole);
    }

    /** Writes rows 0 to 8 (chunks 0 and 1 on disk, row 8 buffered) and stops as a crash would. */
    private static void interrupt(Path p, StoreHeader h) throws IOException {
        StoreWriter w = StoreWriter.open(p, h);
        w.writeDense(Arrays.copyOf(ALL, 9 * 7), 9);
        w.close();
    }

    private static void finishFrom(Path p, StoreHeader h, long expectedRows) throws IOException {
        try (StoreWriter w = StoreWriter.open(p, h)) {
            assertEquals(expectedRows, w.rowsWritten());
            int from = (int) w.rowsWritten();
            if (from < 10) {
                w.writeDense(Arrays.copyOfRange(ALL, from * 7, 10 * 7), 10 - from);
            }
            w.finish();
        }
    }

    /** Everything after the last good chunk is cut when the writer opens: the file ends where the next chunk starts. */
    @Test
    void aTornChunkIsCutAtOpen(@TempDir Path tmp) throws IOException {
        StoreHeader h = header(SoftTargetStoreTest.PROV);
        Path p = tmp.resolve("s.d4j");
        Path partial = StoreWriter.partialPath(p);
        interrupt(p, h);
        try (FileChannel ch = FileChannel.open(partial, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[]{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}), ch.size()); // part of chunk 2
        }
        try (StoreWriter w = StoreWriter.open(p, h)) {
            assertEquals(8, w.rowsWritten());
            assertEquals(h.chunkOffset(2), Files.size(partial), "the torn bytes of chunk 2 are gone");
            assertEquals(h, w.header());
        }
        // and a partial without a good chunk is cut to the header
        Files.delete(partial);
        StoreWriter w = StoreWriter.open(p, h);
        w.writeDense(Arrays.copyOf(ALL, 3 * 7), 3);
        w.close();
        try (FileChannel ch = FileChannel.open(partial, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[]{1, 2, 3}), h.dataOffset());
        }
        try (StoreWriter again = StoreWriter.open(p, h)) {
            assertEquals(0, again.rowsWritten());
            assertEquals(h.dataOffset(), Files.size(partial));
        }
        finishFrom(p, h, 0);
        assertArrayEquals(uninterrupted(tmp, h), Files.readAllBytes(p));
    }

    /**
     * A chunk whose checksum fails (a bit flipped on disk; its values still valid floats) ends the good chunks: it is
     * written again, not kept, and the finished store equals an uninterrupted run's.
     */
    @Test
    void aChunkWithAWrongChecksumIsWrittenAgain(@TempDir Path tmp) throws IOException {
        StoreHeader h = header(SoftTargetStoreTest.PROV);
        Path p = tmp.resolve("s.d4j");
        Path partial = StoreWriter.partialPath(p);
        interrupt(p, h);
        long at = h.chunkOffset(1) + 8; // the low mantissa byte of row 4, class 2
        byte[] bytes = Files.readAllBytes(partial);
        bytes[(int) at] ^= 0x01;
        Files.write(partial, bytes);
        finishFrom(p, h, 4);
        assertArrayEquals(uninterrupted(tmp, h), Files.readAllBytes(p));
    }

    /**
     * A crash after the footer was written but before the rename leaves a complete {@code .partial}: opening it keeps
     * every chunk (the last one shorter than the others), and finishing gives the same file.
     */
    @Test
    void aPartialThatHoldsTheWholeStoreAndItsFooterResumesAtTheEnd(@TempDir Path tmp) throws IOException {
        StoreHeader h = header(SoftTargetStoreTest.PROV);
        byte[] want = uninterrupted(tmp, h);
        Path p = tmp.resolve("s.d4j");
        Files.write(StoreWriter.partialPath(p), want);
        try (StoreWriter w = StoreWriter.open(p, h)) {
            assertEquals(10, w.rowsWritten());
            assertEquals(h.completeSize() - StoreFooter.BYTES, Files.size(StoreWriter.partialPath(p)), "the footer is cut");
            w.finish();
        }
        assertArrayEquals(want, Files.readAllBytes(p));
    }

    /**
     * A second writer that opens the {@code .partial} while the first one finishes (renames it and lets go of its lock)
     * gets the lock on what is now the complete store: it stops, and the store keeps its footer.
     */
    @Test
    void aWriterThatGetsTheLockAfterTheFinishFindsTheCompleteStore(@TempDir Path tmp) throws IOException {
        StoreHeader h = header(SoftTargetStoreTest.PROV);
        Path p = tmp.resolve("s.d4j");
        StoreWriter first = StoreWriter.open(p, h);
        first.writeDense(ALL, 10);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> StoreWriter.open(p, h, ch -> {
            try {
                first.finish(); // between the second writer's open of the .partial and its lock
            } catch (IOException x) {
                throw new UncheckedIOException(x);
            }
            return ch;
        }));
        assertTrue(e.getMessage().startsWith(p + " already holds a complete store"), e.getMessage());
        assertArrayEquals(uninterrupted(tmp, h), Files.readAllBytes(p), "the complete store is left whole");
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            assertEquals(List.of(), s.verify());
        }
    }

    /** Provenances of 0 bytes and of the largest length a header may hold resume like any other. */
    @Test
    void theShortestAndTheLongestProvenanceResume(@TempDir Path tmp) throws IOException {
        String longest = "{\"teacher\":\"t\",\"description\":\"" + "d".repeat(StoreHeader.MAX_PROVENANCE_BYTES - 32) + "\"}";
        assertEquals(StoreHeader.MAX_PROVENANCE_BYTES, longest.length());
        for (String prov : new String[]{"", longest}) {
            StoreHeader h = header(prov);
            Path p = tmp.resolve("p" + prov.length() + ".d4j");
            interrupt(p, h);
            finishFrom(p, h, 8);
            assertArrayEquals(uninterrupted(tmp, h), Files.readAllBytes(p), "provenance of " + prov.length() + " bytes");
        }
    }

    /**
     * Only a partial shorter than its own header, and that starts like a version-1 store, is started over. At 52 bytes the
     * declared provenance length is there and must be valid; at 10 bytes the version is there and must be 1; a header
     * there whole (not padded yet) of another teacher is refused, not overwritten.
     */
    @Test
    void whereATornHeaderEndsAndARefusalBegins(@TempDir Path tmp) throws IOException {
        StoreHeader h = header(SoftTargetStoreTest.PROV);
        byte[] want = uninterrupted(tmp, h);
        Path p = tmp.resolve("s.d4j");
        Path partial = StoreWriter.partialPath(p);
        for (int cut : new int[]{8, 9, 10, 11}) {
            Files.write(partial, Arrays.copyOf(want, cut));
            finishFrom(p, h, 0);
            assertArrayEquals(want, Files.readAllBytes(p), "cut at " + cut);
            Files.delete(p);
        }

        byte[] version2 = Arrays.copyOf(want, 10);
        version2[8] = 2;
        byte[] badLength = Arrays.copyOf(want, StoreHeader.FIXED);
        ByteBuffer.wrap(badLength).order(ByteOrder.LITTLE_ENDIAN).putInt(StoreHeader.PROVENANCE_LENGTH_AT, -1);
        StoreHeader other = header("{\"teacher\":\"other\"}");
        byte[] otherHeader = Arrays.copyOf(uninterrupted(tmp, other), (int) StoreHeader.headerBytes(19));
        record Case(byte[] bytes, Class<? extends RuntimeException> type, String message) {
        }
        for (Case c : List.of(
                new Case(version2, StoreFormatException.class, partial + ": store format version 2, but this Distill4J writes version 1"),
                new Case(badLength, StoreFormatException.class, partial + ": corrupt header: it declares a provenance of -1 bytes"),
                new Case(otherHeader, StoreMismatchException.class, partial + " was started with different settings"))) {
            Files.write(partial, c.bytes());
            RuntimeException e = assertThrows(c.type(), () -> StoreWriter.open(p, h), c.message());
            assertTrue(e.getMessage().startsWith(c.message()), e.getMessage());
            assertArrayEquals(c.bytes(), Files.readAllBytes(partial), "kept: " + c.message());
        }
    }

    /**
     * {@link StoreWriter#goodChunks} reads each chunk fully; when the file ends before the size it was told (it should not:
     * the file is locked), the chunk that is not there is not good, whatever the buffer still holds of the one before.
     */
    @Test
    void aChunkThatIsNotThereIsNotGoodEvenWhenTheSizeSaysItIs(@TempDir Path tmp) throws IOException {
        // 12 rows in chunks of 4: chunk 2 is as long as chunk 1, whose bytes and CRC the buffer holds when chunk 2 is read
        StoreHeader h = new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F32, StoreHeader.ValueKind.LOGITS, 7, 0, 12, 4, 1.0,
                SoftTargetStoreTest.PROV);
        Path p = tmp.resolve("s.d4j");
        StoreWriter w = StoreWriter.open(p, h);
        w.writeDense(values(42, 8 * 7), 8);
        w.close();
        Path partial = StoreWriter.partialPath(p);
        assertEquals(h.chunkOffset(2), Files.size(partial));
        try (FileChannel ch = FileChannel.open(partial, StandardOpenOption.READ)) {
            assertEquals(2, StoreWriter.goodChunks(ch, h, ch.size()));
            assertEquals(2, StoreWriter.goodChunks(ch, h, h.completeSize()), "chunk 2 is told to be there, and is not");
        }
    }
}
