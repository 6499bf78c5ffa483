package org.distill4j.store;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.TeacherValues;
import org.distill4j.teacher.Teacher;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.CancellationException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A labeling job cancelled by interrupting its thread stops before its next teacher call with a
 * {@link CancellationException} (not an I/O error advising to free disk space), keeps the thread's interrupt status, and
 * leaves its {@code .partial} for the same call to resume into the store an uninterrupted run writes.
 */
class LabelerCancellationTest {
    private static final int ROWS = 300;
    private static final int D = 13;
    private static final int V = 7;

    @AfterEach
    void clearInterrupt() {
        Thread.interrupted();
    }

    private static Dataset data() {
        Random r = new Random(3);
        float[] x = new float[ROWS * D];
        int[] y = new int[ROWS];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < ROWS; i++) {
            y[i] = r.nextInt(V);
        }
        return new Dataset("rows", x, D, y, V);
    }

    /** A teacher of fixed logits that interrupts its own thread at call {@code interruptAt} (0: never). */
    private static final class Interrupting implements Teacher {
        final int interruptAt;
        int calls;

        Interrupting(int interruptAt) {
            this.interruptAt = interruptAt;
        }

        @Override
        public int classes() {
            return V;
        }

        @Override
        public TeacherValues values() {
            return TeacherValues.LOGITS;
        }

        @Override
        public float[] outputs(Batch b) {
            if (++calls == interruptAt) {
                Thread.currentThread().interrupt();
            }
            float[] out = new float[b.size() * V];
            for (int r = 0; r < b.size(); r++) {
                for (int c = 0; c < V; c++) {
                    out[r * V + c] = 2 * b.features()[r * D + c] - 0.5f * b.features()[r * D + c + 3];
                }
            }
            return out;
        }

        @Override
        public String describe() {
            return "fixed teacher";
        }
    }

    private static final Labeler.Options OPTIONS = new Labeler.Options(0, ValueCodec.F32, 32, 16, "fixed");

    @Test
    void anInterruptStopsLabelingBeforeTheNextTeacherCallAndTheSameCallResumes(@TempDir Path tmp) throws Exception {
        Path whole = tmp.resolve("whole.d4j");
        Labeler.label(new Interrupting(0), data(), whole, OPTIONS, null);

        Path out = tmp.resolve("s.d4j");
        Interrupting t = new Interrupting(3);
        // before: the teacher was called until the next chunk's write failed with "cannot write chunk 1
        // (ClosedByInterruptException) ... once there is room (free disk space, or raise the file size limit)"
        CancellationException e = assertThrows(CancellationException.class, () -> Labeler.label(t, data(), out, OPTIONS, null));
        assertTrue(Thread.interrupted(), "the interrupt status is kept for the caller");
        assertEquals(3, t.calls, "no teacher call after the interrupt");
        assertTrue(e.getMessage().contains(out.toString()), e.getMessage());
        assertTrue(Files.exists(StoreWriter.partialPath(out)), "the partial store is kept for a resume");
        assertFalse(Files.exists(out));

        Labeler.Result r = Labeler.label(new Interrupting(0), data(), out, OPTIONS, null);
        assertEquals(32, r.resumedFrom(), "resumed after the one complete chunk (the interrupt came in chunk 1's first batch)");
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(out), "resumed = uninterrupted, byte for byte");
    }

    @Test
    void aThreadInterruptedBeforeLabelingCallsNoTeacherAndWritesNothing(@TempDir Path tmp) {
        Path out = tmp.resolve("s.d4j");
        Interrupting t = new Interrupting(0);
        Thread.currentThread().interrupt();
        assertThrows(CancellationException.class, () -> Labeler.label(t, data(), out, OPTIONS, null));
        assertTrue(Thread.interrupted(), "the interrupt status is kept for the caller");
        assertEquals(0, t.calls);
        assertFalse(Files.exists(StoreWriter.partialPath(out)));
    }
}
