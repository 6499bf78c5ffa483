package org.distill4j.cuda;

/**
 * How the fused KD / cross-entropy kernel runs a batch of rows.
 * <ul>
 *   <li><b>Tiled</b> ({@code kd_tile_<t>_c<C>}) when a row is wider than {@link KernelPlan#WARP_MAX_V} and the
 *   rows allow 16-byte loads ({@code V * sizeof} and every pointer a multiple of 16 bytes): one row per
 *   cluster of {@code C} blocks of {@value #TILE_BLOCK} threads, each block owning a {@code chunk} of the
 *   row, whose first {@code cached} elements of student and teacher it keeps in shared memory between the
 *   two passes. Each input element is then read from memory once (the uncached rest of a chunk twice, the
 *   second time mostly from L2). {@code C} is the smallest of 1, 2, 4, 8 whose blocks hold at least
 *   {@value #CACHED_ENOUGH} of the row with the shared memory sized for {@value #TILE_BLOCKS_PER_SM} blocks per
 *   multiprocessor; where 8 such blocks hold less, the same for one block per multiprocessor (twice the cache
 *   per block), staged (below); failing both, 8 blocks at two per multiprocessor. A device whose
 *   multiprocessors cannot hold C such blocks at once (fewer than C / blocks-per-multiprocessor of them) gets
 *   the largest C it holds. {@code C > 1} needs thread-block clusters (sm_90); {@link #tile} also takes the sizes between (3, 5, 6, 7: merged as the next
 *   power of two, its missing blocks empty) and {@code C = 16}, a non-portable size, for tests and benchmarks.
 *   Fewer, fuller blocks beat more, whole ones: on an H100 a row 89% cached by C blocks ran 3-17% faster than
 *   the whole row cached by 2C, and one 75% cached ran 3-7% slower (benchmarks/results, the
 *   2026-11-22 runs at 0418652 and after): each doubling of C adds a cluster barrier to every row and leaves
 *   more multiprocessors idle, as clusters are placed within a GPC.</li>
 *   <li><b>Two-pass</b> ({@link KernelPlan#kd}) otherwise: a warp or a block per row, reading it twice.</li>
 * </ul>
 *
 * A tiled plan may also <b>prefetch</b> ({@link Prefetch}): where its grid has fewer clusters than rows, each
 * cluster loops over rows and loads its next row's cached part into shared memory before it gets there, either
 * during the current row's pass 2, into the words that pass frees ({@link Prefetch#DURING_PASS_2}), or from the
 * start of the current row, into a second buffer ({@link Prefetch#DOUBLE_BUFFER}: the loads overlap the whole
 * row, for half the cache per row). {@link #choose} does not prefetch (it launches a cluster per row);
 * {@link #pipelined} does, on a grid of the clusters that fit the device at once
 * ({@link DeviceContext#residentClusters}), and {@link #doubleBuffered} plans the second form.
 * <p>
 * A tiled plan copies a row into shared memory as one group (issued by pass 1, or prefetched by the previous
 * row's pass 2) and pass 1 waits for all of it. A <b>staged</b> plan ({@link #withStaging}) copies it in four
 * groups and pass 1 starts on the first group's elements while the later ones are in flight. {@link #choose}
 * stages the plans whose block is alone on its multiprocessor (nothing else hides that wait): on an H100 at
 * b8cb03b, staging every plan made fp32 rows of 152064 at one block per multiprocessor 8-12% faster and the
 * plans at two blocks per multiprocessor 1-8% slower. Staging changes when elements arrive, not the order in
 * which they are summed: both give bit-identical results.
 *
 * @param kernel   the launch
 * @param chunk    elements of a row per block (tiled), 0 for the two-pass kernels
 * @param cached   elements of a block's chunk kept in shared memory per row (tiled), 0 for the two-pass kernels
 * @param prefetch how a looping cluster loads its next row's cached part ahead of time (tiled)
 * @param staged   whether pass 1 issues its copies in groups and starts on the first before the rest arrive (tiled)
 */
