package org.distill4j.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
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

    /**
     * {@link KdPlan#CACHED_ENOUGH} is "at least": a row cached exactly 85% stops the doubling of C, and keeps the
     * plan at two blocks per multiprocessor. The device is made up so that 85% is hit exactly: fp32 V = 40000
     * (85%: 34000 elements), two blocks per multiprocessor caching 17000 each ((278144 / 2 - 3072) / 8), one
     * block per multiprocessor 28672 ((227 KiB - 3072) / 8).
     */
    @Test
    void aRowCachedExactlyEnoughStopsTheClusterAndTheSearch() {
        DeviceLimits limits = new DeviceLimits(132, 227 * 1024, 278_144, true);
        assertEquals(17000, KdPlan.capacity(limits, 2, DType.F32));
        assertEquals(34000.0, KdPlan.CACHED_ENOUGH * 40000, "the 85% is exact in doubles here");
        KdPlan p = KdPlan.choose(limits, 7, 40000, DType.F32);
        assertEquals(new KdPlan(new KernelPlan("kd_tile_f32_c2", 512, 2 * 7, 2 * 17000 * 4, 2), 20000, 17000, KdPlan.Prefetch.NONE), p,
                "2 blocks cache exactly 85%: not 4 blocks, not the one-per-multiprocessor plan");
        // a row 8 wider is not 85% cached by 2 blocks: 4 blocks hold it whole
        KdPlan wider = KdPlan.choose(limits, 7, 40008, DType.F32);
        assertEquals(new KdPlan(new KernelPlan("kd_tile_f32_c4", 512, 4 * 7, 2 * 10004 * 4, 4), 10004, 10004, KdPlan.Prefetch.NONE), wider);
        // on a device without clusters, one block caching exactly 85% (fp32 V = 20000) is the plan, unstaged
        DeviceLimits single = new DeviceLimits(132, 227 * 1024, 278_144, false);
        assertEquals(new KdPlan(new KernelPlan("kd_tile_f32_c1", 512, 7, 2 * 17000 * 4, 1), 20000, 17000, KdPlan.Prefetch.NONE),
                KdPlan.choose(single, 7, 20000, DType.F32));
    }

    /**
     * A block's cache is the shared memory left beside the reserve, in whole 16-byte words of student and teacher:
     * on a device whose shared memory is not a round number, the element count is rounded down to 4 (fp32) or 8
     * (16-bit) elements, not to any coarser step. (200032 / 2 - 3072) bytes = 12118 fp32 or 24236 16-bit pairs.
     */
    @Test
    void theCacheIsRoundedDownToWhole16ByteWordsOnly() {
        DeviceLimits odd = new DeviceLimits(132, 227 * 1024, 200_032, true);
        assertEquals(12116, KdPlan.capacity(odd, 2, DType.F32));
        assertEquals(24232, KdPlan.capacity(odd, 2, DType.BF16));
        assertEquals(24232, KdPlan.capacity(odd, 2, DType.F16));
        assertEquals((200_032 - KdPlan.SHARED_RESERVE) / 8 / 4 * 4, KdPlan.capacity(odd, 1, DType.F32),
                "one block per multiprocessor: the multiprocessor's shared memory, below the opt-in limit");
        // the planner caches that much: fp32 V = 100000 in 8 blocks of 12500, 12116 of each cached (97%)
        KdPlan p = KdPlan.choose(odd, 5, 100_000, DType.F32);
        assertEquals(new KdPlan(new KernelPlan("kd_tile_f32_c8", 512, 8 * 5, 2 * 12116 * 4, 8), 12500, 12116, KdPlan.Prefetch.NONE), p);
        // double-buffered: half of it per row, again in whole words (6058 -> 6056)
        assertEquals(6056, KdPlan.doubleBuffered(odd, 2, 5, 100_000, DType.F32).cached());
    }

    /** Every argument a plan is made from is checked, and the error names the value it got. */
    @Test
    void badPlanArgumentsAreRefusedNamingTheValue() {
        DeviceLimits h100 = DeviceLimits.H100;
        for (int bps : new int[] {0, -1, 3}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KdPlan.choose(h100, bps, 7, 32000, DType.F32));
            assertEquals("the tiled kd kernels run 1 or 2 blocks per multiprocessor, not " + bps, e.getMessage());
        }
        for (int[] shape : new int[][] {{0, 32000}, {-2, 32000}, {7, 0}, {7, -16}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> KdPlan.tile(h100, shape[0], shape[1], DType.F32, 1, 1000, 2));
            assertTrue(e.getMessage().contains("got " + shape[0] + " x " + shape[1] + " F32"), e.getMessage());
        }
        IllegalArgumentException noCluster = assertThrows(IllegalArgumentException.class,
                () -> KdPlan.tile(h100, 7, 32000, DType.F32, 1, 1000, 0));
        assertEquals("a tiled kd plan needs at least one cluster, got 0", noCluster.getMessage());
        IllegalArgumentException c9 = assertThrows(IllegalArgumentException.class, () -> KdPlan.tile(h100, 7, 32000, DType.F32, 9, 1000, 2));
        assertEquals("cluster of 9 blocks: the tiled kd kernels take 1 to 8 or 16", c9.getMessage(), "a device with clusters");
        KdPlan plan = KdPlan.choose(h100, 64, 152_064, DType.F32);
        IllegalArgumentException noWaves = assertThrows(IllegalArgumentException.class,
                () -> KdPlan.pipelined(h100, plan, 64, 152_064, DType.F32, 30, 0));
        assertTrue(noWaves.getMessage().contains("30 clusters x 0 waves"), noWaves.getMessage());
        // one resident cluster is enough
        KdPlan one = KdPlan.pipelined(h100, plan, 64, 152_064, DType.F32, 1, 3);
        assertEquals(8 * 3, one.kernel().grid());
        assertEquals(KdPlan.Prefetch.DURING_PASS_2, one.prefetch());
    }

    /** A kernel pointer argument's address: a buffer's, a pointer's, 0 for none; anything else is named. */
    @Test
    void kernelPointerArgumentsGiveTheirAddress() {
        assertEquals(0, KdPlan.address(null));
        assertEquals(0x7f00_0000_0010L, KdPlan.address(new DevicePtr(0x7f00_0000_0010L)));
        assertEquals(0x7000_0100L, KdPlan.address(new DeviceBuffer(null, 0x7000_0100L, 4096)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KdPlan.address(new float[4]));
        assertEquals("a kernel pointer argument is a DeviceBuffer, DevicePtr or null, not a float[]", e.getMessage());
    }
}
