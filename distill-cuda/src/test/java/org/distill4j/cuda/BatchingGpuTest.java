package org.distill4j.cuda;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.TopKKd;
import org.distill4j.store.SoftTargetStore;
import org.distill4j.store.StoreHeader;
import org.distill4j.store.StoreWriter;
import org.distill4j.store.ValueCodec;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The batching core on a real GPU: pinned staging with the copy stream overlapping compute, stored top-k
 * and dense rows unpacked on the device (equal bit for bit to the Java reader), and topk-kd from device
 * rows equal to the CPU loss. Skipped, with the probe's reason, where there is no usable device.
 */
class BatchingGpuTest extends GpuTest {
    @Test
    void stagedBatchesArriveIntactWhileTheDeviceIsBusy() {
        int batches = 24;
        int words = 1 << 20; // 4 MiB a batch
        try (DeviceStager st = new DeviceStager(ctx, 2, 4L * words); DeviceBuffer sum = ctx.alloc(4L * words)) {
            DeviceStager.Batch next = st.stage(b -> fill(b, 0, words));
            for (int i = 0; i < batches; i++) {
                DeviceStager.Batch cur = next;
                int following = i + 1;
                if (following < batches) {
                    next = st.stage(b -> fill(b, following, words));
                }
                DeviceBuffer in = st.acquire(cur);
                ctx.copy(sum, in, 4L * words); // compute stream reads the batch
                st.release(cur);
                byte[] got = new byte[4 * words];
                ctx.download(sum, got);
                ByteBuffer g = ByteBuffer.wrap(got).order(ByteOrder.LITTLE_ENDIAN);
                for (int j = 0; j < words; j += 4099) {
                    assertEquals(i * 31 + j, g.getInt(4 * j), "batch " + i + " word " + j);
                }
            }
            assertThrows(IllegalArgumentException.class, () -> st.stage(b -> 4L * words + 1));
        }
    }

    @Test
    void aStagerClosedAfterItsContextIsHarmless() {
        DeviceContext c = DeviceContext.open(0);
        DeviceStager st = new DeviceStager(c, 2, 4096);
        c.close(); // the stager's streams, events and memory went with the context
        org.junit.jupiter.api.Assertions.assertDoesNotThrow(st::close);
        org.junit.jupiter.api.Assertions.assertDoesNotThrow(st::close);
    }

    /**
     * A stager's calls on the device take its context's lock, as every call on the context does (see
     * {@link DeviceContext}): a stage, acquire or release that waits for the context while another thread closes it (here
     * this thread holds the lock and closes the context) then finds the stager closed with its context and says so,
     * instead of queuing on the context's destroyed stream. Its later close is harmless.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"stage", "acquire", "release"})
    void aStagerCallWaitsForItsContextAndFindsItClosed(String call) throws Exception {
        DeviceContext c = DeviceContext.open(0);
        AtomicReference<Throwable> failed = new AtomicReference<>();
        DeviceStager st = new DeviceStager(c, 2, 4096);
        try {
            DeviceStager.Batch b = st.stage(buf -> fill(buf, 3, 1024));
            if (call.equals("release")) {
                st.acquire(b);
            }
            Runnable r = switch (call) {
                case "stage" -> () -> st.stage(buf -> fill(buf, 4, 1024));
                case "acquire" -> () -> st.acquire(b);
                default -> () -> st.release(b);
            };
            Thread worker = daemon(call, r, failed);
            synchronized (c) { // what a call on the context holds
                worker.start();
                awaitState(worker, Thread.State.BLOCKED, call + " waits for its context's lock");
                c.close();
            }
            assertFinish(worker);
        } finally {
            c.close();
        }
        Throwable t = failed.get();
        assertRefusedAsClosed(t, "DeviceContext", c.describe().replaceAll(" \\(sm_.*", ""));
        assertDoesNotThrow(st::close);
        IllegalStateException after = assertThrows(IllegalStateException.class, () -> st.stage(buf -> 0));
        assertEquals(t.getMessage(), after.getMessage());
    }

    /**
     * A context closed by another thread while a stager's filler writes its pinned buffer waits for the fill: it would
     * otherwise free the pinned memory under the filler. The fill's batch is then refused (the stager closed with its
     * context), and the close goes on.
     */
    @Test
    void closingAContextWaitsForAFillInProgress() throws Exception {
        DeviceContext c = DeviceContext.open(0);
        DeviceStager st = new DeviceStager(c, 1, 4096);
        Gate gate = new Gate();
        AtomicBoolean closeReturned = new AtomicBoolean();
        AtomicReference<Throwable> stageFailed = new AtomicReference<>();
        AtomicReference<Throwable> closeFailed = new AtomicReference<>();
        Thread stager = daemon("stage", () -> st.stage(gate.filler(buf -> fillUnlessClosed(buf, closeReturned))), stageFailed);
        Thread closer = closer("close", c::close, closeReturned, closeFailed);
        try {
            stager.start();
            gate.awaitHeld();
            closer.start();
            awaitState(closer, Thread.State.WAITING, "the context's close waits for the fill");
            assertFalse(closeReturned.get());
        } finally {
            gate.release();
            assertFinish(stager, closer);
            c.close();
        }
        assertNull(closeFailed.get());
        assertRefusedAsClosed(stageFailed.get(), "DeviceContext");
        assertDoesNotThrow(st::close);
    }

    /**
     * A filler that closes its own stager is refused before anything changes: the close cannot wait for the fill (it runs
     * on the filling thread), so it would free the pinned buffer the filler still writes. The refusal leaves {@code stage}
     * as the filler's error, and the stager stages on as if that batch had never been tried.
     */
    @Test
    void aFillerThatClosesItsStagerIsRefusedAndTheStagerGoesOn() {
        try (DeviceStager st = new DeviceStager(ctx, 2, 4096)) {
            assertRefusedFromInsideAFiller(st, st::close, "DeviceStager.close called from inside its own filler");
            assertStagesIntact(ctx, st);
        }
    }

