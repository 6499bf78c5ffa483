package org.distill4j.cuda.nn;

/**
 * The dropout masks of the GPU MLP engine, in Java: the keep rule of {@code mlp_math.cuh} (element
 * {@code offset + i} of a SplitMix64 stream started at {@code mix64(seed)}; a unit is kept when the top 24
 * bits, as a fraction, are at least the drop probability), and how the engine gives every (step, layer)
 * its own stream ({@link #stepSeed}, computed on the host and passed to the kernel). Tests use it to know which units a device step dropped.
 */
public final class MlpDropoutMask {
    private MlpDropoutMask() {
    }

    /** Whether element {@code i} of a launch with {@code (seed, offset)} keeps its unit. */
    public static boolean keep(long seed, long offset, long i, float dropProb) {
        long z = mix64(mix64(seed) + (offset + i) * GOLDEN);
        float u = (z >>> 40) * (1f / 16777216f);
        return u >= dropProb;
    }

    /** The factor a kept unit is multiplied by, computed in fp32 as the kernels do. */
    public static float scale(float dropProb) {
        return 1f / (1f - dropProb);
    }

    /**
     * The seed of step {@code step} (0, 1, ...) of a run seeded with {@code runSeed}: element {@code step} of a SplitMix64
     * stream started at {@code mix64(runSeed)}, so each step has its own stream and the steps of runs seeded s and s + 1
     * share none. ({@code runSeed + step}, as it was, gave seed s + 1 at step k seed s's masks at step k + 1: the runs of
     * {@code --seeds 1,2,3} trained with the same dropout noise, one step apart.)
     */
    public static long stepSeed(long runSeed, long step) {
        return mix64(mix64(runSeed) + step * GOLDEN);
    }

    /** SplitMix64's increment, 2^64 / phi, as the kernel's counter uses it. */
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    /** The counter offset of layer {@code layer}'s mask within a step: 2^40 elements apart. */
    public static long layerOffset(int layer) {
        return (long) layer << 40;
    }

    /** The mask of {@code n} elements of layer {@code layer} at step {@code step}. */
    public static boolean[] mask(long runSeed, long step, int layer, long n, float dropProb) {
        boolean[] m = new boolean[Math.toIntExact(n)];
        long seed = stepSeed(runSeed, step);
        long offset = layerOffset(layer);
        for (int i = 0; i < m.length; i++) {
            m[i] = keep(seed, offset, i, dropProb);
        }
        return m;
    }

    private static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
