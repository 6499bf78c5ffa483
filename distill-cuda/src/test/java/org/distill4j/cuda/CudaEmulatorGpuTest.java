package org.distill4j.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CUDA emulator (src/test/emu) itself: its self-test kernels (selftest.cu, compiled into the emulator
 * only) break CUDA's rules on purpose, and the emulator must fail them the way it says, with a reason the
 * Java side sees; one that keeps the rules must compute its sums. Skipped on a real GPU (and wherever the
 * emulator is not what the probe found).
 */
class CudaEmulatorGpuTest extends GpuTest {

    @BeforeEach
    void onlyOnTheEmulator() {
        Assumptions.assumeTrue(ctx.describe().contains("emulator"), () -> "the self-test kernels exist only in the CUDA emulator, not on "
                + ctx.describe());
    }

    @Test
    void sharedMemoryShufflesAndBarriersSumABlock() {
        int threads = 96;
        int blocks = 5;
        Random rng = new Random(41);
        float[] in = new float[threads * blocks];
        for (int i = 0; i < in.length; i++) {
            in[i] = (float) (rng.nextGaussian() * 3 + 0.5);
        }
        try (DeviceBuffer x = ctx.alloc(4L * in.length); DeviceBuffer out = ctx.alloc(4L * blocks)) {
            ctx.upload(new DevicePtr(x.address()), bytes(in));
            ctx.launch(new KernelPlan("emu_selftest_block_sum", threads, blocks), x, out);
            float[] got = floats(ctx, out, blocks);
            for (int b = 0; b < blocks; b++) {
                double want = 0;
                for (int i = 0; i < threads; i++) {
                    want += in[b * threads + i];
                }
                assertEquals(want, got[b], 1e-5 * threads * 4, "block " + b);
            }
        }
    }

    @Test
    void threadsStuckAtDifferentBarriersFailTheLaunchWithItsReason() {
        String why = failure("emu_selftest_split_warp", 64);
        assertTrue(why.contains("deadlock") && why.contains("emu_selftest_split_warp"), why);
    }

    @Test
    void threadsThatExitedDoNotHoldUpABarrier() {
        try (DeviceBuffer out = ctx.alloc(4 * 64)) {
            ctx.launch(new KernelPlan("emu_selftest_barrier_after_exit", 64, 1), out);
            float[] got = floats(ctx, out, 64);
            for (int i = 0; i < 64; i++) {
                assertEquals(i < 32 ? 1f : 2f, got[i], "thread " + i);
            }
        }
    }

    @Test
    void aShuffleNamingAnExitedLaneFailsTheLaunchWithItsReason() {
        String why = failure("emu_selftest_shuffle_exited_lane", 32);
        assertTrue(why.contains("lane 31") && why.contains("exited"), why);
    }

    @Test
    void aLaunchBeyondTheBlockLimitIsRefusedAtOnce() {
        try (DeviceContext c = DeviceContext.open(0); DeviceBuffer out = c.alloc(4 * 2048)) {
            CudaException e = assertThrows(CudaException.class, () -> c.launch(new KernelPlan("emu_selftest_block_sum", 2048, 1), out, out));
            assertTrue(e.getMessage().contains("CUDA_ERROR_INVALID_VALUE"), e.getMessage());
        }
    }

    @Test
    void clusterBlocksReadEachOthersSharedMemory() {
        int threads = 64;
        int cluster = 4;
        int clusters = 3;
        Random rng = new Random(43);
        float[] in = new float[threads * cluster * clusters];
        for (int i = 0; i < in.length; i++) {
            in[i] = (float) (rng.nextGaussian() * 2 - 0.25);
        }
        try (DeviceBuffer x = ctx.alloc(4L * in.length); DeviceBuffer out = ctx.alloc(4L * clusters)) {
            ctx.upload(new DevicePtr(x.address()), bytes(in));
            ctx.launch(new KernelPlan("emu_selftest_cluster_sum", threads, cluster * clusters, 0, cluster), x, out, 0);
            float[] got = floats(ctx, out, clusters);
            for (int c = 0; c < clusters; c++) {
                double want = 0;
                for (int i = 0; i < threads * cluster; i++) {
                    want += in[c * threads * cluster + i];
                }
                assertEquals(want, got[c], 1e-5 * threads * cluster * 4, "cluster " + c);
            }
        }
    }

    /** cp.async copies land when a wait says so, and their destinations read NaN until then. */
    @Test
    void asynchronousCopiesLandWhenWaitedFor() {
        try (DeviceContext c = DeviceContext.open(0); DeviceBuffer in = c.alloc(16); DeviceBuffer out = c.alloc(24)) {
            c.upload(new DevicePtr(in.address()), bytes(new float[] {1f, 2f, 3f, 4f}));
            c.launch(new KernelPlan("emu_selftest_async_copy", 1, 1), in, out);
            float[] got = floats(c, out, 6);
            assertTrue(Float.isNaN(got[0]), "before any wait: " + got[0]);
            assertEquals(1f, got[1], "group 0 after wait_group 2");
            assertTrue(Float.isNaN(got[2]), "group 1 after wait_group 2: " + got[2]);
            assertEquals(3f, got[3], "group 2 after wait_group 0");
            assertTrue(Float.isNaN(got[4]), "the open group after wait_group 0: " + got[4]);
            assertEquals(4f, got[5], "the open group after wait_all");
        }
    }

    @Test
    void readingTheSharedMemoryOfAClusterBlockThatExitedFailsTheLaunch() {
        try (DeviceContext c = DeviceContext.open(0); DeviceBuffer x = c.alloc(4 * 64 * 2); DeviceBuffer out = c.alloc(4)) {
            c.launch(new KernelPlan("emu_selftest_cluster_sum", 64, 2, 0, 2), x, out, 1);
            CudaException e = assertThrows(CudaException.class, () -> c.download(out, new byte[4]));
            assertTrue(e.getMessage().contains("CUDA_ERROR_LAUNCH_FAILED") && e.getMessage().contains("cluster rank 1")
                    && e.getMessage().contains("exited"), e.getMessage());
        }
    }

    /** Runs a rule-breaking kernel in a context of its own (a failed launch spoils its context) and returns the error. */
    private static String failure(String kernel, int threads) {
        try (DeviceContext c = DeviceContext.open(0); DeviceBuffer out = c.alloc(4L * threads)) {
            c.launch(new KernelPlan(kernel, threads, 1), out);
            CudaException e = assertThrows(CudaException.class, () -> c.download(out, new byte[4 * threads]));
            assertTrue(e.getMessage().contains("CUDA_ERROR_LAUNCH_FAILED"), e.getMessage());
            return e.getMessage();
        }
    }

    private static byte[] bytes(float[] f) {
        ByteBuffer b = ByteBuffer.allocate(4 * f.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(f);
        return b.array();
    }

    private static float[] floats(DeviceContext c, DeviceBuffer src, int n) {
        byte[] raw = new byte[4 * n];
        c.download(src, raw);
        float[] f = new float[n];
        ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
        return f;
    }
}
