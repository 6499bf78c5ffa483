package org.distill4j.cuda;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
            synchronized (lt) { // what a run in progress holds
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
}
