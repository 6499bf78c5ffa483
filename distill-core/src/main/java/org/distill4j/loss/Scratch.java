package org.distill4j.loss;

import java.lang.ref.SoftReference;
import java.util.Arrays;

/**
 * Per-thread scratch arrays for the CPU losses, reused across calls. At large vocabularies (V of 128k-256k) the CPU
 * backend computes one or two rows per slice, and a loss that allocated its V-sized rows per call allocated several
 * megabytes per row (G1 humongous objects); with a thread's scratch kept between calls it allocates them once.
 *
 * <p>Use: {@code try (Scratch sc = Scratch.acquire()) { double[] a = sc.doubles(0, v); ... }}. Double slot {@code i}
 * is an array of at least the asked length; float slot {@code i} ({@link #floats}) one of exactly the asked length, for
 * buffers that become a {@link LogitBatch}'s or a gradient (logit standardization's standardized rows, a weighted sum's
 * term gradient). Their content is left over from an earlier call: losses write before they read.
 *
 * <p>A loss that runs another loss inside (a wrapper) keeps its scratch while the inner loss runs: an acquire while the
 * thread's scratch is in use gets the next level of it, with arrays of its own, kept between calls as well (a
 * logit-std around kd holds its standardized rows at level 0 while kd takes its rows from level 1). The arrays are
 * softly reachable between calls, so they never keep memory the heap needs; float arrays of more than
 * {@link #MAX_KEPT_FLOATS} elements are not kept at all. The wrappers that hold rows in float slots (logit
 * standardization, a weighted sum) compute a large batch in slices of {@link #SLICE_ELEMENTS} logits
 * ({@link #inSlices}), so theirs stay at a slice's size however large the batch. The CPU backend's pool threads end when idle, and take theirs with them.
 */
final class Scratch implements AutoCloseable {
    /**
     * The largest float array a thread keeps between calls: 2^22 (16 MB). The CPU backend's slices need at most
     * {@code max(CHUNK_ELEMENTS, V)} elements per array (2^18, or one row), far below; a larger array is allocated per
     * call, as it was before the scratch existed.
     */
    static final int MAX_KEPT_FLOATS = 1 << 22;

    /**
     * Logits per slice when a wrapper computes a whole batch in slices of rows so that its scratch stays bounded
     * ({@code max(1, SLICE_ELEMENTS / classes)} rows per slice): 2^18, the CPU backend's {@code CHUNK_ELEMENTS}, so the
     * slices, and the bits of their sum in row order, are the backend's.
     */
    static final int SLICE_ELEMENTS = 1 << 18;

    /** One slice of {@link #inSlices}: rows {@code [from, to)}, their gradient from {@code gradOffset} on. */
    @FunctionalInterface
    interface SliceRows {
        LossResult rows(int from, int to, int gradOffset);
    }

    /**
     * Rows {@code [from, to)} of a batch of {@code classes} classes, whose gradient starts at {@code gradOffset}, in
     * slices of {@code max(1, SLICE_ELEMENTS / classes)} rows from {@code from} on, their values, rows and terms summed
     * in row order as the CPU backend sums its slices (so a whole batch gives the backend's bits, on any number of
     * threads). A range of one slice, or a loss that is not row-separable, is one call of {@code rows}. For wrappers
     * whose scratch holds their rows: it then stays at the size of a slice, whatever the batch's. When a slice fails,
     * the whole range runs at once (allocating what it needs), so that an error names the range's own rows, not a
     * slice's.
     */
    static LossResult inSlices(int from, int to, int classes, int gradOffset, boolean rowSeparable, SliceRows rows) {
        final int per = Math.max(1, SLICE_ELEMENTS / classes);
        if (to - from <= per || !rowSeparable) {
            return rows.rows(from, to, gradOffset);
        }
        double value = 0;
        int counted = 0;
        java.util.Map<String, Double> terms = new java.util.LinkedHashMap<>();
        for (int a = from; a < to; a += per) {
            int b = Math.min(to, a + per);
            LossResult r;
            try {
                r = rows.rows(a, b, gradOffset + (a - from) * classes);
            } catch (IllegalArgumentException e) {
                // a loss inside the wrapper names the rows of the slice it was given (its row 0 is row a): the whole range
                // at once names them as the range does, as the CPU backend does when one of its slices fails
                return rows.rows(from, to, gradOffset);
            }
            value += r.value();
            counted += r.rows();
            for (java.util.Map.Entry<String, Double> e : r.terms().entrySet()) {
                terms.merge(e.getKey(), e.getValue(), Double::sum);
            }
        }
        return new LossResult(value, counted, terms);
    }

    private static final ThreadLocal<SoftReference<Scratch>> CACHED = new ThreadLocal<>();

    private double[][] doubles = new double[0][];
    /** Two arrays per float slot ({@code 2 * slot} and {@code 2 * slot + 1}): a batch's full slices and its short last one. */
    private float[][] floats = new float[0][];
    /** Per float slot, which of its two arrays was handed out last (the other is replaced on a miss). */
    private byte[] lastFloat = new byte[0];
    /** The next level, for a loss that runs while this one is in use; null until needed. */
    private Scratch nested;
    private boolean inUse;

    private Scratch() {
    }

    /** This thread's scratch, or, while that is in use (a loss inside a loss), its first level not in use. */
    static Scratch acquire() {
        SoftReference<Scratch> ref = CACHED.get();
        Scratch s = ref == null ? null : ref.get();
        if (s == null) {
            s = new Scratch();
            CACHED.set(new SoftReference<>(s));
        }
        while (s.inUse) { // each level in use is held by its loss, so the chain stays reachable while it runs
            if (s.nested == null) {
                s.nested = new Scratch();
            }
            s = s.nested;
        }
        s.inUse = true;
        return s;
    }

    /** Slot {@code slot}: an array of at least {@code n} doubles, grown (not cleared) as needed. */
    double[] doubles(int slot, int n) {
        if (slot >= doubles.length) {
            doubles = Arrays.copyOf(doubles, slot + 1);
        }
        double[] a = doubles[slot];
        if (a == null || a.length < n) {
            a = new double[n];
            doubles[slot] = a;
        }
        return a;
    }

    /**
     * Float slot {@code slot}: an array of exactly {@code n} floats (not cleared). A slot keeps the two lengths it was
     * last asked for, so a batch's full slices and its shorter last one each find theirs; arrays of more than
     * {@link #MAX_KEPT_FLOATS} are fresh each time.
     */
    float[] floats(int slot, int n) {
        if (n > MAX_KEPT_FLOATS) {
            return new float[n];
        }
        if (slot >= lastFloat.length) {
            floats = Arrays.copyOf(floats, 2 * (slot + 1));
            lastFloat = Arrays.copyOf(lastFloat, slot + 1);
        }
        int i = 2 * slot;
        for (int j = 0; j < 2; j++) {
            float[] a = floats[i + j];
            if (a != null && a.length == n) {
                lastFloat[slot] = (byte) j;
                return a;
            }
        }
        int j = 1 - lastFloat[slot];
        float[] a = new float[n];
        floats[i + j] = a;
        lastFloat[slot] = (byte) j;
        return a;
    }

    /** Gives the arrays back to the thread for its next call. */
    @Override
    public void close() {
        inUse = false;
    }
}
