package org.distill4j.loss;

import java.lang.ref.SoftReference;

/**
 * Per-thread scratch rows for the CPU losses, reused across calls. At large vocabularies (V of 128k-256k) the CPU
 * backend computes one or two rows per slice, and a loss that allocated its V-sized rows per call allocated several
 * megabytes per row (G1 humongous objects); with a thread's scratch kept between calls it allocates them once.
 *
 * <p>Use: {@code try (Scratch sc = Scratch.acquire()) { double[] a = sc.doubles(0, v); ... }}. Slot {@code i} is an
 * array of at least the asked length (its content is left over from an earlier call: losses write before they read).
 * A loss that runs another loss inside (a wrapper) gets fresh arrays, not its caller's, when it acquires while its
 * thread's scratch is in use. The arrays are softly reachable between calls, so they never keep memory the heap needs;
 * the CPU backend's pool threads end when idle, and take theirs with them.
 */
final class Scratch implements AutoCloseable {
    private static final ThreadLocal<SoftReference<Scratch>> CACHED = new ThreadLocal<>();

    private double[][] doubles = new double[0][];
    private boolean inUse;

    private Scratch() {
    }

    /** This thread's scratch, or, while that is in use (a loss inside a loss), a fresh one of its own. */
    static Scratch acquire() {
        SoftReference<Scratch> ref = CACHED.get();
        Scratch s = ref == null ? null : ref.get();
        if (s == null) {
            s = new Scratch();
            CACHED.set(new SoftReference<>(s));
        } else if (s.inUse) {
            return new Scratch(); // not cached: the caller's arrays stay the caller's
        }
        s.inUse = true;
        return s;
    }

    /** Slot {@code slot}: an array of at least {@code n} doubles, grown (not cleared) as needed. */
    double[] doubles(int slot, int n) {
        if (slot >= doubles.length) {
            doubles = java.util.Arrays.copyOf(doubles, slot + 1);
        }
        double[] a = doubles[slot];
        if (a == null || a.length < n) {
            a = new double[n];
            doubles[slot] = a;
        }
        return a;
    }

    /** Gives the arrays back to the thread for its next call. */
    @Override
    public void close() {
        inUse = false;
    }
}
