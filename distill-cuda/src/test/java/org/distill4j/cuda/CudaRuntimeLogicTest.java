package org.distill4j.cuda;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.TeacherValues;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CUDA module's logic that needs no GPU: kernel choice, the pool's buckets, errors, dtypes, the shipped kernels. */
class CudaRuntimeLogicTest {

    @Test
    void aDeviceAddressReachesCublasLtAsIs() {
        // Found by the CUDA emulator: Pointer's own `address` field shadowed the local of that name, so every
        // GEMM operand went to cuBLASLt as a null pointer.
        long at = 0x7f00_1234_5600L;
        org.bytedeco.javacpp.Pointer p = CublasLt.raw(new DevicePtr(at));
        assertEquals(at, p.address());
        assertEquals(0, p.position());
    }

    @Test
    void theTiledKdPlanHoldsTheRowInAsFewBlocksAsItCan() {
        DeviceLimits h100 = DeviceLimits.H100;
        int budget = 228 * 1024 / 2 - KdPlan.SHARED_RESERVE; // two blocks per SM
        // f32, V = 152064: at two blocks per SM 14208 elements of s and t fit a block, so 8 blocks would cache 14208 of
        // their 19008 (75%, less than CACHED_ENOUGH)
        KdPlan two = KdPlan.choose(h100, 2, 16384, 152_064, DType.F32, 256, 512, 1024);
        assertEquals(new KdPlan(new KernelPlan("kd_tile_f32_c8", 512, 8 * 16384, 2 * 14208 * 4, 8), 19008, 14208, KdPlan.Prefetch.NONE), two);
        assertEquals(budget / 8, two.cached());
        // so the plan is sized for one block per SM: the whole chunk is cached, and the block being alone on its SM,
        // the copies are staged
        KdPlan one = KdPlan.choose(h100, 1, 16384, 152_064, DType.F32, 256, 512, 1024);
        assertEquals(new KdPlan(new KernelPlan("kd_tile_f32_c8", 512, 8 * 16384, 2 * 19008 * 4, 8), 19008, 19008, KdPlan.Prefetch.NONE), one);
        assertEquals(one.withStaging(true), KdPlan.choose(h100, 16384, 152_064, DType.F32, 256, 512, 1024));
        // fp32 rows of 128256 stay at two per SM: 8 blocks cache 89%, unstaged
        assertEquals(new KdPlan(new KernelPlan("kd_tile_f32_c8", 512, 8 * 16384, 2 * 14208 * 4, 8), 16032, 14208, KdPlan.Prefetch.NONE),
                KdPlan.choose(h100, 16384, 128_256, DType.F32));
        // rows that not even 8 blocks of one per SM cache 85% of: 8 blocks at two per SM, unstaged
        assertEquals(new KdPlan(new KernelPlan("kd_tile_f32_c8", 512, 8 * 64, 2 * 14208 * 4, 8), 37500, 14208, KdPlan.Prefetch.NONE),
                KdPlan.choose(h100, 64, 300_000, DType.F32));
        // bf16, V = 32000: one block caches 28416 of the 32000 (89%, at least CACHED_ENOUGH): no cluster; few rows,
        // few blocks
        assertEquals(new KdPlan(new KernelPlan("kd_tile_bf16_c1", 512, 3, 2 * 28416 * 2, 1), 32000, 28416, KdPlan.Prefetch.NONE),
                KdPlan.choose(h100, 3, 32000, DType.BF16, 0, 0, 4096));
        // bf16, V = 152064: 4 blocks would cache 75% (less than CACHED_ENOUGH), so 8, each holding its 19008 whole;
        // V = 128256: 4 blocks cache 89%
        assertEquals(8, KdPlan.choose(h100, 16, 152_064, DType.BF16).kernel().cluster());
        assertEquals(19008, KdPlan.choose(h100, 16, 152_064, DType.BF16).cached());
        assertEquals(4, KdPlan.choose(h100, 16, 128_256, DType.BF16).kernel().cluster());
        assertEquals(28416, KdPlan.choose(h100, 16, 128_256, DType.BF16).cached());
        // a row one block holds: no cluster
        assertEquals(new KdPlan(new KernelPlan("kd_tile_f16_c1", 512, 1000, 2 * 6000 * 2, 1), 6000, 6000, KdPlan.Prefetch.NONE),
                KdPlan.choose(h100, 1000, 6000, DType.F16));
        // chunks are whole 16-byte words: V = 32008 f32 in 4 blocks of 8004 (a multiple of 4)
        assertEquals(8004, KdPlan.tile(h100, 1, 32008, DType.F32, 4, 0, 1).chunk());
        assertEquals(16004, KdPlan.choose(h100, 1, 32008, DType.F32).chunk(), "2 blocks cache 89% of it");
        // without clusters (before sm_90): one block per row, the uncached rest of the row read twice
        DeviceLimits a100 = new DeviceLimits(108, 227 * 1024, 164 * 1024, false);
        KdPlan noClusters = KdPlan.choose(a100, 500, 152_064, DType.F32);
        assertEquals("kd_tile_f32_c1", noClusters.kernel().function());
        assertEquals(152_064, noClusters.chunk());
        assertEquals((164 * 1024 / 2 - KdPlan.SHARED_RESERVE) / 8 / 4 * 4, noClusters.cached());
        assertEquals(500, noClusters.kernel().grid(), "one cluster (here: block) per row");
        assertEquals(8 * KdPlan.MAX_CLUSTERS, KdPlan.choose(h100, 1 << 20, 152_064, DType.F32).kernel().grid(), "more rows loop");
        assertEquals(8 * 33, KdPlan.tile(h100, 16384, 152_064, DType.F32, 8, 14336, 33).kernel().grid(), "a grid of resident clusters");
        // clusters of 16 (non-portable; only asked for explicitly) hold that f32 row whole at two blocks per SM
        assertEquals(budget / 8, KdPlan.capacity(h100, 2, DType.F32));
        KdPlan c16 = KdPlan.tile(h100, 16384, 152_064, DType.F32, 16, KdPlan.capacity(h100, 2, DType.F32), KdPlan.MAX_CLUSTERS);
        assertEquals(new KdPlan(new KernelPlan("kd_tile_f32_c16", 512, 16 * 16384, 2 * 9504 * 4, 16), 9504, 9504, KdPlan.Prefetch.NONE), c16);
        // any portable size: clusters that are not powers of two (asked for explicitly; choose takes 1, 2, 4, 8)
        KdPlan c5 = KdPlan.tile(h100, 16384, 128_256, DType.BF16, 5, KdPlan.capacity(h100, 2, DType.BF16), 66);
        assertEquals("kd_tile_bf16_c5", c5.kernel().function());
        assertEquals(25656, c5.chunk(), "128256 / 5 = 25651.2, up to whole 16-byte words of bf16");
        assertEquals(25656, c5.cached(), "five blocks at two per SM hold a bf16 row of 128256 whole");
        assertEquals(5 * 66, c5.kernel().grid());
        assertEquals(25344, KdPlan.tile(h100, 16384, 152_064, DType.BF16, 6, KdPlan.capacity(h100, 2, DType.BF16), 1).cached());
        assertEquals(21724, KdPlan.tile(h100, 1, 152_064, DType.F32, 7, 1 << 20, 1).chunk(), "152064 / 7 = 21723.4, up to 4s");
        for (int bad : new int[] {0, 9, 12, 17, 32}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> KdPlan.tile(h100, 7, 32000, DType.F32, bad, 1000, 2));
            assertTrue(e.getMessage().contains("cluster of " + bad + " blocks"), e.getMessage());
        }
    }

    @Test
    void aPipelinedKdPlanLoopsResidentClustersOverTheRowsAndPrefetches() {
        DeviceLimits h100 = DeviceLimits.H100;
        KdPlan plan = KdPlan.choose(h100, 16384, 152_064, DType.BF16);
        assertEquals(KdPlan.Prefetch.NONE, plan.prefetch(), "the default plan takes a cluster per row: nothing to prefetch");
        assertFalse(plan.staged(), "the default plan issues pass 1's copies as one group");
        KdPlan staged = plan.withStaging(true);
        assertTrue(staged.staged());
        assertEquals(plan, new KdPlan(staged.kernel(), staged.chunk(), staged.cached(), staged.prefetch()),
                "staging changes nothing else");
        assertEquals(plan, staged.withStaging(false));
        KdPlan piped = KdPlan.pipelined(h100, plan, 16384, 152_064, DType.BF16, 30, 2);
        assertEquals(new KdPlan(new KernelPlan(plan.kernel().function(), 512, 8 * 60, plan.kernel().sharedBytes(), 8), plan.chunk(),
                plan.cached(), KdPlan.Prefetch.DURING_PASS_2), piped);
        assertEquals(1 | 2, piped.flags(), "TILE_PREFETCH | TILE_ONE_GROUP");
        assertEquals(1, KdPlan.pipelined(h100, staged, 16384, 152_064, DType.BF16, 30, 2).flags(),
                "TILE_PREFETCH alone: pipelining keeps the plan's staging");
        assertEquals(2, plan.flags(), "TILE_ONE_GROUP");
        assertEquals(0, staged.flags());
        assertEquals(8 * 7, KdPlan.pipelined(h100, plan, 7, 152_064, DType.BF16, 30, 2).kernel().grid(), "no more clusters than rows");
        assertEquals(8 * KdPlan.MAX_CLUSTERS, KdPlan.pipelined(h100, plan, 1 << 20, 152_064, DType.BF16, 40_000, 2).kernel().grid());
        KdPlan twoPass = KdPlan.twoPass(64, 1000, DType.F32);
        assertSame(twoPass, KdPlan.pipelined(h100, twoPass, 64, 1000, DType.F32, 30, 1), "a two-pass plan stays as it is");
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
                () -> KdPlan.pipelined(h100, plan, 16384, 152_064, DType.BF16, 0, 1));
        assertTrue(none.getMessage().contains("0 clusters"), none.getMessage());
    }

    @Test
    void aDoubleBufferedKdPlanHoldsTwoRowsInTheSharedMemoryOfOne() {
        DeviceLimits h100 = DeviceLimits.H100;
        int perRow = (228 * 1024 / 2 - KdPlan.SHARED_RESERVE) / 8 / 2 / 4 * 4; // f32, two blocks per SM, two rows
        assertEquals(7104, perRow);
        // f32, V = 152064: 8 blocks (the largest portable cluster) of 19008, each caching 7104 per row
        KdPlan big = KdPlan.doubleBuffered(h100, 2, 16384, 152_064, DType.F32);
        assertEquals(new KdPlan(new KernelPlan("kd_tile_f32_c8", 512, 8 * 16384, 2 * 2 * 7104 * 4, 8), 19008, 7104,
                KdPlan.Prefetch.DOUBLE_BUFFER), big);
        assertEquals(KdPlan.choose(h100, 2, 16384, 152_064, DType.F32).kernel().sharedBytes(), big.kernel().sharedBytes(),
                "the same shared memory as one row of the single-buffered plan");
        // bf16, V = 32000: half the cache per row takes 2 blocks (each caching 14208 of its 16000) where the
        // single-buffered plan takes 1
        KdPlan bf16 = KdPlan.doubleBuffered(h100, 2, 4096, 32000, DType.BF16);
        assertEquals(new KdPlan(new KernelPlan("kd_tile_bf16_c2", 512, 2 * 4096, 2 * 2 * 14208 * 2, 2), 16000, 14208,
                KdPlan.Prefetch.DOUBLE_BUFFER), bf16);
        assertEquals(1, KdPlan.choose(h100, 4096, 32000, DType.BF16).kernel().cluster());
        // one block per SM: the block's opt-in limit (227 KiB) less the reserve, halved
        assertEquals((227 * 1024 - KdPlan.SHARED_RESERVE) / 8 / 2, KdPlan.doubleBuffered(h100, 1, 16384, 152_064, DType.F32).cached());
        assertEquals(4 | 2, bf16.flags(), "TILE_DOUBLE | TILE_ONE_GROUP");
        assertEquals(4, bf16.withStaging(true).flags());
        KdPlan piped = KdPlan.pipelined(h100, bf16, 4096, 32000, DType.BF16, 50, 1);
        assertEquals(new KdPlan(new KernelPlan("kd_tile_bf16_c2", 512, 2 * 50, 2 * 2 * 14208 * 2, 2), 16000, 14208,
                KdPlan.Prefetch.DOUBLE_BUFFER), piped, "pipelining keeps the second buffer");
        assertEquals(KdPlan.twoPass(7, 2048, DType.F32), KdPlan.doubleBuffered(h100, 2, 7, 2048, DType.F32), "narrow rows");
        assertEquals(KdPlan.twoPass(7, 32000, DType.F32), KdPlan.doubleBuffered(h100, 2, 7, 32000, DType.F32, 8),
                "a pointer that is not 16-byte aligned");
        assertThrows(IllegalArgumentException.class, () -> KdPlan.doubleBuffered(h100, 3, 7, 32000, DType.F32));
    }

    @Test
    void thePrefetchSettingIsReadFromItsPropertyAndABadOneIsNamed() {
        String before = System.getProperty(KdRows.PREFETCH_PROPERTY);
        try {
            System.clearProperty(KdRows.PREFETCH_PROPERTY);
            assertEquals(KdPlan.Prefetch.DURING_PASS_2, KdRows.prefetchSetting(), "the default");
            System.setProperty(KdRows.PREFETCH_PROPERTY, "none");
            assertEquals(KdPlan.Prefetch.NONE, KdRows.prefetchSetting());
            System.setProperty(KdRows.PREFETCH_PROPERTY, " Double-Buffer ");
            assertEquals(KdPlan.Prefetch.DOUBLE_BUFFER, KdRows.prefetchSetting());
            System.setProperty(KdRows.PREFETCH_PROPERTY, "during-pass-2");
            assertEquals(KdPlan.Prefetch.DURING_PASS_2, KdRows.prefetchSetting());
            System.setProperty(KdRows.PREFETCH_PROPERTY, "double");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, KdRows::prefetchSetting);
            assertEquals("distill.cuda.kd.prefetch is 'double'; expected none, during-pass-2 or double-buffer", e.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty(KdRows.PREFETCH_PROPERTY);
            } else {
                System.setProperty(KdRows.PREFETCH_PROPERTY, before);
            }
        }
    }

    @Test
    void theTwoPassKdKernelsTakeWhatTheTiledOnesCannot() {
        DeviceLimits h100 = DeviceLimits.H100;
        assertEquals(KdPlan.twoPass(7, 2048, DType.F32), KdPlan.choose(h100, 7, 2048, DType.F32), "narrow rows: a warp per row");
        assertEquals(KdPlan.twoPass(7, 2049, DType.F32), KdPlan.choose(h100, 7, 2049, DType.F32), "rows not of whole 16-byte words");
        assertEquals(KdPlan.twoPass(7, 32004, DType.BF16), KdPlan.choose(h100, 7, 32004, DType.BF16), "bf16 rows of 64008 bytes");
        assertEquals(KdPlan.twoPass(7, 32000, DType.F32), KdPlan.choose(h100, 7, 32000, DType.F32, 256, 256 + 8, 512),
                "a teacher pointer that is not 16-byte aligned");
        assertTrue(KdPlan.choose(h100, 7, 32000, DType.F32, 256, 0, 512).tiled(), "no teacher (ce): 0 is no pointer");
        assertThrows(IllegalArgumentException.class, () -> KdPlan.choose(h100, 3, 7, 32000, DType.F32));
        IllegalArgumentException noCluster = assertThrows(IllegalArgumentException.class,
                () -> KdPlan.tile(new DeviceLimits(108, 227 * 1024, 164 * 1024, false), 7, 32000, DType.F32, 2, 1000, 2));
        assertTrue(noCluster.getMessage().contains("only 1"), noCluster.getMessage());
        IllegalArgumentException odd = assertThrows(IllegalArgumentException.class,
                () -> KdPlan.tile(h100, 7, 2049, DType.F32, 1, 1000, 2));
        assertTrue(odd.getMessage().contains("multiple of 16 bytes"), odd.getMessage());
        IllegalArgumentException grid = assertThrows(IllegalArgumentException.class, () -> new KernelPlan("k", 512, 12, 0, 8));
        assertTrue(grid.getMessage().contains("multiple"), grid.getMessage());
    }

    @Test
    void theKernelShapeFollowsTheRowWidth() {
        assertEquals(new KernelPlan("kd_warp_f32", 256, 2), KernelPlan.kd(9, 10, DType.F32));
        assertEquals(new KernelPlan("kd_warp_bf16", 256, 1), KernelPlan.kd(8, 2048, DType.BF16));
        assertEquals(new KernelPlan("kd_block_f16", 512, 7), KernelPlan.kd(7, 2049, DType.F16));
        assertEquals(new KernelPlan("kd_block_f32", 512, KernelPlan.MAX_GRID), KernelPlan.kd(1 << 20, 152_064, DType.F32));
        assertEquals(KernelPlan.MAX_GRID, KernelPlan.kd(Integer.MAX_VALUE, 10, DType.F32).grid());
        assertEquals(new KernelPlan("gjsd_warp_f16", 256, 1), KernelPlan.gjsd(3, 37, DType.F16));
        assertEquals(new KernelPlan("gjsd_block_bf16", 512, 4), KernelPlan.gjsd(4, 32000, DType.BF16));
        assertEquals(new KernelPlan("topk_warp_f32", 256, 1, 0), KernelPlan.topk(5, 2048, DType.F32));
        assertEquals(new KernelPlan("topk_block_f32", 512, 5, 4 * 4752), KernelPlan.topk(5, 152_064, DType.F32),
                "a V-bit membership bitmap in dynamic shared memory");
        IllegalArgumentException big = assertThrows(IllegalArgumentException.class, () -> KernelPlan.topk(5, 400_000, DType.F32));
        assertTrue(big.getMessage().contains("up to 393216"), big.getMessage());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KernelPlan.kd(0, 10, DType.F32));
        assertTrue(e.getMessage().contains("rows > 0"), e.getMessage());
    }

    /**
     * The top-k bitmap's limit is inclusive: V = 393,216 takes exactly 48 KiB of dynamic shared memory and runs, one
     * more class does not; a row of no classes is refused naming the shape, as a batch of no rows is.
     */
    @Test
    void theKernelShapesLimitsAreExact() {
        assertEquals(new KernelPlan("topk_block_bf16", 512, 3, 48 * 1024), KernelPlan.topk(3, 393_216, DType.BF16));
        IllegalArgumentException over = assertThrows(IllegalArgumentException.class, () -> KernelPlan.topk(3, 393_217, DType.BF16));
        assertEquals("topk-kd on the GPU takes vocabularies up to 393216, got 393217", over.getMessage());
        assertEquals(new KernelPlan("topk_block_f16", 512, 2, 4 * 65), KernelPlan.topk(2, 2049, DType.F16), "65 words of bits");
        for (int[] shape : new int[][] {{5, 0}, {5, -3}, {0, 10}, {-1, 10}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KernelPlan.kd(shape[0], shape[1], DType.F32));
            assertEquals("a kernel needs rows > 0 and classes > 0, got " + shape[0] + " x " + shape[1], e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> KernelPlan.gjsd(shape[0], shape[1], DType.F16));
            assertThrows(IllegalArgumentException.class, () -> KernelPlan.topk(shape[0], shape[1], DType.BF16));
        }
        assertEquals(new KernelPlan("kd_warp_f16", 256, 1), KernelPlan.kd(1, 1, DType.F16), "one row of one class");
    }

    @Test
    void poolBucketsArePowersOfTwoFrom256() {
        assertEquals(256, DeviceContext.bucket(1));
        assertEquals(256, DeviceContext.bucket(256));
        assertEquals(512, DeviceContext.bucket(257));
        assertEquals(512 * 1024, DeviceContext.bucket(300_000));
        assertEquals(2L << 20, DeviceContext.bucket(1L << 20));
        assertEquals(9_972_006_912L + (2L << 20) - 9_972_006_912L % (2L << 20), DeviceContext.bucket(9_972_006_912L),
                "a 16384 x 152064 fp32 tensor rounds up to 2 MiB, not to 16 GiB");
        assertThrows(IllegalArgumentException.class, () -> DeviceContext.bucket(0));
        // sizes whose bucket a long cannot hold are refused, not rounded to a negative size
        IllegalArgumentException huge = assertThrows(IllegalArgumentException.class, () -> DeviceContext.bucket(Long.MAX_VALUE - 5));
        assertTrue(huge.getMessage().contains(String.valueOf(Long.MAX_VALUE - 5)), huge.getMessage());
        long top = Long.MAX_VALUE / (2L << 20) * (2L << 20);
        assertEquals(top, DeviceContext.bucket(top), "the largest bucket");
    }

    /** A range of a device buffer is checked without overflow: one that ends past the buffer is refused, however large. */
    @Test
    void aRangeOfADeviceBufferMustLieInsideIt() {
        DeviceBuffer b = new DeviceBuffer(null, 0x7000_0000L, 4096); // its owner is only asked on close
        assertEquals(0x7000_0000L + 96, b.at(96, 4000).address());
        assertEquals(0x7000_0000L + 4096, b.at(4096, 0).address(), "an empty range at the end");
        assertThrows(IllegalArgumentException.class, () -> b.at(96, 4001));
        assertThrows(IllegalArgumentException.class, () -> b.at(-1, 10));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.at(8, Long.MAX_VALUE));
        assertTrue(e.getMessage().contains("4096-byte device buffer"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> b.at(Long.MAX_VALUE, 1));
    }

    /**
     * A pinned buffer's size is checked before any CUDA call, and the error says the range it takes exactly: 2 GiB
     * itself is one byte too many (its view is a ByteBuffer, whose limit is an int).
     */
    @Test
    void aPinnedBufferSizeOutsideItsRangeIsRefusedSayingTheRange() {
        for (long bytes : new long[] {0, -1, 1L << 31, Long.MAX_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PinnedBuffer.allocate(bytes));
            assertTrue(e.getMessage().contains("1 to 2147483647 bytes") && e.getMessage().contains("got " + bytes), e.getMessage());
        }
    }

    private static CublasLt.Shape shape(boolean transA, boolean transB, int m, int n, int k, int lda, int ldb, int ldd) {
        return new CublasLt.Shape(transA, transB, m, n, k, CublasLt.Type.F32, lda, ldb, ldd, CublasLt.Epilogue.NONE, 0);
    }

    /** The message of the IllegalArgumentException {@code make} must raise, checked to name the field and the value wanted. */
    private static void refused(Runnable make, String... named) {
        String msg = assertThrows(IllegalArgumentException.class, make::run).getMessage();
        for (String n : named) {
            assertTrue(msg.contains(n), "'" + msg + "' should name " + n);
        }
    }

    /**
     * A GEMM shape is checked where it is made, before any CUDA call: positive sizes, leading dimensions no smaller
     * than the rows of the matrix as stored (which the transposes decide), sizes whose byte extents fit a long, both
     * types given. Shapes at the limits are taken.
     */
    @Test
    void aGemmShapeIsCheckedWhereItIsMade() {
        // at the limits: each leading dimension equal to its matrix's stored rows, in every transpose
        assertEquals(7, shape(false, false, 5, 3, 7, 5, 7, 5).k());
        assertEquals(7, shape(true, false, 5, 3, 7, 7, 7, 5).lda());
        assertEquals(3, shape(false, true, 5, 3, 7, 5, 3, 5).ldb());
        assertEquals(1, shape(true, true, 1, 1, 1, 1, 1, 1).m());
        assertEquals(Integer.MAX_VALUE, shape(false, false, Integer.MAX_VALUE, 1, 1, Integer.MAX_VALUE, 1, Integer.MAX_VALUE).m());

        refused(() -> shape(false, false, 0, 3, 7, 5, 7, 5), "m", ">= 1", "0");
        refused(() -> shape(false, false, 5, -3, 7, 5, 7, 5), "n", ">= 1", "-3");
        refused(() -> shape(false, false, 5, 3, 0, 5, 7, 5), "k", ">= 1");
        // A is m x k as stored, k x m when transposed
        refused(() -> shape(false, false, 5, 3, 7, 4, 7, 5), "lda", ">= 5", "4");
        refused(() -> shape(true, false, 5, 3, 7, 5, 7, 5), "lda", ">= 7", "5");
        refused(() -> shape(false, false, 5, 3, 7, -5, 7, 5), "lda");
        // B is k x n as stored, n x k when transposed
        refused(() -> shape(false, false, 5, 3, 7, 5, 6, 5), "ldb", ">= 7", "6");
        refused(() -> shape(false, true, 5, 3, 7, 5, 2, 5), "ldb", ">= 3", "2");
        refused(() -> shape(false, false, 5, 3, 7, 5, 7, 4), "ldd", ">= 5", "4");
        // extents of more bytes than a long counts: A of lda x k fp32 elements
        int big = Integer.MAX_VALUE;
        refused(() -> shape(false, false, big, 3, big, big, big, big), "A", "bytes");
        refused(() -> shape(false, false, 5, big, big, 5, big, big), "B", "bytes");
        refused(() -> new CublasLt.Shape(false, false, 5, 3, 7, null, 5, 7, 5, CublasLt.Epilogue.NONE, 0), "ab");
        refused(() -> new CublasLt.Shape(false, false, 5, 3, 7, CublasLt.Type.F32, 5, 7, 5, null, 0), "epilogue");
        // the ReLU bit-mask: at least m bits a column, a multiple of 128, and n columns of it counted in a long
        assertEquals(128, new CublasLt.Shape(false, false, 5, 3, 7, CublasLt.Type.BF16, 5, 7, 5, CublasLt.Epilogue.RELU_AUX_BIAS, 128).auxLd());
        refused(() -> new CublasLt.Shape(false, false, 5, 3, 7, CublasLt.Type.F32, 5, 7, 5, CublasLt.Epilogue.DRELU_BGRAD, 64), "128");
        refused(() -> new CublasLt.Shape(false, false, 5, 3, 7, CublasLt.Type.F32, 5, 7, 5, CublasLt.Epilogue.DRELU_BGRAD,
                Long.MAX_VALUE / 128 * 128), "auxLd", "bits");
    }

    @Test
    void errorsNameTheCallTheCodeAndTheMessage() {
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", Cu.tableName(2));
        assertEquals("CUresult 12345", Cu.tableName(12345));
        CudaException e = new CudaException(2, "cuMemAlloc(1073741824 bytes)", "CUDA_ERROR_OUT_OF_MEMORY",
                "asked 1073741824 bytes, 1024 of 81559224320 bytes free on NVIDIA H100");
        assertEquals("cuMemAlloc(1073741824 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (2): asked 1073741824 bytes, 1024 of "
                + "81559224320 bytes free on NVIDIA H100", e.getMessage());
        // without a driver, a failure is still named (from the table)
        CudaException f = Cu.failure(209, "cuModuleLoadData");
        assertEquals("CUDA_ERROR_NO_BINARY_FOR_GPU", f.errorName());
        assertTrue(f.getMessage().startsWith("cuModuleLoadData failed: CUDA_ERROR_NO_BINARY_FOR_GPU (209)"), f.getMessage());
        assertEquals(CudaException.Library.DRIVER, f.library(), "a CUresult");
        assertEquals(CudaException.Library.DRIVER, e.library());
        Cu.check(0, "never fails");
    }

    @Test
    void halfTypesRoundToNearestEven() {
        float[] x = {1f, -2.5f, 1.00048828125f, 3.1415927f, 65504f, 1e-8f};
        assertArrayEquals(x, DType.F32.round(x));
        float[] h = DType.F16.round(x);
        assertEquals(1.0009765625f, DType.F16.round(new float[] {1.00073242f})[0]); // ties go up to even here
        assertEquals(3.140625f, h[3]);
        assertEquals(65504f, h[4]);
        float[] b = DType.BF16.round(x);
        assertEquals(3.140625f, b[3]);
        assertEquals(-2.5f, b[1]);
        assertEquals(2 * x.length, DType.BF16.encode(x).length);
    }

    @Test
    void countedRowsAndKernelLabels() {
        Random rng = new Random(1);
        float[] s = new float[4 * 5];
        for (int i = 0; i < s.length; i++) {
            s[i] = (float) rng.nextGaussian();
        }
        LogitBatch all = LogitBatch.ofLabels(4, 5, s, new int[] {0, 4, 2, 1});
        assertNull(CudaBackend.countedMask(all), "every row counts: no mask");
        assertArrayEquals(new int[] {0, 4, 2, 1}, CudaBackend.kernelLabels(all, true));
        assertNull(CudaBackend.kernelLabels(all, false));
        LogitBatch ignored = LogitBatch.ofLabels(4, 5, s, new int[] {0, LogitBatch.IGNORE_INDEX, 2, 1});
        assertArrayEquals(new byte[] {1, 0, 1, 1}, CudaBackend.countedMask(ignored));
        assertArrayEquals(new int[] {0, -1, 2, 1}, CudaBackend.kernelLabels(ignored, true));
        LogitBatch unlabeled = LogitBatch.ofLabels(4, 5, s, new int[] {LogitBatch.UNLABELED, 3, LogitBatch.IGNORE_INDEX, 1});
        assertArrayEquals(new byte[] {1, 1, 0, 1}, CudaBackend.countedMask(unlabeled), "an unlabeled row counts");
        assertArrayEquals(new int[] {-1, 3, -1, 1}, CudaBackend.kernelLabels(unlabeled, true), "and has no label in the kernel");
        LogitBatch teacher = LogitBatch.of(4, 5, s, s, TeacherValues.LOGITS, new int[] {0, 1, 2, 3}).withRowMask(
                new boolean[] {true, true, false, true});
        assertArrayEquals(new byte[] {1, 1, 0, 1}, CudaBackend.countedMask(teacher));
    }

    /** The kernel flags a top-k row's excess mass at the bound the CPU loss and the stores take. */
    @Test
    void theKernelsTopKMassBoundIsTheCpuLosss() throws Exception {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("constexpr float TOPK_MASS_TOLERANCE = ([0-9.eE+-]+)f;")
                .matcher(Files.readString(Path.of("src/main/cuda/row_math.cuh")));
        assertTrue(m.find(), "row_math.cuh defines TOPK_MASS_TOLERANCE");
        assertEquals((float) org.distill4j.loss.TopKKd.MASS_TOLERANCE, Float.parseFloat(m.group(1)));
        assertTrue(KernelImage.source().contains("known > 1.f + distill::TOPK_MASS_TOLERANCE"), "the top-k kernel reads it");
    }

    @Test
    void theJarShipsEveryKernelAndItsSources() throws Exception {
        assertEquals(Files.readString(Path.of("src/main/cuda/distill_losses.cu")), KernelImage.source());
        for (var h : KernelImage.headers().entrySet()) {
            assertEquals(Files.readString(Path.of("src/main/cuda", h.getKey())), h.getValue(), h.getKey());
        }
        java.util.Set<String> included = new java.util.TreeSet<>();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^#include \"([^\"]+)\"").matcher(KernelImage.source());
        while (m.find()) {
            included.add(m.group(1));
        }
        assertEquals(included, new java.util.TreeSet<>(KernelImage.HEADERS), "NVRTC gets every header the source includes");
        byte[] fatbin = KernelImage.fatbin();
        Assumptions.assumeTrue(fatbin != null, "the build had no nvcc: only the NVRTC sources ship");
        String image = new String(fatbin, StandardCharsets.ISO_8859_1);
        for (String kernel : new String[] {"kd_warp_f32", "kd_warp_f16", "kd_warp_bf16", "kd_block_f32", "kd_block_f16", "kd_block_bf16",
                "gjsd_warp_f32", "gjsd_block_bf16", "topk_warp_f16", "topk_block_f32", "fill_uniform_bf16", "unfused_log_softmax_bf16", "unfused_kd_grad_f32",
                "unfused_row_sums_f32", "unpack_topk_rows", "unpack_dense_rows", "mlp_bias_act_f32", "mlp_bias_act_bf16out",
                "mlp_act_backward_f32", "mlp_bias_grad_f32", "mlp_adam_f32", "mlp_sgd_f32", "mlp_dropout_f32", "mlp_dropout_bf16",
                "mlp_dropout_backward_f32", "mlp_act_backward_bf16out", "mlp_to_bf16", "mlp_step_guard"}) {
            assertTrue(image.contains(kernel), kernel + " is in the fatbin");
        }
        assertEquals("sm_80 sm_86 sm_89 sm_90 compute_90", KernelImage.info().getProperty("targets"), KernelImage.info().toString());
    }
}
