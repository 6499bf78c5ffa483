package org.distill4j.train;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.distill4j.student.Dl4jStudent;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Cancelling a run by interrupting its thread, as a service that runs jobs on a pool does ({@code Future.cancel(true)}):
 * the run stops before its next batch with a {@link CancellationException}, the thread's interrupt status stays set,
 * the last checkpoint stays whole and a later run resumes from it as from any other interruption.
 */
class DistillerCancellationTest {

    @BeforeAll
    static void setUp() {
        DistillerCheckpointTest.trainTeacher();
    }

    @AfterEach
    void clearInterrupt() {
        Thread.interrupted(); // a failed assertion must not leave the test thread interrupted for the next test
    }

    /** Interrupts the running thread after the given batch (what Thread.interrupt from another thread does then). */
    private static TrainingListener interruptAfter(int epoch, int batch, List<Integer> seen) {
        return new TrainingListener() {
            @Override
            public void batchFinished(int e, int b, int batches, long samples, long elapsedNanos, double loss) {
                seen.add(e * batches + b);
                if (e == epoch && b == batch) {
                    Thread.currentThread().interrupt();
                }
            }
        };
    }

    @Test
    void anInterruptStopsTheRunBeforeTheNextBatchAndStaysSet() {
        List<Integer> seen = new ArrayList<>();
        CancellationException e = assertThrows(CancellationException.class, () -> DistillerCheckpointTest.run(
                Dl4jStudent.of(DistillerCheckpointTest.studentNet()), null, interruptAfter(0, 1, seen)).build().run());
        assertTrue(Thread.interrupted(), "the interrupt status is kept for the caller");
        assertEquals(List.of(0, 1), seen, "no batch trained after the interrupt");
        assertTrue(e.getMessage().contains("epoch 1") && e.getMessage().contains("batch 3"),
                "the message says where the run stopped: " + e.getMessage());
    }

    @Test
    void aThreadInterruptedBeforeTheRunTrainsNothingAndWritesNoCheckpoint(@TempDir Path tmp) {
        Checkpoints c = Checkpoints.in(tmp.resolve("ckpt"));
        List<Integer> seen = new ArrayList<>();
        Thread.currentThread().interrupt();
        assertThrows(CancellationException.class, () -> DistillerCheckpointTest.run(
                Dl4jStudent.of(DistillerCheckpointTest.studentNet()), c, interruptAfter(-1, -1, seen)).build().run());
        assertTrue(Thread.interrupted(), "the interrupt status is kept for the caller");
        assertEquals(List.of(), seen);
        assertFalse(Files.exists(c.file()));
    }

    /**
     * With checkpoints at every step, an interrupt is a cancellation (not "cannot save the checkpoint": a save under an
     * interrupt closed its file channel), the checkpoint of the last batch stays whole, and the resumed run ends as an
     * uninterrupted one does, bit for bit.
     */
    @Test
    void anInterruptedRunKeepsItsLastCheckpointAndResumesExactly(@TempDir Path tmp) {
        MultiLayerNetwork whole = DistillerCheckpointTest.studentNet();
        DistillResult expected = DistillerCheckpointTest.run(Dl4jStudent.of(whole), null, null).build().run();

        Checkpoints c = Checkpoints.in(tmp.resolve("ckpt")).everySteps(1);
        List<Integer> seen = new ArrayList<>();
        CancellationException e = assertThrows(CancellationException.class, () -> DistillerCheckpointTest.run(
                Dl4jStudent.of(DistillerCheckpointTest.studentNet()), c, interruptAfter(1, 2, seen)).build().run());
        assertTrue(Thread.interrupted(), "the interrupt status is kept for the caller");
        assertEquals(7, seen.get(seen.size() - 1), "stopped after epoch 2's third batch: " + seen);
        assertTrue(Files.exists(c.file()), "the last checkpoint is kept: " + e);

        List<Integer> resumedBatches = new ArrayList<>();
        MultiLayerNetwork resumedNet = DistillerCheckpointTest.studentNet();
        DistillResult resumed = DistillerCheckpointTest.run(Dl4jStudent.of(resumedNet), c, new TrainingListener() {
            @Override
            public void batchFinished(int ep, int b, int batches, long samples, long elapsedNanos, double loss) {
                resumedBatches.add(ep * batches + b);
            }
        }).build().run();
        // the interrupt came before the save after batch 7, so the last checkpoint is the one after batch 6
        assertEquals(7, resumedBatches.get(0), "the resumed run goes on after the last batch saved");
        DistillerCheckpointTest.assertSameRun(expected, whole, resumed, resumedNet);
    }

