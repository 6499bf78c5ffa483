package org.distill4j.store;

import org.distill4j.data.Dataset;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.distill4j.store.SoftTargetStoreTest.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Another writer of the same store finishes (renames its {@code .partial} to the store's name) after this writer found
 * neither the store nor a {@code .partial}, and before it created its own: this writer must refuse, as it refuses a
 * store that was there before, and leave the complete store whole. Otherwise its finish renames its own store over it.
 * The store lands from the test hook that wraps the new {@code .partial}'s channel: after the file is created, before it
 * is locked. Through the writer itself, and through the two jobs that open one: labeling and import.
 */
class StoreFinishedWhileOpeningTest {
    private static final Dataset DATA = LabelerTest.data();

    @AfterEach
    void resetHook() {
        StoreWriter.openHook = java.util.function.UnaryOperator.identity();
    }

    /** 7 classes, f32, 10 rows in chunks of 4, made by {@code teacher}. */
    private static StoreHeader header(String teacher) {
        return new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F32, StoreHeader.ValueKind.LOGITS, 7, 0, 10, 4, 1.0,
                "{\"teacher\":\"" + teacher + "\"}");
    }

    /** A complete store of teacher A's rows, written in a folder of its own; its bytes. */
    private static byte[] storeOfA(Path at) throws IOException {
        try (StoreWriter w = StoreWriter.open(at, header("A"))) {
            w.writeDense(values(1, 70), 10);
            w.finish();
        }
        return Files.readAllBytes(at);
    }

    /** Moves {@code done} to {@code path} the first time a writer creates or opens a {@code .partial}; counts the moves. */
    private static java.util.function.UnaryOperator<java.nio.channels.FileChannel> landOnce(Path done, Path path, AtomicInteger moves) {
        return ch -> {
            if (moves.get() == 0) {
                try {
                    Files.move(done, path); // a rename within the folder, as the other writer's finish does
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                moves.incrementAndGet();
            }
            return ch;
        };
    }

    private static void assertRefusedAndWhole(Path path, byte[] complete, RuntimeException e, AtomicInteger moves) throws IOException {
        assertEquals(1, moves.get(), "the store landed while the writer was opening");
        assertEquals(path + " already holds a complete store; delete it to write a new one", e.getMessage());
        assertArrayEquals(complete, Files.readAllBytes(path), "the complete store is left as it was");
        assertFalse(Files.exists(StoreWriter.partialPath(path)), "the .partial this writer created is removed");
        assertEquals(List.of(), SoftTargetStore.verify(path));
    }

    @Test
    void aWriterThatCreatedItsPartialAfterAnotherFinishedRefuses(@TempDir Path tmp) throws IOException {
        Path path = tmp.resolve("s.d4j");
        Path done = tmp.resolve("a").resolve("s.d4j");
        byte[] complete = storeOfA(done);
        AtomicInteger moves = new AtomicInteger();
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> StoreWriter.open(path, header("B"), landOnce(done, path, moves)));
        assertRefusedAndWhole(path, complete, e, moves);
        try (SoftTargetStore s = SoftTargetStore.open(path)) {
            assertEquals("A", StoredTeacher.teacherId(s.header().provenance()));
        }
    }

    @Test
    void aLabelingThatOpensItsStoreAsAnotherFinishesRefuses(@TempDir Path tmp) throws IOException {
        Path path = tmp.resolve("l.d4j");
        Path done = tmp.resolve("a").resolve("l.d4j");
        // another teacher's labeling of the same data, finished elsewhere, lands at path
        Labeler.label(LabelerTest.scaled(0.5, "other", "other-weights"), DATA, done, LabelerTest.OPTIONS, null);
        byte[] complete = Files.readAllBytes(done);
        AtomicInteger moves = new AtomicInteger();
        StoreWriter.openHook = landOnce(done, path, moves);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Labeler.label(new LabelerTest.SlowTeacher(0), DATA, path, LabelerTest.OPTIONS, null));
        assertRefusedAndWhole(path, complete, e, moves);
    }

    @Test
    void anImportThatOpensItsStoreAsAnotherFinishesRefuses(@TempDir Path tmp) throws IOException {
        Path path = tmp.resolve("i.d4j");
        Path done = tmp.resolve("a").resolve("i.d4j");
        StoreImport.Options o = StoreImport.Options.defaults().withCodec(ValueCodec.F32).withChunkRows(16);
        Path other = NpyArrayTest.writeF32(tmp.resolve("other.npy"), values(2, DATA.size() * 7), DATA.size(), 7);
        StoreImport.dense(other, StoreImport.Values.LOGITS, DATA, done, o, null);
        byte[] complete = Files.readAllBytes(done);
        Path npy = NpyArrayTest.writeF32(tmp.resolve("z.npy"), values(3, DATA.size() * 7), DATA.size(), 7);
        AtomicInteger moves = new AtomicInteger();
        StoreWriter.openHook = landOnce(done, path, moves);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> StoreImport.dense(npy, StoreImport.Values.LOGITS, DATA, path, o, null));
        assertRefusedAndWhole(path, complete, e, moves);
        assertTrue(Files.exists(npy));
    }
}
