package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.distill4j.store.SoftTargetStoreTest.dense;
import static org.distill4j.store.SoftTargetStoreTest.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The writer's file operations: writes that take fewer bytes than given, and what each failure says and leaves. */
class StoreWriterIoTest {

    /** Positional writes that take at most {@code most} bytes each, as a channel may. */
    private static final class ShortWriteChannel extends DelegatingChannel {
        private final int most;
        int writes;

        ShortWriteChannel(FileChannel in, int most) {
            super(in);
            this.most = most;
        }

        @Override
        public int write(ByteBuffer src, long position) throws IOException {
            writes++;
            int n = in.write(src.slice(src.position(), Math.min(src.remaining(), most)), position);
            src.position(src.position() + n);
            return n;
        }
    }

    /** The writer writes on until every byte of a chunk and of the footer is there, each at its own offset. */
    @Test
    void shortWritesGiveTheSameFile(@TempDir Path tmp) throws IOException {
        StoreHeader h = dense(ValueCodec.BF16, 13, 11, 4);
        float[] all = values(51, 13 * 11);
        Path whole = tmp.resolve("whole.d4j");
        try (StoreWriter w = StoreWriter.open(whole, h)) {
            w.writeDense(all, 11);
            w.finish();
        }
        Path p = tmp.resolve("short.d4j");
        ShortWriteChannel[] ch = {null};
        try (StoreWriter w = StoreWriter.open(p, h, c -> ch[0] = new ShortWriteChannel(c, 7))) {
            w.writeDense(all, 11);
            w.finish();
        }
        assertTrue(ch[0].writes > (h.completeSize() - h.dataOffset()) / 7, "the writes were short: " + ch[0].writes);
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(p));
    }

    /** A failed header write closes the file it opened (and so lets go of its lock): the same process opens the store again. */
    @Test
    void aFailedHeaderWriteLetsGoOfTheFile(@TempDir Path tmp) throws IOException {
        StoreHeader h = dense(ValueCodec.F32, 3, 4, 4);
        Path p = tmp.resolve("h.d4j");
        FailingWriteChannel[] ch = {null};
        assertThrows(IOException.class, () -> StoreWriter.open(p, h, c -> {
            ch[0] = new FailingWriteChannel(c);
            ch[0].failAfter(5);
            return ch[0];
        }));
        assertFalse(ch[0].isOpen(), "the .partial's channel is closed");
        float[] all = values(52, 12);
        try (StoreWriter w = StoreWriter.open(p, h)) { // a torn header: started over
            assertEquals(0, w.rowsWritten());
            w.writeDense(all, 4);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            assertArrayEquals(all, s.dense(new int[]{0, 1, 2, 3}), 0f);
        }
    }

    /** A chunk write that fails with an unchecked exception is the failure every later call names, as the writer got it. */
    @Test
    void anUncheckedWriteFailureIsNamedByLaterCalls(@TempDir Path tmp) throws IOException {
        StoreHeader h = dense(ValueCodec.F32, 3, 8, 4);
        Path p = tmp.resolve("u.d4j");
        UncheckedIOException boom = new UncheckedIOException("mapped file gone", new IOException("Input/output error"));
        boolean[] fail = {false};
        try (StoreWriter w = StoreWriter.open(p, h, c -> new DelegatingChannel(c) {
            @Override
            public int write(ByteBuffer src, long position) throws IOException {
                if (fail[0]) {
                    throw boom;
                }
                return super.write(src, position);
            }
        })) {
            w.writeDense(values(53, 12), 4);
            fail[0] = true;
            assertSame(boom, assertThrows(UncheckedIOException.class, () -> w.writeDense(values(54, 12), 4)));
            fail[0] = false;
            IllegalStateException later = assertThrows(IllegalStateException.class, () -> w.writeDense(values(55, 3), 1));
            assertTrue(later.getMessage().startsWith(StoreWriter.partialPath(p) + ": an earlier write failed (" + boom + ")"),
                    later.getMessage());
            assertSame(boom, later.getCause());
            // refused as failed before anything else is looked at: rows that would not fit, or that are bad
            later = assertThrows(IllegalStateException.class, () -> w.writeDense(values(55, 3 * 5), 5));
            assertTrue(later.getMessage().contains("an earlier write failed"), later.getMessage());
            later = assertThrows(IllegalStateException.class, () -> w.writeDense(new float[]{Float.NaN, 1, 1}, 1));
            assertTrue(later.getMessage().contains("an earlier write failed"), later.getMessage());
        }
        try (StoreWriter again = StoreWriter.open(p, h)) {
            assertEquals(4, again.rowsWritten(), "the chunk written before the failure is kept");
        }
    }

    /** Cutting the torn chunk on resume can fail (a read-only file system): that names the file and the row it cut after. */
    @Test
    void aFailedCutOfTheTornChunkIsNamed(@TempDir Path tmp) throws IOException {
        StoreHeader h = dense(ValueCodec.F32, 3, 20, 4);
        Path p = tmp.resolve("c.d4j");
        StoreWriter w = StoreWriter.open(p, h);
        w.writeDense(values(56, 3 * 10), 10);
        w.close();
        IOException e = assertThrows(IOException.class, () -> StoreWriter.open(p, h, c -> new DelegatingChannel(c) {
            @Override
            public FileChannel truncate(long size) throws IOException {
                throw new FileSystemException(StoreWriter.partialPath(p).toString(), null, "Read-only file system");
            }
        }));
        assertTrue(e.getMessage().startsWith(StoreWriter.partialPath(p) + ": cannot cut the torn chunk after row 8 (Read-only file "
                + "system); it is kept"), e.getMessage());
        try (StoreWriter again = StoreWriter.open(p, h)) {
            assertEquals(8, again.rowsWritten(), "the refused open let go of the file");
        }
    }

    /** A folder that cannot be created for another reason than a file in the way gives the system's reason, once. */
    @Test
    void aFolderThatCannotBeCreatedGivesTheReason(@TempDir Path tmp) {
        Path p = tmp.resolve("x".repeat(300)).resolve("s.d4j"); // a name longer than a file system allows
        IOException e = assertThrows(IOException.class, () -> StoreWriter.open(p, dense(ValueCodec.F32, 3, 4, 4)));
        assertEquals("cannot create folder " + p.getParent() + " for store " + p + " (File name too long)", e.getMessage());
    }

    @Test
    void theReasonOfAFailureIsItsOwnWords() {
        assertEquals("Disk quota exceeded", StoreWriter.reason(new FileSystemException("/a/b", null, "Disk quota exceeded")));
        assertEquals("/a/b", StoreWriter.reason(new FileSystemException("/a/b")), "no reason: the message");
        assertEquals("short write", StoreWriter.reason(new IOException("short write")));
        assertEquals("IOException", StoreWriter.reason(new IOException()), "no message: the kind of failure");
    }
}