    /**
     * A filler that closes its stager's context is refused before anything changes, for the same reason: the context's
     * close would close the stager and free its pinned buffers under the filler. The context and the stager go on, and the
     * context's close after stage returns closes both.
     */
    @Test
    void aFillerThatClosesItsContextIsRefusedAndTheContextGoesOn() {
        DeviceContext c = DeviceContext.open(0);
        try {
            DeviceStager other = new DeviceStager(c, 1, 4096); // the context refuses whichever of its stagers fills
            DeviceStager st = new DeviceStager(c, 2, 4096);
            assertRefusedFromInsideAFiller(st, c::close, "DeviceContext.close called from inside the filler of one of its DeviceStagers");
            assertStagesIntact(c, st);
            assertStagesIntact(c, other);
            try (DeviceBuffer words = c.alloc(4L * 257)) { // the context's own calls work too
                c.fill32(words, 0x5eed, 257);
                byte[] got = new byte[4 * 257];
                c.download(words, got);
                assertEquals(0x5eed, ByteBuffer.wrap(got).order(ByteOrder.LITTLE_ENDIAN).getInt(4 * 256));
            }
            c.close();
            for (DeviceStager s : java.util.List.of(st, other)) {
                IllegalStateException closed = assertThrows(IllegalStateException.class, () -> s.stage(buf -> 0));
                assertTrue(closed.getMessage().contains("device stager is closed") && closed.getMessage().contains("DeviceContext"),
                        closed.getMessage());
                assertDoesNotThrow(s::close);
            }
        } finally {
            c.close();
        }
    }

    /**
     * A filler that stages on its own stager is refused: the inner stage would fill the same slot (the outer batch is not
     * staged yet), and its end would erase the record of the outer fill that both closes read, so a close from inside
     * the outer filler, or one on another thread, would free the pinned buffer under it. The stager goes on.
     */
    @Test
    void aStageFromInsideAFillerIsRefused() {
        try (DeviceStager st = new DeviceStager(ctx, 2, 4096)) {
            assertRefusedFromInsideAFiller(st, () -> st.stage(inner -> fill(inner, 6, 1024)),
                    "DeviceStager.stage called from inside its own filler");
            assertStagesIntact(ctx, st);
        }
    }

    /**
     * A stage on another thread while a fill is in progress is refused, for the same reason, and does not touch the
     * slot being filled: the batch of the fill in progress arrives whole.
     */
    @Test
    void aStageOnAnotherThreadDuringAFillIsRefused() throws Exception {
        try (DeviceStager st = new DeviceStager(ctx, 2, 4096)) {
            Gate gate = new Gate();
            AtomicReference<DeviceStager.Batch> staged = new AtomicReference<>();
            AtomicReference<Throwable> failed = new AtomicReference<>();
            Thread first = daemon("first filler", () -> staged.set(st.stage(gate.filler(buf -> fill(buf, 7, 1024)))), failed);
            first.start();
            try {
                gate.awaitHeld();
                assertStageRefusedWhileStaging(st, "first filler");
            } finally {
                gate.release();
                assertFinish(first);
            }
            assertFirstBatchWhole(st, staged, failed);
        }
    }

    /**
     * A context closed while its stager's own close, on another thread, waits for a fill waits too, until that close has
     * freed the stager's slots: it would otherwise free the stager's pinned buffers (its own) under the filler. Then
     * both closes return, and the fill's batch is refused.
     */
    @Test
    void closingAContextWhileItsStagerClosesWaitsForTheFill() throws Exception {
        DeviceContext c = DeviceContext.open(0);
        DeviceStager st = new DeviceStager(c, 1, 4096);
        Gate gate = new Gate();
        AtomicBoolean contextClosed = new AtomicBoolean();
        AtomicReference<Throwable> stageFailed = new AtomicReference<>();
        AtomicReference<Throwable> stagerCloseFailed = new AtomicReference<>();
        AtomicReference<Throwable> contextCloseFailed = new AtomicReference<>();
        Thread stager = daemon("stage", () -> st.stage(gate.filler(buf -> fillUnlessClosed(buf, contextClosed))), stageFailed);
        Thread stagerCloser = daemon("close stager", st::close, stagerCloseFailed);
        Thread contextCloser = closer("close context", c::close, contextClosed, contextCloseFailed);
        try {
            stager.start();
            gate.awaitHeld();
            stagerCloser.start();
            awaitState(stagerCloser, Thread.State.WAITING, "the stager's close waits for the fill");
            contextCloser.start();
            awaitState(contextCloser, Thread.State.WAITING, "the context's close waits for the stager's close");
            assertFalse(contextClosed.get());
        } finally {
            gate.release();
            assertFinish(stager, stagerCloser, contextCloser);
            c.close();
        }
        assertNull(stagerCloseFailed.get());
        assertNull(contextCloseFailed.get());
        assertRefusedAsClosed(stageFailed.get());
        assertDoesNotThrow(st::close);
    }

    /**
     * A close from inside a filler while another thread's close, of the context here, already waits for that fill returns
     * at once, as any second close does: that close frees nothing until the fill ends, so there is nothing to refuse (the
     * refusal said the stager or context "stays open", which was false). The fill's batch is then refused, the stager
     * being closed, and the first close returns.
     */
    @ParameterizedTest(name = "the filler closes its {0}")
    @CsvSource({"stager", "context"})
    void aCloseFromInsideAFillerWhileAnotherThreadClosesReturns(String closes) throws Exception {
        DeviceContext c = DeviceContext.open(0);
        DeviceStager st = new DeviceStager(c, 1, 4096);
        Gate gate = new Gate();
        AtomicBoolean contextClosed = new AtomicBoolean();
        AtomicBoolean contextClosedBeforeTheFillersClose = new AtomicBoolean(true);
        AtomicReference<Throwable> fillersClose = new AtomicReference<>();
        AtomicReference<Throwable> stageFailed = new AtomicReference<>();
        AtomicReference<Throwable> contextCloseFailed = new AtomicReference<>();
        Thread stager = daemon("stage", () -> st.stage(gate.filler(buf -> {
            try {
                if (closes.equals("stager")) {
                    st.close();
                } else {
                    c.close();
                }
            } catch (Throwable e) {
                fillersClose.set(e);
            }
            contextClosedBeforeTheFillersClose.set(contextClosed.get());
            return fillUnlessClosed(buf, contextClosed);
        })), stageFailed);
        Thread contextCloser = closer("close context", c::close, contextClosed, contextCloseFailed);
        try {
            stager.start();
            gate.awaitHeld();
            contextCloser.start();
            awaitState(contextCloser, Thread.State.WAITING, "the context's close waits for the fill");
        } finally {
            gate.release();
            assertFinish(stager, contextCloser);
            c.close();
        }
        assertNull(fillersClose.get(), () -> "the filler's close of its " + closes + " failed: " + fillersClose.get());
        assertFalse(contextClosedBeforeTheFillersClose.get(), "the context's close returned before the fill ended");
        assertNull(contextCloseFailed.get());
        assertRefusedAsClosed(stageFailed.get(), "DeviceContext");
        assertDoesNotThrow(st::close);
    }

