package org.distill4j.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link KdPlan}'s choices at the edges, without a device: the widest rows an int holds, devices with too few
 * multiprocessors for a large cluster, and what every plan must satisfy to launch (its chunks cover the row, its
 * cache fits the shared memory, its cluster fits the device).
 */
class KdPlanEdgeTest {
    /** What any tiled plan for rows of {@code v} on {@code limits} must satisfy to launch and cover the row. */
    private static void assertLaunchable(KdPlan p, DeviceLimits limits, int v, DType dtype, String what) {
        if (!p.tiled()) {
            return;
        }
        int perLoad = 16 / dtype.bytes();
        int c = p.kernel().cluster();
        assertTrue(p.chunk() > 0 && p.chunk() % perLoad == 0, what + ": chunk " + p.chunk());
        assertTrue((long) c * p.chunk() >= v, what + ": " + c + " chunks of " + p.chunk() + " cover " + v);
        assertTrue(p.cached() >= 0 && p.cached() <= p.chunk() && p.cached() % perLoad == 0, what + ": cached " + p.cached());
        assertEquals(2L * p.cached() * dtype.bytes() * p.prefetch().buffers(), p.kernel().sharedBytes(), what + ": shared bytes");
        assertTrue(p.kernel().sharedBytes() + KdPlan.SHARED_RESERVE <= limits.sharedPerBlockOptin(), what + ": fits a block");
        int blocksPerSm = limits.sharedPerSm() / (p.kernel().sharedBytes() + KdPlan.SHARED_RESERVE);
        assertTrue(blocksPerSm >= 1, what + ": a block fits a multiprocessor");
        assertTrue((long) Math.min(blocksPerSm, KdPlan.TILE_BLOCKS_PER_SM) * limits.multiprocessors() >= c,
                what + ": a cluster of " + c + " blocks fits " + limits.multiprocessors() + " multiprocessors");
    }

    /**
     * Rows up to the widest an int holds (a multiple of 16 bytes) get a plan whose chunks cover them: the chunk
     * computed as {@code (v + C - 1) / C} overflowed there (fp32 V = 2^31 - 4 came out as a negative shared-memory
     * size), so the widest rows were refused with a launch shape nobody asked for.
     */
    @Test
    void theWidestRowsGetChunksThatCoverThem() {
        for (DType d : DType.values()) {
            int perLoad = 16 / d.bytes();
            for (int v : new int[] {Integer.MAX_VALUE / perLoad * perLoad, (1 << 30) + perLoad, 2048 + perLoad, 131_072 - perLoad}) {
                KdPlan p = KdPlan.choose(DeviceLimits.H100, 3, v, d);
                assertTrue(p.tiled(), d + " V = " + v);
                assertLaunchable(p, DeviceLimits.H100, v, d, d + " V = " + v);
                for (int c = 1; c <= 8; c++) {
                    KdPlan t = KdPlan.tile(DeviceLimits.H100, 3, v, d, c, KdPlan.capacity(DeviceLimits.H100, 2, d), 3);
                    assertLaunchable(t, DeviceLimits.H100, v, d, d + " V = " + v + " cluster " + c);
                }
            }
        }
    }

    /**
     * A cluster's blocks must be resident at once: on a device of {@code n} multiprocessors a cluster takes at
     * most {@code n} blocks per multiprocessor it is sized for. The planner picked 8 blocks on a device of one or
     * two multiprocessors, a plan that cannot launch there; it now picks the largest cluster the device holds.
     */
    @Test
    void aDeviceWithFewMultiprocessorsGetsAClusterItHolds() {
        for (int sms : new int[] {1, 2, 3, 4, 132}) {
            DeviceLimits limits = new DeviceLimits(sms, 227 * 1024, 228 * 1024, true);
            for (DType d : DType.values()) {
                for (int v : new int[] {32_000, 128_256, 152_064, 1 << 20}) {
                    KdPlan p = KdPlan.choose(limits, 64, v, d);
                    assertLaunchable(p, limits, v, d, sms + " SMs, " + d + " V = " + v);
                }
            }
        }
        // one multiprocessor holds two blocks of a two-per-multiprocessor plan; two hold four
        KdPlan one = KdPlan.choose(new DeviceLimits(1, 227 * 1024, 228 * 1024, true), 64, 152_064, DType.F32);
        assertEquals(2, one.kernel().cluster());
        assertEquals(KdPlan.capacity(DeviceLimits.H100, 2, DType.F32), one.cached());
        assertEquals(4, KdPlan.choose(new DeviceLimits(2, 227 * 1024, 228 * 1024, true), 64, 152_064, DType.F32).kernel().cluster());
        // the H100 keeps its measured choice
        assertEquals(8, KdPlan.choose(DeviceLimits.H100, 64, 152_064, DType.F32).kernel().cluster());
    }

    /** Shared memory too small for one 16-byte word per block beside the reserve: the two-pass kernels, for every dtype. */
    @Test
    void noRoomForACacheMeansTheTwoPassKernels() {
        DeviceLimits none = new DeviceLimits(4, KdPlan.SHARED_RESERVE + 16, 2 * KdPlan.SHARED_RESERVE, false);
        for (DType d : DType.values()) {
            KdPlan p = KdPlan.choose(none, 64, 152_064, d);
            assertFalse(p.tiled(), d.toString());
            assertEquals("kd_block_" + d.suffix(), p.kernel().function());
        }
        DeviceLimits small = new DeviceLimits(4, 48 * 1024, 64 * 1024, false);
        for (DType d : DType.values()) {
            KdPlan p = KdPlan.choose(small, 64, 152_064, d);
            assertLaunchable(p, small, 152_064, d, "48 KiB, " + d);
        }
    }
}