public record KdPlan(KernelPlan kernel, int chunk, int cached, Prefetch prefetch, boolean staged) {
    /** How a tiled plan's looping clusters load their next row ahead of time. */
    public enum Prefetch {
        /** Each row's cached part is loaded at the start of its pass 1. */
        NONE,
        /** During a row's pass 2, each thread copies its words of the next row into the words it has just used. */
        DURING_PASS_2,
        /** Two rows in the cache: the next row's copies are issued into the other buffer as a row starts. */
        DOUBLE_BUFFER;

        /** Rows the cache holds at once. */
        public int buffers() {
            return this == DOUBLE_BUFFER ? 2 : 1;
        }
    }

    /** Threads per block of the tiled kernels (their {@code __launch_bounds__}). */
    public static final int TILE_BLOCK = 512;
    /** Blocks per multiprocessor the tiled kernels are sized for (their {@code __launch_bounds__} minimum). */
    public static final int TILE_BLOCKS_PER_SM = 2;
    /**
     * Shared memory per block kept out of the cache: the kernel's static shared memory (1104 bytes at 8d44434; room
     * for 2048) and the 1 KiB the driver reserves per block. A GPU test checks that a whole cache leaves room for
     * {@link #TILE_BLOCKS_PER_SM} blocks.
     */
    static final int SHARED_RESERVE = 2048 + 1024;
    /** The cluster sizes {@link #choose} picks from: the portable ones. */
    private static final int[] CLUSTERS = {1, 2, 4, 8};
    /** The fraction of a row its C blocks must cache for {@link #choose} to stop doubling C (see the class comment). */
    public static final double CACHED_ENOUGH = 0.85;
    /**
     * The largest cluster a tiled kernel takes ({@link #tile}): 16 blocks is a non-portable size, which H100 and
     * H200 launch once the function allows it ({@link DeviceContext} sets that attribute).
     */
    public static final int MAX_CLUSTER = 16;
    /** The most clusters a tiled launch has (C x 65535 blocks at most); more rows loop. */
    public static final int MAX_CLUSTERS = 65_535;

    /** Flags of the tiled kernels' last argument (distill_losses.cu: TILE_PREFETCH, TILE_ONE_GROUP, TILE_DOUBLE). */
    private static final int FLAG_PREFETCH = 1;
    private static final int FLAG_ONE_GROUP = 2;
    private static final int FLAG_DOUBLE = 4;

    /** A plan whose tiled pass 1 issues its copies as one group (the default). */
    public KdPlan(KernelPlan kernel, int chunk, int cached, Prefetch prefetch) {
        this(kernel, chunk, cached, prefetch, false);
    }

    /** This plan with pass 1's copies issued in four groups ({@code staged}) or in one. */
    public KdPlan withStaging(boolean staged) {
        return new KdPlan(kernel, chunk, cached, prefetch, staged);
    }

    /** Whether this is a tiled plan (its kernel takes {@code chunk, cached} after the common arguments). */
    public boolean tiled() {
        return chunk > 0;
    }

    /** The two-pass kernels' plan. */
    public static KdPlan twoPass(int rows, int v, DType dtype) {
        return new KdPlan(KernelPlan.kd(rows, v, dtype), 0, 0, Prefetch.NONE);
    }

    /**
     * The plan for {@code rows} rows of width {@code v} on a device with {@code limits}, for student, teacher
     * and gradient at {@code addresses} (0 for an absent one).
     */
    public static KdPlan choose(DeviceLimits limits, int rows, int v, DType dtype, long... addresses) {
        KdPlan two = choose(limits, TILE_BLOCKS_PER_SM, rows, v, dtype, addresses);
        if (!two.tiled() || cachedEnough(two, v)) {
            return two;
        }
        KdPlan one = choose(limits, 1, rows, v, dtype, addresses);
        return cachedEnough(one, v) ? one.withStaging(true) : two;
    }