    /**
     * One stage at a time covers the whole stage, not only its filler: a stage on another thread after the first one's
     * filler returned but before the ring counted its batch (here held while it queues the copy) would take the same slot
     * and overwrite the pinned buffer that copy reads. It is refused, naming the stage in progress, which then stages its
     * batch whole.
     */
    @Test
    void aStageWhileAnotherQueuesItsCopyIsRefused() throws Exception {
        Gate copyGate = new Gate();
        AtomicReference<Thread> held = new AtomicReference<>();
        try (DeviceStager st = new DeviceStager(ctx, 2, 4096, ops -> new StagingRing.Ops() {
            @Override
            public void waitCopied(int slot) {
                ops.waitCopied(slot);
            }

            @Override
            public ByteBuffer host(int slot) {
                return ops.host(slot);
            }

            @Override
            public void copy(int slot, long bytes) {
                if (Thread.currentThread() == held.get()) { // after its filler returned, before the copy is queued
                    copyGate.hold();
                }
                ops.copy(slot, bytes);
            }

            @Override
            public void acquire(int slot) {
                ops.acquire(slot);
            }

            @Override
            public void release(int slot) {
                ops.release(slot);
            }
        })) {
            AtomicReference<DeviceStager.Batch> staged = new AtomicReference<>();
            AtomicReference<Throwable> failed = new AtomicReference<>();
            Thread first = daemon("first stage", () -> staged.set(st.stage(buf -> fill(buf, 7, 1024))), failed);
            held.set(first);
            first.start();
            try {
                copyGate.awaitHeld("the first stage reaches its copy");
                assertStageRefusedWhileStaging(st, "first stage");
            } finally {
                copyGate.release();
                assertFinish(first);
            }
            assertFirstBatchWhole(st, staged, failed);
            DeviceStager.Batch next = st.stage(buf -> fill(buf, 10, 1024)); // the refused stage took no slot or number
            assertEquals(1, next.sequence());
            st.acquire(next);
            st.release(next);
        }
    }

    /**
     * A close waiting for a fill on another thread (the stager's own close, the context's close, and the context's close
     * waiting for the stager's own close, which waits for the fill) goes on waiting when it is interrupted, again and
     * again: it frees nothing while the filler writes. When the fill ends each close returns, with its thread's interrupt
     * flag set.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"stager", "context", "stager then context"})
    void aCloseWaitingForAFillWaitsOnThroughInterrupts(String closes) throws Exception {
        DeviceContext c = DeviceContext.open(0);
        DeviceStager st = new DeviceStager(c, 1, 4096);
        Gate gate = new Gate();
        AtomicBoolean aCloseReturned = new AtomicBoolean();
        AtomicReference<Throwable> stageFailed = new AtomicReference<>();
        AtomicReference<Throwable> closeFailed = new AtomicReference<>();
        Thread stager = daemon("stage", () -> st.stage(gate.filler(buf -> fillUnlessClosed(buf, aCloseReturned))), stageFailed);
        java.util.List<Thread> closers = new java.util.ArrayList<>();
        java.util.Map<String, Boolean> interruptedAfter = new java.util.concurrent.ConcurrentHashMap<>();
        for (String what : closes.split(" then ")) {
            Runnable close = what.equals("stager") ? st::close : c::close;
            closers.add(closer("close " + what, () -> {
                close.run();
                interruptedAfter.put(what, Thread.currentThread().isInterrupted());
            }, aCloseReturned, closeFailed));
        }
        try {
            stager.start();
            gate.awaitHeld();
            for (Thread t : closers) {
                t.start();
                awaitState(t, Thread.State.WAITING, t.getName() + " waits");
            }
            for (int round = 0; round < 3; round++) {
                for (Thread t : closers) {
                    t.interrupt();
                    awaitInterruptTaken(t);
                    assertFalse(aCloseReturned.get(), t.getName() + " returned during the fill after interrupt " + (round + 1));
                }
            }
        } finally {
            gate.release();
            assertFinish(stager);
            assertFinish(closers.toArray(new Thread[0]));
            c.close();
        }
        assertNull(closeFailed.get());
        for (String what : closes.split(" then ")) {
            assertEquals(Boolean.TRUE, interruptedAfter.get(what), "the interrupt flag of the " + what + "'s close after it returned");
        }
        assertRefusedAsClosed(stageFailed.get());
    }

    /**
     * Two fillers that close each other's stager (or each other's stager's context) would each wait for the other's fill
     * forever. A close from inside a filler that would wait for a fill on another thread is refused before anything
     * changes, so both fail their stage with that error, and both stagers (and contexts) stay open and usable.
     */
    @ParameterizedTest(name = "each filler closes the other's {0}")
    @CsvSource({"stager", "context"})
    void fillersClosingEachOthersStagersAreRefusedInsteadOfDeadlocking(String closes) throws Exception {
        boolean contexts = closes.equals("context");
        DeviceContext c1 = DeviceContext.open(0);
        DeviceContext c2 = contexts ? DeviceContext.open(0) : c1;
        DeviceStager a = new DeviceStager(c1, 1, 4096);
        DeviceStager b = new DeviceStager(c2, 1, 4096);
        CountDownLatch bothFilling = new CountDownLatch(2);
        CountDownLatch bothTried = new CountDownLatch(2); // both closes tried while both fills run
        AtomicReference<Throwable> aFailed = new AtomicReference<>();
        AtomicReference<Throwable> bFailed = new AtomicReference<>();
        Thread fillsA = daemon("fills A", () -> a.stage(buf -> closeDuringFill(contexts ? c2 : b, bothFilling, bothTried)), aFailed);
        Thread fillsB = daemon("fills B", () -> b.stage(buf -> closeDuringFill(contexts ? c1 : a, bothFilling, bothTried)), bFailed);
        fillsA.start();
        fillsB.start();
        assertFinish(fillsA, fillsB); // before the fix each waited for the other: the contexts are then left open
        String what = contexts ? "DeviceContext.close" : "DeviceStager.close";
        for (Throwable t : java.util.List.of(aFailed.get(), bFailed.get())) {
            assertTrue(t instanceof IllegalStateException && t.getMessage().contains(what + " called from inside a DeviceStager's filler")
                    && t.getMessage().contains("cannot wait for another stager's fill")
                    && t.getMessage().contains("after stage returns"), String.valueOf(t));
        }
        assertStagesIntact(c1, a);
        assertStagesIntact(c2, b);
        a.close();
        b.close();
        c1.close();
        c2.close();
    }