    /** A Dl4jStudent whose thread is interrupted while its state is written (an interrupt arriving during a save). */
    private static final class InterruptedWhileSaving extends org.distill4j.testing.ForwardingStudent
            implements org.distill4j.checkpoint.Checkpointable {
        private final Dl4jStudent student;
        private int saves;
        private final int interruptAtSave;

        InterruptedWhileSaving(Dl4jStudent inner, int interruptAtSave) {
            super(inner);
            this.student = inner;
            this.interruptAtSave = interruptAtSave;
        }

        @Override
        public void writeState(java.io.DataOutputStream out) throws java.io.IOException {
            if (++saves == interruptAtSave) {
                Thread.currentThread().interrupt();
            }
            student.writeState(out);
        }

        @Override
        public Restore readState(java.io.DataInputStream in) throws java.io.IOException {
            return student.readState(in);
        }
    }

    /**
     * An interrupt that arrives while a checkpoint is being written closes the file's channel: that is a cancellation too
     * (it was "cannot save the checkpoint ...: null"), and the previous checkpoint is kept whole.
     */
    @Test
    void anInterruptDuringASaveIsACancellationAndKeepsThePreviousCheckpoint(@TempDir Path tmp) throws Exception {
        Checkpoints c = Checkpoints.in(tmp.resolve("ckpt")).everySteps(2);
        InterruptedWhileSaving student = new InterruptedWhileSaving(Dl4jStudent.of(DistillerCheckpointTest.studentNet()), 2);
        CancellationException e = assertThrows(CancellationException.class,
                () -> DistillerCheckpointTest.run(student, c, null).build().run());
        assertTrue(Thread.interrupted(), "the interrupt status is kept for the caller");
        assertInstanceOf(java.nio.channels.ClosedByInterruptException.class, e.getCause(), e.toString());
        assertTrue(e.getMessage().contains(c.file().toString()), e.getMessage());
        try (var files = Files.list(c.dir())) {
            assertEquals(List.of(c.file()), files.toList(), "the first save is kept and the cut save's temporary file is gone");
        }
        List<Integer> resumedBatches = new ArrayList<>();
        DistillerCheckpointTest.run(Dl4jStudent.of(DistillerCheckpointTest.studentNet()), c, new TrainingListener() {
            @Override
            public void batchFinished(int ep, int b, int batches, long samples, long elapsedNanos, double loss) {
                resumedBatches.add(ep * batches + b);
            }
        }).build().run();
        assertEquals(2, resumedBatches.get(0), "resumed from the first save, after 2 batches");
    }

    /** The real thing: another thread interrupts a long run; it ends promptly, with the interrupt status still set. */
    @Test
    void anInterruptFromAnotherThreadEndsALongRunPromptly() throws Exception {
        CountDownLatch started = new CountDownLatch(3);
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        AtomicBoolean stillInterrupted = new AtomicBoolean();
        AtomicBoolean finished = new AtomicBoolean();
        AtomicBoolean abort = new AtomicBoolean(); // ends the run should the interrupt not
        Thread job = new Thread(() -> {
            try {
                Distiller.Builder b = DistillerCheckpointTest.run(Dl4jStudent.of(DistillerCheckpointTest.studentNet()), null,
                        new TrainingListener() {
                            @Override
                            public void batchFinished(int e, int bt, int batches, long samples, long elapsedNanos, double loss) {
                                started.countDown();
                                if (abort.get()) {
                                    throw new IllegalStateException("not cancelled by the interrupt");
                                }
                            }
                        });
                b.epochs(100_000).build().run(); // hours of training, were it not cancelled
                finished.set(true);
            } catch (Throwable e) {
                thrown.set(e);
                stillInterrupted.set(Thread.currentThread().isInterrupted());
            }
        }, "distill-job");
        job.start();
        assertTrue(started.await(60, TimeUnit.SECONDS), "the run started");
        job.interrupt();
        job.join(TimeUnit.SECONDS.toMillis(30));
        boolean alive = job.isAlive();
        if (alive) {
            abort.set(true); // not to leave a run of 100,000 epochs behind; the assertion below fails the test
            job.join();
        }
        assertFalse(alive, "the run ended within 30 s of the interrupt");
        assertFalse(finished.get());
        assertInstanceOf(CancellationException.class, thrown.get());
        assertTrue(stillInterrupted.get(), "the interrupt status is kept");
    }
}