    /** Whether a tiled plan's blocks cache at least {@link #CACHED_ENOUGH} of a row of {@code v}. */
    private static boolean cachedEnough(KdPlan plan, int v) {
        return (long) plan.kernel().cluster() * plan.cached() >= CACHED_ENOUGH * v;
    }

    /** {@link #choose(DeviceLimits, int, int, DType, long...)} with the shared memory sized for {@code blocksPerSm} blocks. */
    public static KdPlan choose(DeviceLimits limits, int blocksPerSm, int rows, int v, DType dtype, long... addresses) {
        return choose(limits, blocksPerSm, Prefetch.NONE, rows, v, dtype, addresses);
    }

    /**
     * The tiled plan that keeps two rows in each block's shared memory ({@link Prefetch#DOUBLE_BUFFER}): its
     * cluster is chosen as {@link #choose} does, for half the cache per row, and it launches a cluster per row
     * (nothing to prefetch) until {@link #pipelined} gives it a grid of looping clusters. Where the rows do not
     * allow the tiled kernels, the two-pass plan.
     */
    public static KdPlan doubleBuffered(DeviceLimits limits, int blocksPerSm, int rows, int v, DType dtype, long... addresses) {
        return choose(limits, blocksPerSm, Prefetch.DOUBLE_BUFFER, rows, v, dtype, addresses);
    }

    private static KdPlan choose(DeviceLimits limits, int blocksPerSm, Prefetch prefetch, int rows, int v, DType dtype,
                                 long... addresses) {
        if (blocksPerSm < 1 || blocksPerSm > TILE_BLOCKS_PER_SM) {
            throw new IllegalArgumentException("the tiled kd kernels run 1 or " + TILE_BLOCKS_PER_SM + " blocks per multiprocessor, not "
                    + blocksPerSm);
        }
        KdPlan twoPass = twoPass(rows, v, dtype);
        if (v <= KernelPlan.WARP_MAX_V || ((long) v * dtype.bytes()) % 16 != 0) {
            return twoPass;
        }
        for (long a : addresses) {
            if (a % 16 != 0) {
                return twoPass;
            }
        }
        int perLoad = 16 / dtype.bytes();
        int capacity = capacity(limits, blocksPerSm, dtype) / prefetch.buffers() / perLoad * perLoad;
        if (capacity == 0) {
            return twoPass;
        }
        int cluster = 1;
        for (int c : CLUSTERS) {
            // a cluster's blocks are resident together: no more of them than the device's multiprocessors hold
            if (c > 1 && (!limits.clusters() || c > (long) limits.multiprocessors() * blocksPerSm)) {
                break;
            }
            cluster = c;
            if ((long) c * capacity >= CACHED_ENOUGH * v) {
                break;
            }
        }
        return tile(limits, rows, v, dtype, cluster, capacity, MAX_CLUSTERS, prefetch);
    }

    /**
     * Elements of student and of teacher that one block of a tiled kernel can keep in shared memory when
     * {@code blocksPerSm} blocks share a multiprocessor (a multiple of the elements in 16 bytes; 0 if none).
     */
    public static int capacity(DeviceLimits limits, int blocksPerSm, DType dtype) {
        int perLoad = 16 / dtype.bytes();
        long budget = Math.min(limits.sharedPerBlockOptin(), limits.sharedPerSm() / blocksPerSm) - SHARED_RESERVE;
        return (int) Math.max(0, budget / (2L * dtype.bytes()) / perLoad * perLoad);
    }