    /** A filler's close of {@code other} once both fills run; returns once both fillers tried, throwing what it threw. */
    private static long closeDuringFill(AutoCloseable other, CountDownLatch bothFilling, CountDownLatch bothTried) {
        RuntimeException failed = null;
        try {
            bothFilling.countDown();
            assertTrue(bothFilling.await(10, TimeUnit.SECONDS), "both fills run");
            other.close();
        } catch (RuntimeException e) {
            failed = e;
        } catch (Exception e) {
            failed = new IllegalStateException(e);
        }
        bothTried.countDown();
        try {
            assertTrue(bothTried.await(10, TimeUnit.SECONDS), "both fillers tried their close");
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
        if (failed != null) {
            throw failed;
        }
        return 0; // the close went through: write nothing into the pinned buffer it may have freed
    }

    /**
     * Stages two batches on {@code st} (two slots or one), each acquired and read back from the device whole: numbered
     * from 0, so a refused stage before them took no sequence number or slot.
     */
    private static void assertStagesIntact(DeviceContext c, DeviceStager st) {
        for (int n = 0; n < 2; n++) {
            int batch = 40 + n;
            DeviceStager.Batch b = st.stage(buf -> fill(buf, batch, 1024));
            assertEquals(n, b.sequence(), "sequence of the batch after the refused one");
            assertEquals(4096, b.bytes());
            assertReadsBack(c, st, b, batch, "batch " + batch + " ");
        }
    }

    /**
     * Acquires {@code b} on {@code st}, reads its 4096 bytes back from the device and releases it; they must be batch
     * {@code batch} as {@link #fill} writes it, each word's message starting with {@code where}.
     */
    private static void assertReadsBack(DeviceContext c, DeviceStager st, DeviceStager.Batch b, int batch, String where) {
        DeviceBuffer in = st.acquire(b);
        byte[] got = new byte[4096];
        c.download(in, got);
        st.release(b);
        ByteBuffer g = ByteBuffer.wrap(got).order(ByteOrder.LITTLE_ENDIAN);
        for (int j = 0; j < 1024; j++) {
            assertEquals(batch * 31 + j, g.getInt(4 * j), where + "word " + j);
        }
    }

    /**
     * A stage on {@code st} whose filler fills batch 5 and then runs {@code inFill} is refused with an error that says
     * {@code says} and to do it after stage returns.
     */
    private static void assertRefusedFromInsideAFiller(DeviceStager st, Runnable inFill, String says) {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> st.stage(buf -> {
            fill(buf, 5, 1024);
            inFill.run(); // nothing is written after it: on a close that freed the buffer the test fails, not the JVM
            return 4096;
        }));
        assertTrue(e.getMessage().contains(says) && e.getMessage().contains("after stage returns"), e.getMessage());
    }

