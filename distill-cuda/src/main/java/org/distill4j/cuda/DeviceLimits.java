package org.distill4j.cuda;

/**
 * What a device offers the kernel plans: multiprocessors, shared memory and thread-block clusters.
 *
 * @param multiprocessors      streaming multiprocessors
 * @param sharedPerBlockOptin  the most dynamic + static shared memory one block may opt in to, in bytes
 * @param sharedPerSm          shared memory of one multiprocessor, in bytes
 * @param clusters             whether kernels may be launched in thread-block clusters (sm_90 and later)
 */
public record DeviceLimits(int multiprocessors, int sharedPerBlockOptin, int sharedPerSm, boolean clusters) {
    /**
     * Checks the limits.
     *
     * @throws IllegalArgumentException if the multiprocessors or either shared-memory size is not {@code > 0}
     */
    public DeviceLimits {
        if (multiprocessors <= 0 || sharedPerBlockOptin <= 0 || sharedPerSm <= 0) {
            throw new IllegalArgumentException("device limits must be positive: " + multiprocessors + " multiprocessors, "
                    + sharedPerBlockOptin + " bytes of shared memory per block, " + sharedPerSm + " per multiprocessor");
        }
    }

    /** An H100 SXM's limits (132 SMs, 227 KiB per block, 228 KiB per SM, clusters): for plans made without a device. */
    public static final DeviceLimits H100 = new DeviceLimits(132, 227 * 1024, 228 * 1024, true);
}