    /**
     * A tiled plan with a given cluster, at most {@code capacity} cached elements per block (0: none) and at
     * most {@code maxClusters} clusters, each looping over every {@code clusters}-th row; for tests and
     * benchmarks that cover each shape. {@link #choose} launches one cluster per row (up to
     * {@link #MAX_CLUSTERS}): the hardware then starts a row wherever a multiprocessor frees up, where a
     * grid of resident clusters would leave any that do not fit at once for a second wave.
     */
    public static KdPlan tile(DeviceLimits limits, int rows, int v, DType dtype, int cluster, int capacity, int maxClusters) {
        return tile(limits, rows, v, dtype, cluster, capacity, maxClusters, Prefetch.NONE);
    }

    /**
     * {@link #tile(DeviceLimits, int, int, DType, int, int, int)}, each looping cluster loading its next row
     * ahead as {@code prefetch} says (which changes nothing where every cluster takes one row).
     * {@code capacity} is per row: {@link Prefetch#DOUBLE_BUFFER} takes twice its shared memory.
     */
    public static KdPlan tile(DeviceLimits limits, int rows, int v, DType dtype, int cluster, int capacity, int maxClusters,
                              Prefetch prefetch) {
        int perLoad = 16 / dtype.bytes();
        if (((long) v * dtype.bytes()) % 16 != 0 || v <= 0 || rows <= 0) {
            throw new IllegalArgumentException("the tiled kd kernels take rows of a multiple of 16 bytes, got " + rows + " x " + v + " "
                    + dtype);
        }
        // any portable size (a cluster that is not a power of two is merged as the next one, its missing blocks empty)
        int portable = DeviceContext.PORTABLE_CLUSTER;
        if (cluster < 1 || (cluster > portable && cluster != MAX_CLUSTER) || (cluster > 1 && !limits.clusters())) {
            throw new IllegalArgumentException("cluster of " + cluster + " blocks: the tiled kd kernels take 1 to " + portable + " or "
                    + MAX_CLUSTER + (limits.clusters() ? "" : ", and this device only 1"));
        }
        // in long: v + cluster - 1 overflows an int for the widest rows
        long perBlock = ((long) v + cluster - 1) / cluster;
        int chunk = (int) ((perBlock + perLoad - 1) / perLoad * perLoad);
        int cached = Math.min(chunk, Math.max(0, capacity) / perLoad * perLoad);
        if (maxClusters < 1) {
            throw new IllegalArgumentException("a tiled kd plan needs at least one cluster, got " + maxClusters);
        }
        int grid = cluster * Math.min(rows, Math.min(maxClusters, MAX_CLUSTERS));
        String name = "kd_tile_" + dtype.suffix() + "_c" + cluster;
        int shared = prefetch.buffers() * 2 * cached * dtype.bytes();
        return new KdPlan(new KernelPlan(name, TILE_BLOCK, grid, shared, cluster), chunk, cached, prefetch);
    }

    /**
     * The pipelined form of a tiled plan: the same kernel, cluster and cache as {@code plan}, on a grid of
     * {@code waves * residentClusters} clusters (as many as fit the device at once, times {@code waves}), each
     * looping over rows and prefetching the next one: as {@code plan} does, {@link Prefetch#DURING_PASS_2} if it
     * does not. A two-pass plan is returned as it is.
     *
     * @param residentClusters {@link DeviceContext#residentClusters} of {@code plan.kernel()}
     */
    public static KdPlan pipelined(DeviceLimits limits, KdPlan plan, int rows, int v, DType dtype, int residentClusters, int waves) {
        if (!plan.tiled()) {
            return plan;
        }
        if (residentClusters < 1 || waves < 1) {
            throw new IllegalArgumentException("a pipelined kd plan needs at least one resident cluster and one wave, got "
                    + residentClusters + " clusters x " + waves + " waves");
        }
        long clusters = Math.min((long) residentClusters * waves, MAX_CLUSTERS);
        Prefetch prefetch = plan.prefetch() == Prefetch.NONE ? Prefetch.DURING_PASS_2 : plan.prefetch();
        KdPlan piped = tile(limits, rows, v, dtype, plan.kernel().cluster(), plan.cached(), (int) clusters, prefetch);
        return piped.withStaging(plan.staged());
    }

