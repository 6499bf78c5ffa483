package org.distill4j.cuda;

import org.bytedeco.cuda.cublas.cublasLtContext;
import org.bytedeco.cuda.cublas.cublasLtMatmulDescOpaque_t;
import org.bytedeco.cuda.cublas.cublasLtMatrixLayoutOpaque_t;
import org.bytedeco.cuda.global.cublas;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link CublasLt}'s handle and plans: what closing them does, and a plan's product against a float64 one. */
class CublasLtGpuTest extends GpuTest {
    /** fp32 operands, fp32 accumulation over k of at most 13 terms of size ~1: a few ulps of the sums. */
    private static final double F32_TOL = 1e-5;

    private static final int M = 5;
    private static final int N = 3;
    private static final int K = 7;

    private static CublasLt.Shape nn() {
        return new CublasLt.Shape(false, false, M, N, K, CublasLt.Type.F32, M, K, M, CublasLt.Epilogue.NONE, 0);
    }

    private static float[] random(Random rng, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (rng.nextGaussian() * 1.5 + 0.25);
        }
        return x;
    }

    /** D (M x N, column-major) against the float64 product of A (M x K) and B (K x N), both column-major. */
    private static void assertProduct(float[] a, float[] b, float[] d) {
        for (int col = 0; col < N; col++) {
            for (int row = 0; row < M; row++) {
                double want = 0;
                for (int j = 0; j < K; j++) {
                    want += (double) a[j * M + row] * b[col * K + j];
                }
                assertEquals(want, d[col * M + row], F32_TOL * (1 + Math.abs(want)), "D[" + row + ", " + col + "]");
            }
        }
    }

    private static float[] download(DeviceBuffer b, int n) {
        byte[] bytes = new byte[4 * n];
        ctx.download(b, bytes);
        float[] out = new float[n];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    /**
     * Closed plans leave their handle: a handle whose plans are made and closed step after step (another batch size,
     * an epilogue cuBLASLt refused) does not hold on to every one of them until it closes. The plans that stay open
     * still run, with the product of the float64 reference.
     */
    @Test
    void closedPlansLeaveTheirHandle() {
        Random rng = new Random(29);
        float[] a = random(rng, M * K);
        float[] b = random(rng, K * N);
        try (CublasLt lt = CublasLt.create(ctx, 1 << 20); DeviceBuffer da = ctx.alloc(4L * a.length); DeviceBuffer db = ctx.alloc(4L * b.length);
             DeviceBuffer dd = ctx.alloc(4L * M * N)) {
            ctx.upload(da, DType.F32.encode(a));
            ctx.upload(db, DType.F32.encode(b));
            DevicePtr pa = new DevicePtr(da.address());
            DevicePtr pb = new DevicePtr(db.address());
            DevicePtr pd = new DevicePtr(dd.address());
            CublasLt.Matmul kept = lt.plan(nn(), pa, pb, pd, null, null);
            for (int i = 0; i < 20; i++) {
                lt.plan(nn(), pa, pb, pd, null, null).close();
            }
            assertEquals(1, lt.openPlans(), "the closed plans are gone, the open one stays");
            kept.run(pa, pb, pd, null, null);
            float[] d = download(dd, M * N);
            assertProduct(a, b, d);
            kept.close();
            assertEquals(0, lt.openPlans());
        }
    }

    /** A closed handle makes no more plans (they would use the destroyed handle), and says why. */
    @Test
    void aClosedHandleRefusesToPlan() {
        try (DeviceBuffer da = ctx.alloc(4L * M * K); DeviceBuffer db = ctx.alloc(4L * K * N); DeviceBuffer dd = ctx.alloc(4L * M * N)) {
            CublasLt lt = CublasLt.create(ctx, 1 << 20);
            lt.close();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> lt.plan(nn(), new DevicePtr(da.address()),
                    new DevicePtr(db.address()), new DevicePtr(dd.address()), null, null));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
            assertEquals(0, lt.openPlans());
        }
    }

    /**
     * A plan closed while another thread's run of it waits for the handle (here: for this thread, which holds it) is
     * not destroyed under that run: the close waits, and the run then either completes or finds the plan closed.
     */
    @Test
    void closingAPlanWaitsForARunAboutToUseIt() throws Exception {
        try (CublasLt lt = CublasLt.create(ctx, 1 << 20); DeviceBuffer da = ctx.alloc(4L * M * K); DeviceBuffer db = ctx.alloc(4L * K * N);
             DeviceBuffer dd = ctx.alloc(4L * M * N)) {
            ctx.fill32(da, Float.floatToIntBits(0.5f), (long) M * K);
            ctx.fill32(db, Float.floatToIntBits(2f), (long) K * N);
            DevicePtr pa = new DevicePtr(da.address());
            DevicePtr pb = new DevicePtr(db.address());
            DevicePtr pd = new DevicePtr(dd.address());
            CublasLt.Matmul mm = lt.plan(nn(), pa, pb, pd, null, null);
            AtomicReference<Throwable> runFailed = new AtomicReference<>();
            Thread runner = new Thread(() -> {
                try {
                    mm.run(pa, pb, pd, null, null);
                } catch (Throwable t) {
                    runFailed.set(t);
                }
            });
            Thread closer = new Thread(mm::close);
            synchronized (ctx) { // what a run in progress holds: its context's lock
                runner.start();
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (runner.getState() != Thread.State.BLOCKED && System.nanoTime() < until) {
                    Thread.sleep(1);
                }
                assertEquals(Thread.State.BLOCKED, runner.getState(), "the run waits for the handle");
                closer.start();
                closer.join(300);
                assertTrue(closer.isAlive(), "the close waits while a run of the plan waits for the handle");
            }
            runner.join(10_000);
            closer.join(10_000);
            Throwable t = runFailed.get();
            if (t != null) {
                assertTrue(t instanceof IllegalStateException && t.getMessage().contains("closed"), String.valueOf(t));
            } else {
                float[] d = download(dd, M * N);
                for (int i = 0; i < d.length; i++) {
                    assertEquals(K, d[i], 0f, "element " + i + ": K products of 0.5 x 2");
                }
            }
            assertEquals(0, lt.openPlans());
        }
    }

    /**
     * A plan's algorithm was picked for the alignment of the operands it was planned with: a run with an operand less
     * aligned is refused before anything is queued, naming the operand and both alignments, and a missing operand is
     * named too; operands as aligned run, with the float64 reference's product.
     */
    @Test
    void aRunKeepsTheAlignmentItsPlanWasMadeFor() {
        Random rng = new Random(31);
        float[] a = random(rng, M * K);
        float[] b = random(rng, K * N);
        try (CublasLt lt = CublasLt.create(ctx, 1 << 20); DeviceBuffer da = ctx.alloc(4L * a.length + 256);
             DeviceBuffer db = ctx.alloc(4L * b.length + 256); DeviceBuffer dd = ctx.alloc(4L * M * N + 256)) {
            DevicePtr pa = new DevicePtr(da.address());
            DevicePtr pb = new DevicePtr(db.address());
            DevicePtr pd = new DevicePtr(dd.address());
            CublasLt.Matmul mm = lt.plan(nn(), pa, pb, pd, null, null);
            ctx.fill32(dd, Float.floatToIntBits(-7f), (long) M * N + 64);
            DevicePtr pa4 = da.at(4, 4L * a.length);
            DevicePtr pd4 = dd.at(4, 4L * M * N);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> mm.run(pa4, pb, pd, null, null));
            assertTrue(e.getMessage().contains("A") && e.getMessage().contains("4-byte") && e.getMessage().contains("256"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> mm.run(pa, pb, pd4, null, null));
            assertTrue(e.getMessage().contains("D") && e.getMessage().contains("4-byte"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> mm.run(pa, null, pd, null, null));
            assertTrue(e.getMessage().contains("B"), e.getMessage());
            float[] untouched = download(dd, M * N);
            for (int i = 0; i < untouched.length; i++) {
                assertEquals(-7f, untouched[i], 0f, "nothing ran: element " + i);
            }
            // as aligned as planned, elsewhere in the same buffers: runs
            DevicePtr pa256 = da.at(256, 4L * a.length);
            ctx.upload(pa256, DType.F32.encode(a));
            ctx.upload(pb, DType.F32.encode(b));
            mm.run(pa256, pb, pd, null, null);
            float[] d = download(dd, M * N);
            assertProduct(a, b, d);
            mm.close();
        }
    }
    /** The native object a handle or a plan holds (a private field: the test frees it behind the object's back). */
    private static <T> T handle(Object owner, String field, Class<T> type) throws ReflectiveOperationException {
        Field f = owner.getClass().getDeclaredField(field);
        f.setAccessible(true);
        return type.cast(f.get(owner));
    }

    private static boolean onEmulator() {
        return ctx.describe().contains("emulator");
    }

    /** Waits up to 10 s for {@code t} to block on a monitor. */
    private static void awaitBlocked(Thread t, String what) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (t.getState() != Thread.State.BLOCKED && t.isAlive() && System.nanoTime() < until) {
            Thread.sleep(1);
        }
        assertEquals(Thread.State.BLOCKED, t.getState(), what);
    }

    /** Joins {@code threads}, 20 s at most; a thread still alive then is reported with the JVM's deadlock finding. */
    private static void assertFinish(Thread... threads) throws InterruptedException {
        for (Thread t : threads) {
            t.join(20_000);
        }
        for (Thread t : threads) {
            if (t.isAlive()) {
                long[] deadlocked = ManagementFactory.getThreadMXBean().findDeadlockedThreads();
                throw new AssertionError(t.getName() + " did not finish (" + t.getState() + "); deadlocked threads: "
                        + (deadlocked == null ? "none" : Arrays.toString(deadlocked)));
            }
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
        t.setDaemon(true); // a deadlocked one must not keep the test JVM alive
        return t;
    }

    /**
     * A context that closes releases the cuBLASLt handles made on it and their open plans (descriptors, layouts) with
     * the workspace, as it does its graphs and events: a user who closes only the context leaks nothing. The handle
     * then refuses to plan, its plans refuse to run, saying so, and closing them afterwards is harmless. On the
     * emulator, whose cuBLASLt refuses to destroy a handle, descriptor or layout twice, they are checked to be gone.
     */
    @Test
    void closingAContextReleasesItsCublasLtHandlesAndPlans() throws Exception {
        DeviceContext c = DeviceContext.open(0);
        DeviceBuffer da = c.alloc(4L * M * K);
        DeviceBuffer db = c.alloc(4L * K * N);
        DeviceBuffer dd = c.alloc(4L * M * N);
        DevicePtr pa = new DevicePtr(da.address());
        DevicePtr pb = new DevicePtr(db.address());
        DevicePtr pd = new DevicePtr(dd.address());
        CublasLt lt = CublasLt.create(c, 1 << 20);
        CublasLt.Matmul kept = lt.plan(nn(), pa, pb, pd, null, null);
        CublasLt.Matmul closedFirst = lt.plan(nn(), pa, pb, pd, null, null);
        closedFirst.close();
        kept.run(pa, pb, pd, null, null);
        cublasLtContext h = handle(lt, "handle", cublasLtContext.class);
        cublasLtMatmulDescOpaque_t desc = handle(kept, "desc", cublasLtMatmulDescOpaque_t.class);
        cublasLtMatrixLayoutOpaque_t layoutA = handle(kept, "la", cublasLtMatrixLayoutOpaque_t.class);
        CublasLt ltClosedFirst = CublasLt.create(c, 1 << 20);
        ltClosedFirst.close();
        c.close();
        assertEquals(0, lt.openPlans(), "the context's close closed the open plan");
        if (onEmulator()) {
            assertEquals(cublas.CUBLAS_STATUS_INVALID_VALUE, cublas.cublasLtDestroy(h), "the handle went with its context");
            assertEquals(cublas.CUBLAS_STATUS_INVALID_VALUE, cublas.cublasLtMatmulDescDestroy(desc), "the plan's descriptor went too");
            assertEquals(cublas.CUBLAS_STATUS_INVALID_VALUE, cublas.cublasLtMatrixLayoutDestroy(layoutA), "and its layouts");
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> lt.plan(nn(), pa, pb, pd, null, null));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> kept.run(pa, pb, pd, null, null));
        assertTrue(e.getMessage().contains("closed") && e.getMessage().contains("DeviceContext"), e.getMessage());
        assertDoesNotThrow(kept::close);
        assertDoesNotThrow(kept::close);
        assertDoesNotThrow(closedFirst::close);
        assertDoesNotThrow(lt::close);
        assertDoesNotThrow(lt::close);
        assertDoesNotThrow(ltClosedFirst::close);
        assertDoesNotThrow(da::close);
    }

    /**
     * A context and its cuBLASLt handle (and a plan) closed at once from three threads, many times over: nothing
     * deadlocks or fails, and everything is released (on the emulator: the handle is gone).
     */
    @Test
    void aContextAndItsHandleClosedConcurrentlyReleaseEverythingOnce() throws Exception {
        for (int round = 0; round < 25; round++) {
            DeviceContext c = DeviceContext.open(0);
            DeviceBuffer da = c.alloc(4L * M * K);
            DeviceBuffer db = c.alloc(4L * K * N);
            DeviceBuffer dd = c.alloc(4L * M * N);
            DevicePtr pa = new DevicePtr(da.address());
            DevicePtr pb = new DevicePtr(db.address());
            DevicePtr pd = new DevicePtr(dd.address());
            CublasLt lt = CublasLt.create(c, 1 << 20);
            CublasLt.Matmul mm = lt.plan(nn(), pa, pb, pd, null, null);
            cublasLtContext h = handle(lt, "handle", cublasLtContext.class);
            CyclicBarrier start = new CyclicBarrier(3);
            AtomicReference<Throwable> failed = new AtomicReference<>();
            Runnable[] closes = {c::close, lt::close, mm::close};
            Thread[] threads = new Thread[closes.length];
            for (int i = 0; i < closes.length; i++) {
                Runnable close = closes[(i + round) % closes.length]; // each order of starting
                threads[i] = daemon("close-" + round + "-" + i, () -> {
                    try {
                        start.await(10, TimeUnit.SECONDS);
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                    close.run();
                }, failed);
                threads[i].start();
            }
            assertFinish(threads);
            assertNull(failed.get(), () -> "round " + failed.get());
            assertEquals(0, lt.openPlans());
            if (onEmulator()) {
                assertEquals(cublas.CUBLAS_STATUS_INVALID_VALUE, cublas.cublasLtDestroy(h), "round " + round + ": the handle is gone");
            }
            assertThrows(IllegalStateException.class, () -> mm.run(pa, pb, pd, null, null));
        }
    }

    /**
     * Work on a handle inside a call that holds the context (here a plan made inside {@link DeviceContext#time}) while
     * another thread closes the handle: with one lock order neither waits for the other for ever. The close waits for
     * the timed work, then closes the plan made in it too.
     */
    @Test
    void closingAHandleWhileTheContextIsBusyWithItDoesNotDeadlock() throws Exception {
        DeviceContext c = DeviceContext.open(0);
        Thread[] started = new Thread[0];
        try {
            DeviceBuffer da = c.alloc(4L * M * K);
            DeviceBuffer db = c.alloc(4L * K * N);
            DeviceBuffer dd = c.alloc(4L * M * N);
            DevicePtr pa = new DevicePtr(da.address());
            DevicePtr pb = new DevicePtr(db.address());
            DevicePtr pd = new DevicePtr(dd.address());
            CublasLt lt = CublasLt.create(c, 1 << 20);
            AtomicReference<Throwable> failed = new AtomicReference<>();
            AtomicReference<CublasLt.Matmul> planned = new AtomicReference<>();
            java.util.concurrent.CountDownLatch timing = new java.util.concurrent.CountDownLatch(1);
            AtomicReference<Thread> closerRef = new AtomicReference<>();
            Thread closer = daemon("closer", () -> {
                try {
                    timing.await();
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                lt.close();
            }, failed);
            closerRef.set(closer);
            Thread worker = daemon("worker", () -> c.time(() -> {
                timing.countDown();
                try {
                    awaitBlocked(closerRef.get(), "the handle's close waits for the context");
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                planned.set(lt.plan(nn(), pa, pb, pd, null, null));
            }), failed);
            started = new Thread[] {closer, worker};
            closer.start();
            worker.start();
            assertFinish(worker, closer);
            assertNull(failed.get(), () -> String.valueOf(failed.get()));
            assertNotNull(planned.get(), "the plan was made before the handle closed");
            assertEquals(0, lt.openPlans(), "the handle's close closed the plan made before it");
            assertThrows(IllegalStateException.class, () -> planned.get().run(pa, pb, pd, null, null));
        } finally {
            if (Arrays.stream(started).noneMatch(Thread::isAlive)) { // a deadlocked thread may hold the context's lock
                c.close();
            }
        }
    }

    /**
     * A run queues on its context's stream under the context's lock, as every call on a context does (the class's
     * documentation): a run that waits for the context while the context closes (here this thread holds the lock and
     * closes it) then finds its plan closed and says so, instead of calling cuBLASLt with freed descriptors, workspace
     * and stream.
     */
    @Test
    void aRunWaitsForItsContextAndFindsItClosed() throws Exception {
        DeviceContext c = DeviceContext.open(0);
        DeviceBuffer da = c.alloc(4L * M * K);
        DeviceBuffer db = c.alloc(4L * K * N);
        DeviceBuffer dd = c.alloc(4L * M * N);
        DevicePtr pa = new DevicePtr(da.address());
        DevicePtr pb = new DevicePtr(db.address());
        DevicePtr pd = new DevicePtr(dd.address());
        CublasLt lt = CublasLt.create(c, 1 << 20);
        CublasLt.Matmul mm = lt.plan(nn(), pa, pb, pd, null, null);
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread runner = daemon("runner", () -> mm.run(pa, pb, pd, null, null), failed);
        try {
            synchronized (c) { // what a call on the context holds
                runner.start();
                awaitBlocked(runner, "the run waits for its context");
                c.close();
            }
        } finally {
            c.close();
        }
        assertFinish(runner);
        Throwable t = failed.get();
        assertTrue(t instanceof IllegalStateException && t.getMessage().contains("closed"), String.valueOf(t));
        assertFalse(runner.isAlive());
        lt.close();
    }

    /**
     * A cuBLASLt status raised as a {@link CudaException} says it is one: its code is a cublasStatus_t, not a CUresult
     * (7 is CUBLAS_STATUS_INVALID_VALUE there and CUDA_ERROR_PROFILER_DISABLED in the driver's numbering).
     */
    @Test
    void aCublasStatusIsNamedAsCublasLts() {
        CudaException e = assertThrows(CudaException.class, () -> CublasLt.check(cublas.CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul(test)"));
        assertEquals(CudaException.Library.CUBLAS_LT, e.library());
        assertEquals(cublas.CUBLAS_STATUS_INVALID_VALUE, e.code());
        assertTrue(e.errorName().startsWith("CUBLAS_STATUS_INVALID_VALUE") || e.errorName().startsWith("cublasStatus_t"), e.errorName());
        CudaException d = assertThrows(CudaException.class, () -> Cu.check(1, "cuTest"));
        assertEquals(CudaException.Library.DRIVER, d.library());
    }

    /**
     * A graph captured with GEMMs replays them with the handle's workspace, which the handle's close returns to the pool
     * (where the next buffer may take it): once the handle is closed, such a graph refuses to replay, saying why, instead
     * of writing that memory. A graph without GEMMs of that handle replays as before, and the graph closes as before.
     */
    @Test
    void aGraphWithGemmsOfAClosedHandleRefusesToReplay() {
        Random rng = new Random(43);
        float[] a = random(rng, M * K);
        float[] b = random(rng, K * N);
        try (DeviceBuffer da = ctx.alloc(4L * a.length); DeviceBuffer db = ctx.alloc(4L * b.length); DeviceBuffer dd = ctx.alloc(4L * M * N)) {
            ctx.upload(da, DType.F32.encode(a));
            ctx.upload(db, DType.F32.encode(b));
            DevicePtr pa = new DevicePtr(da.address());
            DevicePtr pb = new DevicePtr(db.address());
            DevicePtr pd = new DevicePtr(dd.address());
            CublasLt lt = CublasLt.create(ctx, 1 << 20);
            CublasLt.Matmul mm = lt.plan(nn(), pa, pb, pd, null, null);
            try (DeviceGraph gemm = ctx.capture(() -> mm.run(pa, pb, pd, null, null));
                 DeviceGraph fill = ctx.capture(() -> ctx.fill32(dd, 0x7fc00000, M * N))) {
                fill.launch();
                gemm.launch();
                assertProduct(a, b, download(dd, M * N));
                lt.close();
                IllegalStateException e = assertThrows(IllegalStateException.class, gemm::launch);
                assertTrue(e.getMessage().contains("cuBLASLt") && e.getMessage().contains("closed") && e.getMessage().contains("workspace"),
                        e.getMessage());
                fill.launch();
                float[] d = download(dd, M * N);
                assertTrue(Float.isNaN(d[0]) && Float.isNaN(d[M * N - 1]), "the graph without GEMMs still replays");
            }
        }
    }
}