    /**
     * A stage on {@code st} from this thread, while thread {@code other} is inside its own stage, is refused naming both
     * threads.
     */
    private static void assertStageRefusedWhileStaging(DeviceStager st, String other) {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> st.stage(buf -> fill(buf, 8, 1024)));
        assertTrue(e.getMessage().contains("DeviceStager.stage called on thread " + Thread.currentThread().getName()
                + " while another stage is in progress on thread " + other)
                && e.getMessage().contains("not thread-safe"), e.getMessage());
    }

    /** The stage that another stage was refused beside went through: batch 7, numbered 0, arrives whole. */
    private static void assertFirstBatchWhole(DeviceStager st, AtomicReference<DeviceStager.Batch> staged,
            AtomicReference<Throwable> failed) {
        assertNull(failed.get());
        DeviceStager.Batch b = staged.get();
        assertEquals(0, b.sequence());
        assertReadsBack(ctx, st, b, 7, "");
    }

    /** {@code t} is a stager's refusal because it is closed, its message naming each of {@code named} too. */
    private static void assertRefusedAsClosed(Throwable t, String... named) {
        boolean says = t instanceof IllegalStateException && t.getMessage().contains("device stager is closed");
        for (String n : named) {
            says = says && t.getMessage().contains(n);
        }
        assertTrue(says, String.valueOf(t));
    }

    /**
     * Fills batch 9 into {@code buf}, or nothing once {@code closed} says a close on another thread returned: without that
     * close's wait for the fill the pinned memory may be gone, and the test then fails on what the close did instead of
     * crashing the JVM here.
     */
    private static long fillUnlessClosed(ByteBuffer buf, AtomicBoolean closed) {
        return closed.get() ? 0 : fill(buf, 9, 1024);
    }

    /** A daemon thread that runs {@code close}, then sets {@code returned}. */
    private static Thread closer(String name, Runnable close, AtomicBoolean returned, AtomicReference<Throwable> failed) {
        return daemon(name, () -> {
            close.run();
            returned.set(true);
        }, failed);
    }

    /**
     * Holds a thread at one point (a fill, a copy) until the test releases it, so that the test acts on other threads
     * while that one is there: {@link #hold} (or a {@link #filler}) on the held thread, {@link #awaitHeld} and
     * {@link #release} on the test's, the release in a {@code finally} so that a failing test does not leave it held.
     */
    private static final class Gate {
        private final CountDownLatch held = new CountDownLatch(1);
        private final CountDownLatch go = new CountDownLatch(1);

        /** A filler that holds at the gate, then fills with {@code then}. */
        DeviceStager.Filler filler(DeviceStager.Filler then) {
            return buf -> {
                hold();
                return then.fill(buf);
            };
        }

        /** Says the calling thread is at the gate and waits for {@link #release}; an interrupt fails that thread's work. */
        void hold() {
            held.countDown();
            try {
                go.await();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        }

        /** Waits up to 10 s for a thread to be held at the gate. */
        void awaitHeld() throws InterruptedException {
            assertTrue(held.await(10, TimeUnit.SECONDS));
        }

        /** As {@link #awaitHeld()}, failing with {@code what}. */
        void awaitHeld(String what) throws InterruptedException {
            assertTrue(held.await(10, TimeUnit.SECONDS), what);
        }

        void release() {
            go.countDown();
        }
    }

    /** A missing context, filler or batch is refused naming what is missing, and the stager goes on. */
    @Test
    void aMissingContextFillerOrBatchIsNamed() {
        IllegalArgumentException noContext = assertThrows(IllegalArgumentException.class, () -> new DeviceStager(null, 2, 4096));
        assertTrue(noContext.getMessage().contains("DeviceContext"), noContext.getMessage());
        try (DeviceStager st = new DeviceStager(ctx, 1, 4096)) {
            IllegalArgumentException noFiller = assertThrows(IllegalArgumentException.class, () -> st.stage(null));
            assertTrue(noFiller.getMessage().contains("filler"), noFiller.getMessage());
            DeviceStager.Batch b = st.stage(buf -> fill(buf, 2, 1024));
            for (java.util.function.Consumer<DeviceStager.Batch> call : java.util.List.<java.util.function.Consumer<DeviceStager.Batch>>of(
                    st::acquire, st::release)) {
                IllegalArgumentException noBatch = assertThrows(IllegalArgumentException.class, () -> call.accept(null));
                assertTrue(noBatch.getMessage().contains("no batch"), noBatch.getMessage());
            }
            DeviceBuffer in = st.acquire(b);
            byte[] got = new byte[4096];
            ctx.download(in, got);
            assertEquals(2 * 31 + 1023, ByteBuffer.wrap(got).order(ByteOrder.LITTLE_ENDIAN).getInt(4 * 1023));
            st.release(b);
        }
    }

    /** Waits up to 10 s for {@code t} to reach {@code state}. */
    private static void awaitState(Thread t, Thread.State state, String what) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (t.getState() != state && t.isAlive() && System.nanoTime() < until) {
            Thread.sleep(1);
        }
        assertEquals(state, t.getState(), what);
    }

    /**
     * Waits up to 10 s until {@code t}, interrupted in a wait, has taken the interrupt (its flag cleared by the wait's
     * InterruptedException) and waits again.
     */
    private static void awaitInterruptTaken(Thread t) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while ((t.isInterrupted() || t.getState() != Thread.State.WAITING) && t.isAlive() && System.nanoTime() < until) {
            Thread.sleep(1);
        }
        assertTrue(t.isAlive(), t.getName() + " ended after an interrupt");
        assertFalse(t.isInterrupted(), t.getName() + " did not take the interrupt");
        assertEquals(Thread.State.WAITING, t.getState(), t.getName() + " waits again after an interrupt");
    }

    /** Joins {@code threads}, 20 s at most each; fails naming one still alive then. */
    private static void assertFinish(Thread... threads) throws InterruptedException {
        for (Thread t : threads) {
            t.join(20_000);
            assertFalse(t.isAlive(), () -> t.getName() + " did not finish (" + t.getState() + ")");
        }
    }

    private static Thread daemon(String name, Runnable r, AtomicReference<Throwable> failed) {
        Thread t = new Thread(() -> {
            try {
                r.run();
            } catch (Throwable e) {
                failed.compareAndSet(null, e);
            }
        }, name);
        t.setDaemon(true); // a stuck one must not keep the test JVM alive
        return t;
    }

    private static long fill(ByteBuffer b, int batch, int words) {
        for (int j = 0; j < words; j++) {
            b.putInt(4 * j, batch * 31 + j);
        }
        return 4L * words;
    }

    @ParameterizedTest(name = "V {0}, k {1}, {2}")
    @CsvSource({"10, 3, F16", "32000, 64, BF16", "152064, 64, F16", "70001, 17, F32"})
    void storedTopKRowsOnTheDeviceGiveTheCpuLoss(int vocab, int k, ValueCodec codec, @TempDir Path tmp) throws Exception {
        int rows = 101;
        Random rng = new Random(vocab + k);
        float[] teacher = Inputs.logits(rng, rows, vocab, 4.0);
        KernelInputs.TopK top = KernelInputs.topK(teacher, rows, vocab, k);
        Path p = tmp.resolve("topk.d4j");
        writeTopKStore(p, codec, vocab, k, rows, top.ids(), top.logProbs());
        TopKKd loss = new TopKKd(2.0, TopKKd.Tail.REST_BUCKET);
        try (SoftTargetStore store = SoftTargetStore.open(p); StoreBatches rowsOnDevice = new StoreBatches(ctx, store, 40, 2)) {
            int[][] batches = {{100, 0, 5, 5, 77}, range(10, 50), range(60, 97)};
            StoreBatches.Staged next = rowsOnDevice.stage(batches[0]);
            for (int i = 0; i < batches.length; i++) {
                StoreBatches.Staged cur = next;
                if (i + 1 < batches.length) {
                    next = rowsOnDevice.stage(batches[i + 1]);
                }
                int n = batches[i].length;
                SoftTargetStore.TopKRows want = store.topK(batches[i]);
                float[] s = Inputs.logits(rng, n, vocab, 4.0);
                int[] labels = Inputs.labels(rng, n, vocab);
                try (StoreBatches.TopK t = rowsOnDevice.topK(cur)) {
                    byte[] idBytes = new byte[4 * n * k];
                    ctx.download(t.ids(), idBytes);
                    int[] ids = new int[n * k];
                    ByteBuffer.wrap(idBytes).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(ids);
                    assertArrayEquals(want.ids(), ids, "batch " + i + " ids");
                    float[] grad = Inputs.poisoned(n * vocab);
                    LossResult r = backend.topKKd(loss, LogitBatch.ofLabels(n, vocab, s, labels), t, grad, 0.7f);
                    float[] cpuGrad = new float[n * vocab];
                    LossResult cpu = loss.compute(LogitBatch.ofTopK(n, vocab, s, want.ids(), want.logProbs(), k, labels), cpuGrad, 0.7f);
                    Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, "batch " + i);
                    Tolerances.assertKernelGradClose(KernelInputs.widen(cpuGrad), grad, Tolerances.KERNEL_F32_GRAD, "batch " + i + " gradient");
                }
            }
        }
    }

    /** A batch the topk kernel flags, with the teacher rows on the device: the error names the row and the logit. */
    @Test
    void aFlaggedRowOfStoredTopKIsNamed(@TempDir Path tmp) throws Exception {
        int rows = 8;
        int vocab = 10;
        int k = 3;
        Random rng = new Random(71);
        KernelInputs.TopK top = KernelInputs.topK(Inputs.logits(rng, rows, vocab, 2.0), rows, vocab, k);
        Path p = tmp.resolve("topk.d4j");
        writeTopKStore(p, ValueCodec.F32, vocab, k, rows, top.ids(), top.logProbs());
        try (SoftTargetStore store = SoftTargetStore.open(p); StoreBatches rowsOnDevice = new StoreBatches(ctx, store, rows, 1);
             StoreBatches.TopK t = rowsOnDevice.topK(rowsOnDevice.stage(range(0, rows)))) {
            float[] s = Inputs.logits(rng, rows, vocab, 2.0);
            s[5 * vocab + 7] = Float.NaN;
            LogitBatch student = LogitBatch.ofLabels(rows, vocab, s, Inputs.labels(rng, rows, vocab));
            TopKKd loss = new TopKKd(2.0, TopKKd.Tail.REST_BUCKET);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> backend.topKKd(loss, student, t, new float[rows * vocab], 1f));
            assertEquals("topk-kd: student logit at row 5, class 7 is NaN; expected a finite number", e.getMessage());
            // in chunks of 2 rows, the flagged row is in the third: still named as the batch's row 5
            CudaBackend chunked = new CudaBackend(ctx, 4L * vocab * 2); // shares the class's context: not closed here
            IllegalStateException inChunks = assertThrows(IllegalStateException.class,
                    () -> chunked.topKKd(loss, student, t, new float[rows * vocab], 1f));
            assertEquals(e.getMessage(), inChunks.getMessage());
            // at T = 0.5 a student logit of 2.5e38 has a product with 1/T beyond fp32: named, not a NaN loss
            float[] big = Inputs.logits(rng, rows, vocab, 2.0);
            big[6 * vocab + 2] = 2.5e38f;
            LogitBatch beyond = LogitBatch.ofLabels(rows, vocab, big, Inputs.labels(rng, rows, vocab));
            IllegalStateException range = assertThrows(IllegalStateException.class,
                    () -> backend.topKKd(new TopKKd(0.5, TopKKd.Tail.REST_BUCKET), beyond, t, new float[rows * vocab], 1f));
            assertTrue(range.getMessage().startsWith("topk-kd: row 6 of this batch has a student logit whose product with 1/T (T = 0.5) "
                    + "is beyond fp32"), range.getMessage());
            // a student of another vocabulary than the store's
            LogitBatch wider = LogitBatch.ofLabels(rows, vocab + 30, Inputs.logits(rng, rows, vocab + 30, 2.0), new int[rows]);
            IllegalArgumentException other = assertThrows(IllegalArgumentException.class,
                    () -> backend.topKKd(loss, wider, t, new float[rows * (vocab + 30)], 1f));
            assertTrue(other.getMessage().contains((vocab + 30) + " classes") && other.getMessage().contains("vocabulary " + vocab),
                    other.getMessage());
        }
    }

    /**
     * topKKd's own arguments are checked as the CPU loss checks a batch's: a missing or aliasing gradient buffer and
     * missing rows are named, and rows whose buffers went back to the pool are refused, before anything runs.
     */
    @Test
    void topKKdChecksItsArguments(@TempDir Path tmp) throws Exception {
        int rows = 6;
        int vocab = 50;
        int k = 4;
        Random rng = new Random(17);
        KernelInputs.TopK top = KernelInputs.topK(Inputs.logits(rng, rows, vocab, 2.0), rows, vocab, k);
        Path p = tmp.resolve("topk.d4j");
        writeTopKStore(p, ValueCodec.F32, vocab, k, rows, top.ids(), top.logProbs());
        TopKKd loss = new TopKKd(2.0, TopKKd.Tail.REST_BUCKET);
        float[] s = Inputs.logits(rng, rows, vocab, 2.0);
        float[] s0 = s.clone();
        LogitBatch student = LogitBatch.ofLabels(rows, vocab, s, Inputs.labels(rng, rows, vocab));
        try (SoftTargetStore store = SoftTargetStore.open(p); StoreBatches b = new StoreBatches(ctx, store, rows, 1)) {
            StoreBatches.TopK t = b.topK(b.stage(range(0, rows)));
            IllegalArgumentException noGrad = assertThrows(IllegalArgumentException.class, () -> backend.topKKd(loss, student, t, null, 1f));
            assertTrue(noGrad.getMessage().contains("gradient buffer for loss 'topk-kd' has no array"), noGrad.getMessage());
            IllegalArgumentException alias = assertThrows(IllegalArgumentException.class, () -> backend.topKKd(loss, student, t, s, 1f));
            assertTrue(alias.getMessage().contains("same array as the student logits"), alias.getMessage());
            assertArrayEquals(s0, s, "the student logits are untouched");
            IllegalArgumentException noRows = assertThrows(IllegalArgumentException.class,
                    () -> backend.topKKd(loss, student, null, new float[rows * vocab], 1f));
            assertTrue(noRows.getMessage().contains("top-k rows"), noRows.getMessage());
            t.close();
            t.close(); // twice is harmless
            IllegalStateException closed = assertThrows(IllegalStateException.class,
                    () -> backend.topKKd(loss, student, t, new float[rows * vocab], 1f));
            assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
        }
    }

    /**
     * What topKKd cannot run is refused before anything is staged, and whether or not a row counts: top-k rows whose
     * buffers went back to the pool (a batch with no counted row got zeros and no error), and a vocabulary beyond the
     * kernel's 393,216 classes (refused only once the student's rows had been staged through pinned memory, and not at
     * all for a batch with no counted row). The gradient buffer is left as it was.
     */
    @Test
    void topKKdRefusesClosedRowsAndTooWideAVocabularyBeforeStaging(@TempDir Path tmp) throws Exception {
        TopKKd loss = new TopKKd(2.0, TopKKd.Tail.REST_BUCKET);
        Random rng = new Random(23);
        int rows = 3;
        int k = 2;
        for (int vocab : new int[] {50, KernelPlan.MAX_DYNAMIC_SHARED * 8 + 1}) {
            KernelInputs.TopK top = KernelInputs.topK(Inputs.logits(rng, rows, vocab, 2.0), rows, vocab, k);
            Path p = tmp.resolve("topk-" + vocab + ".d4j");
            writeTopKStore(p, ValueCodec.F32, vocab, k, rows, top.ids(), top.logProbs());
            float[] s = Inputs.logits(rng, rows, vocab, 2.0);
            LogitBatch counted = LogitBatch.ofLabels(rows, vocab, s, Inputs.labels(rng, rows, vocab));
            LogitBatch noneCounted = counted.withRowMask(new boolean[rows]);
            assertEquals(0, noneCounted.countedRows());
            try (SoftTargetStore store = SoftTargetStore.open(p); StoreBatches b = new StoreBatches(ctx, store, rows, 1)) {
                StoreBatches.TopK t = b.topK(b.stage(range(0, rows)));
                if (vocab <= KernelPlan.MAX_DYNAMIC_SHARED * 8) {
                    t.close();
                }
                for (LogitBatch student : new LogitBatch[] {counted, noneCounted}) {
                    CudaBackend fresh = new CudaBackend(ctx); // shares the class's context: not closed here
                    float[] grad = Inputs.poisoned(rows * vocab);
                    float[] grad0 = grad.clone();
                    String what = "vocab " + vocab + ", " + student.countedRows() + " counted rows";
                    RuntimeException e = assertThrows(RuntimeException.class, () -> fresh.topKKd(loss, student, t, grad, 1f), what);
                    if (vocab <= KernelPlan.MAX_DYNAMIC_SHARED * 8) {
                        assertTrue(e instanceof IllegalStateException && e.getMessage().contains("top-k rows")
                                && e.getMessage().contains("closed"), what + ": " + e);
                    } else {
                        assertTrue(e instanceof IllegalArgumentException && e.getMessage().contains("up to 393216")
                                && e.getMessage().contains("got " + vocab), what + ": " + e);
                        t.checkIds(); // the rows are still there
                    }
                    assertEquals(0, fresh.stagingBytes(), what + ": nothing was staged");
                    assertArrayEquals(grad0, grad, what + ": the gradient buffer is as it was");
                }
                t.close();
            }
        }
    }

    /**
     * A batch belongs to the stager (and the stored rows to the StoreBatches) that staged it: another one's batch has the
     * same numbers, slot and sequence, and would be read from this one's device buffer, another store's rows as this
     * store's. It is refused, and this one's own batch still goes through.
     */
    @Test
    void aBatchIsReadOnlyWhereItWasStaged(@TempDir Path tmp) throws Exception {
        try (DeviceStager one = new DeviceStager(ctx, 2, 4096); DeviceStager two = new DeviceStager(ctx, 2, 4096)) {
            DeviceStager.Batch mine = one.stage(b -> fill(b, 1, 1024));
            DeviceStager.Batch theirs = two.stage(b -> fill(b, 2, 1024));
            assertEquals(mine.sequence(), theirs.sequence());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> one.acquire(theirs));
            assertTrue(e.getMessage().contains("another stager"), e.getMessage());
            DeviceBuffer in = two.acquire(theirs);
            assertThrows(IllegalArgumentException.class, () -> one.release(theirs));
            two.release(theirs);
            DeviceBuffer got = one.acquire(mine);
            byte[] bytes = new byte[4096];
            ctx.download(got, bytes);
            assertEquals(31 + 1023, ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getInt(4 * 1023));
            one.release(mine);
            assertTrue(in.capacity() >= 4096);
        }
        int vocab = 20;
        int k = 3;
        int rows = 5;
        Path[] paths = new Path[2];
        for (int i = 0; i < 2; i++) {
            KernelInputs.TopK top = KernelInputs.topK(Inputs.logits(new Random(i), rows, vocab, 2.0), rows, vocab, k);
            paths[i] = tmp.resolve("topk" + i + ".d4j");
            writeTopKStore(paths[i], ValueCodec.F32, vocab, k, rows, top.ids(), top.logProbs());
        }
        try (SoftTargetStore a = SoftTargetStore.open(paths[0]); SoftTargetStore c = SoftTargetStore.open(paths[1]);
             StoreBatches fromA = new StoreBatches(ctx, a, rows, 1); StoreBatches fromC = new StoreBatches(ctx, c, rows, 1)) {
            StoreBatches.Staged sa = fromA.stage(range(0, rows));
            StoreBatches.Staged sc = fromC.stage(range(0, rows));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> fromA.topK(sc));
            assertTrue(e.getMessage().contains(paths[0].toString()) || e.getMessage().contains("another"), e.getMessage());
            try (StoreBatches.TopK t = fromC.topK(sc)) {
                byte[] got = new byte[4 * rows * k];
                ctx.download(t.ids(), got);
                int[] ids = new int[rows * k];
                ByteBuffer.wrap(got).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(ids);
                assertArrayEquals(c.topK(range(0, rows)).ids(), ids, "the other store's own rows");
            }
            try (StoreBatches.TopK t = fromA.topK(sa)) {
                t.checkIds();
            }
        }
    }

    /**
     * Stored top-k rows of a vocabulary beyond the topk kernel's (its membership bitmap must fit 48 KiB of shared memory)
     * are refused with that limit, and the backend goes on as before: the next batch, on the same staging buffer and
     * pool, gives the CPU loss.
     */
    @Test
    void aVocabularyBeyondTheTopKKernelIsRefusedAndTheBackendGoesOn(@TempDir Path tmp) throws Exception {
        int rows = 3;
        int vocab = KernelPlan.MAX_DYNAMIC_SHARED * 8 + 1;
        int k = 2;
        int[] ids = new int[rows * k];
        float[] lps = new float[rows * k];
        for (int r = 0; r < rows; r++) {
            ids[r * k] = 7 * r;
            ids[r * k + 1] = vocab - 1 - r;
            lps[r * k] = (float) Math.log(0.6);
            lps[r * k + 1] = (float) Math.log(0.3);
        }
        Path p = tmp.resolve("wide.d4j");
        writeTopKStore(p, ValueCodec.F32, vocab, k, rows, ids, lps);
        Random rng = new Random(23);
        TopKKd loss = new TopKKd(2.0, TopKKd.Tail.REST_BUCKET);
        try (SoftTargetStore store = SoftTargetStore.open(p); StoreBatches b = new StoreBatches(ctx, store, rows, 1);
             StoreBatches.TopK t = b.topK(b.stage(range(0, rows)))) {
            LogitBatch student = LogitBatch.ofLabels(rows, vocab, Inputs.logits(rng, rows, vocab, 2.0), new int[rows]);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> backend.topKKd(loss, student, t, new float[rows * vocab], 1f));
            assertTrue(e.getMessage().contains("vocabularies up to " + (vocab - 1)), e.getMessage());
        }
        int v = 1000;
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        float[] teacher = Inputs.logits(rng, rows, v, 2.0);
        LogitBatch next = LogitBatch.of(rows, v, s, teacher, org.distill4j.loss.TeacherValues.LOGITS, Inputs.labels(rng, rows, v));
        org.distill4j.loss.SoftTargetKd kd = new org.distill4j.loss.SoftTargetKd(2.0, 0.3);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = backend.logitLoss(kd, next, grad, 0.8f);
        float[] cpuGrad = new float[rows * v];
        LossResult cpu = kd.compute(next, cpuGrad, 0.8f);
        Tolerances.assertKernelValueClose(cpu.value(), r.value(), Tolerances.KERNEL_F32_VALUE_REL, "the next batch");
        Tolerances.assertKernelGradClose(KernelInputs.widen(cpuGrad), grad, Tolerances.KERNEL_F32_GRAD, "the next batch's gradient");
    }

    /**
     * Batches too large for a staging slot (2 GiB of pinned memory) or no slot at all are refused naming the store and sizes,
     * and so are missing, empty and oversized batches of indices and a missing staged batch.
     */
    @Test
    void stagingSlotsTheStoreCannotHaveAreNamed(@TempDir Path tmp) throws Exception {
        int vocab = 32000;
        Path p = tmp.resolve("dense.d4j");
        StoreHeader h = new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F32, StoreHeader.ValueKind.LOGITS, vocab, 0, 1, 1, 1.0, "{}");
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeDense(Inputs.logits(new Random(2), 1, vocab, 2.0), 1);
            w.finish();
        }
        try (SoftTargetStore store = SoftTargetStore.open(p)) {
            long rowBytes = store.header().rowBytes();
            int tooMany = (int) (Integer.MAX_VALUE / rowBytes + 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new StoreBatches(ctx, store, tooMany, 2));
            assertTrue(e.getMessage().contains(p.toString()) && e.getMessage().contains(tooMany + " rows")
                    && e.getMessage().contains(rowBytes + " bytes") && e.getMessage().contains("at most " + (tooMany - 1)), e.getMessage());
            IllegalArgumentException none = assertThrows(IllegalArgumentException.class, () -> new StoreBatches(ctx, store, 4, 0));
            assertTrue(none.getMessage().contains("at least one slot"), none.getMessage());
            try (StoreBatches most = new StoreBatches(ctx, store, 64, 1)) {
                assertThrows(IllegalArgumentException.class, () -> most.stage(new int[65]));
                IllegalArgumentException empty = assertThrows(IllegalArgumentException.class, () -> most.stage(new int[0]));
                assertTrue(empty.getMessage().contains(p.toString()) && empty.getMessage().contains("got 0"), empty.getMessage());
                IllegalArgumentException noIndices = assertThrows(IllegalArgumentException.class, () -> most.stage(null));
                assertTrue(noIndices.getMessage().contains(p.toString()) && noIndices.getMessage().contains("no row indices"),
                        noIndices.getMessage());
                IllegalArgumentException noBatch = assertThrows(IllegalArgumentException.class, () -> most.dense(null));
                assertTrue(noBatch.getMessage().contains(p.toString()) && noBatch.getMessage().contains("no staged batch"), noBatch.getMessage());
                try (DeviceBuffer d = most.dense(most.stage(new int[] {0}))) {
                    assertTrue(d.capacity() >= 4L * vocab, "the slot is still free for a good batch");
                }
            }
        }
    }

    @Test
    void storedDenseRowsUnpackAsTheJavaReaderGives(@TempDir Path tmp) throws Exception {
        int vocab = 1003;
        int rows = 50;
        float[] all = Inputs.logits(new Random(3), rows, vocab, 8.0);
        Path p = tmp.resolve("dense.d4j");
        StoreHeader h = new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.BF16, StoreHeader.ValueKind.LOGITS, vocab, 0, rows, 7, 1.0, "{}");
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeDense(all, rows);
            w.finish();
        }
        try (SoftTargetStore store = SoftTargetStore.open(p); StoreBatches b = new StoreBatches(ctx, store, 64, 2)) {
            int[] idx = {49, 0, 13, 13, 30};
            try (DeviceBuffer d = b.dense(b.stage(idx))) {
                byte[] got = new byte[4 * idx.length * vocab];
                ctx.download(d, got);
                float[] f = new float[idx.length * vocab];
                ByteBuffer.wrap(got).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
                assertArrayEquals(store.dense(idx), f);
            }
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> b.topK(b.stage(idx)));
            assertTrue(e.getMessage().contains("holds dense rows"), e.getMessage());
        }
    }

    /**
     * Unpacking stored rows that runs out of device memory (its log-probabilities do not fit once its ids have) keeps
     * nothing: its buffers go back and its staging slot is free, so the one-slot ring takes the next batch. On the
     * emulator only, whose memory is counted exactly (a real GPU's free memory moves with the driver's own use).
     */
    @Test
    void anUnpackingThatRunsOutOfMemoryGivesBackItsBuffersAndSlot(@TempDir Path tmp) throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(ctx.describe().contains("emulator"),
                () -> "filling the device to a byte needs the emulator's exact count, not " + ctx.describe());
        int rows = 64;
        int vocab = 3001;
        int k = 1024; // a batch's ids, and its log-probabilities: 256 KiB each
        long part = 4L * rows * k;
        KernelInputs.TopK top = KernelInputs.topK(Inputs.logits(new Random(5), rows, vocab, 3.0), rows, vocab, k);
        Path p = tmp.resolve("topk.d4j");
        writeTopKStore(p, ValueCodec.F16, vocab, k, rows, top.ids(), top.logProbs());
        try (SoftTargetStore store = SoftTargetStore.open(p); StoreBatches b = new StoreBatches(ctx, store, rows, 1)) {
            StoreBatches.Staged staged = b.stage(range(0, rows));
            ctx.trim();
            long before = ctx.memInfo()[0];
            java.util.List<DeviceBuffer> filler = new java.util.ArrayList<>();
            try {
                long step = 2L << 20;
                filler.add(ctx.alloc((before - 2 * part) / step * step));
                while (ctx.memInfo()[0] >= 2 * part) {
                    filler.add(ctx.alloc(part));
                }
                long left = ctx.memInfo()[0];
                assertTrue(left >= part && left < 2 * part, left + " bytes left");
                CudaException e = assertThrows(CudaException.class, () -> b.topK(staged));
                assertEquals("CUDA_ERROR_OUT_OF_MEMORY", e.errorName());
            } finally {
                filler.forEach(DeviceBuffer::close);
            }
            ctx.trim();
            assertEquals(before, ctx.memInfo()[0], "the failed unpacking keeps no device memory");
            try (StoreBatches.TopK t = b.topK(b.stage(range(0, rows)))) {
                t.checkIds();
                byte[] got = new byte[(int) part];
                ctx.download(t.ids(), got);
                int[] ids = new int[rows * k];
                ByteBuffer.wrap(got).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(ids);
                assertArrayEquals(top.ids(), ids, "the next batch in the freed slot");
            }
        }
    }

    private static int[] range(int from, int to) {
        int[] r = new int[to - from];
        for (int i = 0; i < r.length; i++) {
            r[i] = from + i;
        }
        return r;
    }

    /** Writes {@code rows} top-k rows (log-probabilities) of a {@code vocab}-class teacher into a store at {@code p}. */
    private static void writeTopKStore(Path p, ValueCodec codec, int vocab, int k, int rows, int[] ids, float[] logProbs)
            throws java.io.IOException {
        StoreHeader h = new StoreHeader(StoreHeader.Layout.TOP_K, codec, StoreHeader.ValueKind.LOG_PROBS, vocab, k, rows, 16, 1.0, "{}");
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeTopK(ids, logProbs, rows);
            w.finish();
        }
    }
}