    /**
     * The plan for {@code rows} rows of width {@code v} on {@code ctx}'s device with the given prefetch:
     * {@link #choose} for {@link Prefetch#NONE}, else its {@link #pipelined} form (for
     * {@link Prefetch#DOUBLE_BUFFER}, of {@link #doubleBuffered}) on the clusters the device holds at once.
     * Where the rows do not allow the tiled kernels, the two-pass plan. One exception: for
     * {@link Prefetch#DURING_PASS_2}, a plan of single blocks that cache part of a row (bf16 V = 32000 on an
     * H100: 28416 of 32000) loops over the rows on the same grid without copying ahead: each block then streams
     * its uncached words during pass 1, and in two H100 runs (4cf8f3e, 46121ca) that was 2-7% faster than
     * prefetching (0.80-0.82 against 0.75-0.79 of copy bandwidth at 4096 rows, 0.85-0.87 against 0.79-0.85 at
     * 16384). Partly cached plans of 2 to 8 blocks, and whole rows in one block, measured faster prefetching.
     */
    public static KdPlan forDevice(DeviceContext ctx, Prefetch prefetch, int rows, int v, DType dtype, long... addresses) {
        DeviceLimits limits = ctx.limits();
        KdPlan plan = switch (prefetch) {
            case NONE, DURING_PASS_2 -> choose(limits, rows, v, dtype, addresses);
            case DOUBLE_BUFFER -> doubleBuffered(limits, TILE_BLOCKS_PER_SM, rows, v, dtype, addresses);
        };
        if (prefetch == Prefetch.NONE || !plan.tiled()) {
            return plan;
        }
        int resident = ctx.residentClusters(plan.kernel());
        if (prefetch == Prefetch.DURING_PASS_2 && plan.kernel().cluster() == 1 && plan.cached() < plan.chunk()) {
            return tile(limits, rows, v, dtype, 1, plan.cached(), resident, Prefetch.NONE).withStaging(plan.staged());
        }
        return pipelined(limits, plan, rows, v, dtype, resident, 1);
    }


    /**
     * Queues the kernel with the common arguments of {@code kd_*} (see distill_losses.cu), adding
     * {@code chunk, cached, flags} for the tiled kernels.
     */
    public void launch(DeviceContext ctx, Object s, Object t, Object labels, Object counted, Object grad, Object rowOut, int rows, int v,
                       float invT, float kdWeight, float alpha, float t2, float scale, int teacherProbs, int needS1) {
        if (tiled()) {
            ctx.launch(kernel, s, t, labels, counted, grad, rowOut, rows, v, invT, kdWeight, alpha, t2, scale, teacherProbs, needS1, chunk,
                    cached, flags());
        } else {
            ctx.launch(kernel, s, t, labels, counted, grad, rowOut, rows, v, invT, kdWeight, alpha, t2, scale, teacherProbs, needS1);
        }
    }

    /** The tiled kernels' last argument. */
    int flags() {
        int f = staged ? 0 : FLAG_ONE_GROUP;
        return switch (prefetch) {
            case NONE -> f;
            case DURING_PASS_2 -> f | FLAG_PREFETCH;
            case DOUBLE_BUFFER -> f | FLAG_DOUBLE;
        };
    }

    /** The device address of a kernel pointer argument: a {@link DeviceBuffer}, {@link DevicePtr} or null (0). */
    public static long address(Object pointer) {
        if (pointer == null) {
            return 0;
        }
        if (pointer instanceof DeviceBuffer b) {
            return b.address();
        }
        if (pointer instanceof DevicePtr p) {
            return p.address();
        }
        throw new IllegalArgumentException("a kernel pointer argument is a DeviceBuffer, DevicePtr or null, not a "
                + pointer.getClass().getSimpleName());
    }
}
