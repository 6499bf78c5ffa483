package org.distill4j.cuda;

/**
 * Which kernel runs a batch of rows, with what launch shape. Rows up to {@link #WARP_MAX_V} wide get one
 * warp each (8 rows per 256-thread block: V = 10 keeps most of a block busy on other rows); wider rows
 * get a 512-thread block each. The kernels loop over rows with a grid stride, so the grid is capped.
 *
 * @param function    the kernel's name in the fatbin, e.g. {@code kd_block_bf16}
 * @param block       threads per block
 * @param grid        blocks
 * @param sharedBytes dynamic shared memory per block (above the function's default, 48 KiB less its static shared
 *                    memory, {@link DeviceContext} opts the function in)
 * @param cluster     blocks per thread-block cluster (1: no cluster; more needs sm_90 and a grid that is a
 *                    multiple of it)
 */
public record KernelPlan(String function, int block, int grid, int sharedBytes, int cluster) {
    /**
     * Checks the launch shape.
     *
     * @throws IllegalArgumentException naming the function, if {@code block}, {@code grid} or {@code cluster} is not
     *                                  {@code > 0}, {@code sharedBytes} is negative, or the grid is not a multiple of the
     *                                  cluster
     */
    public KernelPlan {
        if (block <= 0 || grid <= 0 || sharedBytes < 0 || cluster <= 0 || grid % cluster != 0) {
            throw new IllegalArgumentException(function + ": invalid launch shape: block " + block + ", grid " + grid + ", "
                    + sharedBytes + " bytes of dynamic shared memory, cluster " + cluster + " (the grid must be a multiple of it)");
        }
    }

    /** A plan without a cluster. */
    public KernelPlan(String function, int block, int grid, int sharedBytes) {
        this(function, block, grid, sharedBytes, 1);
    }

    /** A plan without dynamic shared memory. */
    public KernelPlan(String function, int block, int grid) {
        this(function, block, grid, 0);
    }

    /** The widest row the warp-per-row kernels take. */
    public static final int WARP_MAX_V = 2048;
    /** Grid cap: enough blocks to fill any current GPU many times over. */
    static final int MAX_GRID = 65_535;

    /** The fused KD / CE kernel for {@code rows} rows of width {@code v}. */
    public static KernelPlan kd(int rows, int v, DType dtype) {
        return rowKernel("kd", rows, v, dtype);
    }

    /** The fused generalized-JSD kernel ({@code 0 < beta < 1}). */
    public static KernelPlan gjsd(int rows, int v, DType dtype) {
        return rowKernel("gjsd", rows, v, dtype);
    }

    /**
     * The top-k KD kernel; the block shape takes a V-bit membership bitmap in dynamic shared memory, which
     * {@link #MAX_DYNAMIC_SHARED} caps at V = 393,216 (a 48 KiB bitmap: beside the kernel's static shared memory,
     * past the default, so the function is opted in).
     */
    public static KernelPlan topk(int rows, int v, DType dtype) {
        KernelPlan p = rowKernel("topk", rows, v, dtype);
        if (p.block() == 256) {
            return p;
        }
        long bytes = 4L * ((v + 31) / 32);
        if (bytes > MAX_DYNAMIC_SHARED) {
            throw new IllegalArgumentException("topk-kd on the GPU takes vocabularies up to " + (MAX_DYNAMIC_SHARED * 8) + ", got " + v);
        }
        return new KernelPlan(p.function(), p.block(), p.grid(), (int) bytes);
    }

    static final int MAX_DYNAMIC_SHARED = 48 * 1024;

    private static KernelPlan rowKernel(String family, int rows, int v, DType dtype) {
        if (rows <= 0 || v <= 0) {
            throw new IllegalArgumentException("a kernel needs rows > 0 and classes > 0, got " + rows + " x " + v);
        }
        if (v <= WARP_MAX_V) {
            int rowsPerBlock = 256 / 32;
            return new KernelPlan(family + "_warp_" + dtype.suffix(), 256, (int) Math.min(MAX_GRID, ((long) rows + rowsPerBlock - 1) / rowsPerBlock));
        }
        return new KernelPlan(family + "_block_" + dtype.suffix(), 512, Math.min(MAX_GRID, rows));
    }
}
