package org.distill4j.cuda;

import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUmod_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
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

    /**
     * A function's static shared memory counts against the 48 KiB a block has without opting in, as on a GPU: the
     * emulator knows it before any launch (build-emu.sh reads it from the compiled kernels) and answers it through
     * cuFuncGetAttribute; a launch whose dynamic part does not fit beside it is refused at once, and an opt-in is taken
     * only while static and dynamic together fit the 227 KiB a block may have. emu_selftest_block_sum declares
     * {@code float part[32]}; the tiled kd kernel's static shared memory fits the room {@link KdPlan#SHARED_RESERVE}
     * leaves it.
     */
    @Test
    void staticSharedMemoryCountsAgainstTheDefaultAndTheOptIn() {
        int part = 4 * 32;
        assertEquals(0, staticShared("emu_selftest_split_warp"));
        assertEquals(part, staticShared("emu_selftest_block_sum"));
        int kdTile = staticShared("kd_tile_f32_c1");
        assertTrue(kdTile > 0 && kdTile <= KdPlan.SHARED_RESERVE - 1024, "kd_tile_f32_c1: " + kdTile + " bytes of static shared memory");
        CUfunc_st f = function("emu_selftest_block_sum");
        int[] v = new int[1];
        Cu.check(cudart.cuFuncGetAttribute(v, cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f), "max dynamic");
        assertEquals(48 * 1024 - part, v[0], "the default dynamic shared memory: 48 KiB less the static part");
        try (DeviceContext c = DeviceContext.open(0); DeviceBuffer in = c.alloc(4 * 32); DeviceBuffer out = c.alloc(4);
             org.bytedeco.javacpp.PointerPointer<?> params = new org.bytedeco.javacpp.PointerPointer<>(2);
             org.bytedeco.javacpp.LongPointer inAt = new org.bytedeco.javacpp.LongPointer(1);
             org.bytedeco.javacpp.LongPointer outAt = new org.bytedeco.javacpp.LongPointer(1)) {
            c.upload(new DevicePtr(in.address()), bytes(new float[32]));
            c.synchronize();  // the raw launches below go to the legacy stream, which does not wait for the context's
            inAt.put(in.address());
            outAt.put(out.address());
            params.put(0, inAt).put(1, outAt);
            assertEquals(cudart.CUDA_ERROR_INVALID_VALUE, launch(f, 48 * 1024 - part + 1, params), "one byte past the default");
            assertEquals(cudart.CUDA_ERROR_INVALID_VALUE,
                    cudart.cuFuncSetAttribute(f, cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 227 * 1024 - part + 1),
                    "an opt-in past 227 KiB with the static part");
            Cu.check(cudart.cuFuncSetAttribute(f, cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 48 * 1024), "opt in");
            Cu.check(cudart.cuFuncGetAttribute(v, cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f), "max dynamic");
            assertEquals(48 * 1024, v[0], "after the opt-in");
            Cu.check(launch(f, 48 * 1024, params), "a launch the opt-in covers");
            Cu.check(cudart.cuCtxSynchronize(), "cuCtxSynchronize");
            assertEquals(0f, floats(c, out, 1)[0], "the sum of zeros");
            assertEquals(cudart.CUDA_ERROR_INVALID_VALUE, launch(f, 48 * 1024 + 1, params), "one byte past the opt-in");
        }
    }

    /**
     * As on a GPU, an attribute set on a function belongs to that handle: the same kernel from another module (another
     * context's, or the module loaded again) has the defaults, and a handle of an unloaded module is refused.
     */
    @Test
    void attributesBelongToTheFunctionOfOneModule() {
        String kernel = "emu_selftest_block_sum";
        int fallback = 48 * 1024 - 4 * 32;
        CUmod_st m1 = new CUmod_st();
        CUmod_st m2 = new CUmod_st();
        try (org.bytedeco.javacpp.BytePointer image = new org.bytedeco.javacpp.BytePointer(16)) {
            Cu.check(cudart.cuModuleLoadData(m1, image), "cuModuleLoadData");
            Cu.check(cudart.cuModuleLoadData(m2, image), "cuModuleLoadData");
        }
        CUfunc_st f1 = new CUfunc_st();
        CUfunc_st f1Again = new CUfunc_st();
        CUfunc_st f2 = new CUfunc_st();
        Cu.check(cudart.cuModuleGetFunction(f1, m1, kernel), "f1");
        Cu.check(cudart.cuModuleGetFunction(f1Again, m1, kernel), "f1 again");
        Cu.check(cudart.cuModuleGetFunction(f2, m2, kernel), "f2");
        assertEquals(f1.address(), f1Again.address(), "one module gives one handle per kernel");
        assertTrue(f1.address() != f2.address(), "two modules give two handles");
        Cu.check(cudart.cuFuncSetAttribute(f1, cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 100 * 1024), "opt in f1");
        Cu.check(cudart.cuFuncSetAttribute(f1, cudart.CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH, 2), "cluster of f1");
        assertEquals(100 * 1024, maxDynamic(f1Again));
        assertEquals(fallback, maxDynamic(f2), "the other module's function is not opted in");
        Cu.check(cudart.cuModuleUnload(m1), "cuModuleUnload");
        int[] v = new int[1];
        assertEquals(cudart.CUDA_ERROR_INVALID_HANDLE,
                cudart.cuFuncGetAttribute(v, cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f1), "a function of an unloaded module");
        assertEquals(fallback, maxDynamic(f2));
        CUmod_st m3 = new CUmod_st();
        try (org.bytedeco.javacpp.BytePointer image = new org.bytedeco.javacpp.BytePointer(16)) {
            Cu.check(cudart.cuModuleLoadData(m3, image), "cuModuleLoadData");
        }
        CUfunc_st f3 = new CUfunc_st();
        Cu.check(cudart.cuModuleGetFunction(f3, m3, kernel), "f3");
        assertEquals(fallback, maxDynamic(f3), "the module loaded again starts from the defaults");
        Cu.check(cudart.cuModuleUnload(m2), "cuModuleUnload");
        Cu.check(cudart.cuModuleUnload(m3), "cuModuleUnload");
    }

    private static int maxDynamic(CUfunc_st f) {
        int[] v = new int[1];
        Cu.check(cudart.cuFuncGetAttribute(v, cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f), "max dynamic");
        return v[0];
    }

    private static int staticShared(String kernel) {
        int[] v = new int[1];
        Cu.check(cudart.cuFuncGetAttribute(v, cudart.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, function(kernel)), "static shared of " + kernel);
        return v[0];
    }

    /** The kernel's function (the emulator takes any module: every kernel is compiled in). */
    private static CUfunc_st function(String kernel) {
        CUfunc_st f = new CUfunc_st();
        Cu.check(cudart.cuModuleGetFunction(f, new CUmod_st(), kernel), "cuModuleGetFunction(" + kernel + ")");
        return f;
    }

    /** One block of 32 threads on the legacy stream, with {@code shared} bytes of dynamic shared memory. */
    private static int launch(CUfunc_st f, int shared, org.bytedeco.javacpp.PointerPointer<?> params) {
        return cudart.cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, shared, (CUstream_st) null, params, (org.bytedeco.javacpp.PointerPointer<?>) null);
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
