package org.distill4j.loss;

import org.distill4j.testing.Inputs;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The per-thread scratch arrays of the CPU losses: reused across calls, a level of its own (also reused) for a loss
 * inside a loss, and never read before written (a loss's bits, on a whole batch or on rows of it read in place, do not
 * depend on what ran before it on its thread).
 */
class ScratchTest {

    @Test
    void aThreadsScratchIsReusedAndALossInsideALossGetsItsOwn() throws Exception {
        // on a thread of its own: this one's scratch holds whatever earlier tests left
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                reuse();
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        t.start();
        t.join();
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
    }

    private static void reuse() {
        double[] first;
        double[] innerFirst;
        Scratch level1;
        try (Scratch a = Scratch.acquire()) {
            first = a.doubles(0, 100);
            assertTrue(first.length >= 100);
            try (Scratch inner = Scratch.acquire()) {
                assertNotSame(a, inner, "in use: a wrapper's inner loss must not get its caller's rows");
                innerFirst = inner.doubles(0, 100);
                assertNotSame(first, innerFirst);
                level1 = inner;
                try (Scratch innermost = Scratch.acquire()) {
                    assertNotSame(inner, innermost);
                    assertNotSame(a, innermost);
                }
            }
            assertSame(first, a.doubles(0, 50), "a slot large enough is kept");
            assertTrue(a.doubles(3, 10).length >= 10);
        }
        try (Scratch again = Scratch.acquire()) {
            assertSame(first, again.doubles(0, 100), "the next call on the thread reuses the rows");
            try (Scratch inner = Scratch.acquire()) {
                assertSame(level1, inner, "a loss inside a loss keeps its level between calls");
                assertSame(innerFirst, inner.doubles(0, 100));
            }
            double[] grown = again.doubles(0, 1000);
            assertTrue(grown.length >= 1000 && grown != first, "grown when a call needs more");
        }
        try (Scratch f = Scratch.acquire()) {
            float[] full = f.floats(0, 300);
            assertEquals(300, full.length, "float slots are of the exact length (they become a batch's buffers)");
            assertSame(full, f.floats(0, 300));
            float[] last = f.floats(0, 100);
            assertEquals(100, last.length);
            assertSame(full, f.floats(0, 300), "a slot keeps two lengths: a batch's full slices and its short last one");
            assertSame(last, f.floats(0, 100));
            assertNotSame(full, f.floats(1, 300), "each slot its own");
            float[] third = f.floats(0, 200); // after 100: replaces 300, the one used before
            assertSame(third, f.floats(0, 200));
            assertSame(last, f.floats(0, 100), "the length used last stays");
            assertNotSame(full, f.floats(0, 300), "the other one was replaced");
            int huge = Scratch.MAX_KEPT_FLOATS + 1;
            assertNotSame(f.floats(2, huge), f.floats(2, huge), "arrays above the limit are not kept");
        }
        AtomicReference<double[]> other = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try (Scratch s = Scratch.acquire()) {
                other.set(s.doubles(0, 100));
            }
        });
        t.start();
        try {
            t.join();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
        assertNotSame(first, other.get(), "each thread has its own");
    }

    /** Every registered loss, a weighted sum and logit-std around reverse-kl, on small odd shapes. */
    static List<Object[]> cases(Random rng) {
        List<Object[]> out = new ArrayList<>();
        List<LogitLoss> losses = new ArrayList<>();
        for (String name : Losses.names()) {
            losses.add(Losses.create(name, Map.of()));
        }
        losses.add(Losses.create("gjsd", Map.of("beta", 1)));
        losses.add(Losses.create("topk-kd", Map.of("tail", "rest", "temperature", 2)));
        losses.add(LogitStandardization.of(new ReverseKl(2)));
        losses.add(WeightedSum.builder().add(0.3, new CrossEntropy()).add(1, LogitStandardization.of(new Dkd(1, 8, 3, 0)))
                .add(0.5, new TotalVariation(2)).build());
        for (LogitLoss loss : losses) {
            for (int v : new int[]{3, 37, 1001}) {
                int rows = 5;
                float[] s = Inputs.logits(rng, rows, v, 2);
                float[] t = Inputs.logits(rng, rows, v, 2);
                if (!(loss instanceof LogitMse)) {
                    t[v + 1] = Float.NEGATIVE_INFINITY; // a zero-mass class too
                }
                int[] y = Inputs.labels(rng, rows, v);
                LogitBatch b;
                if (loss.needsTopK()) {
                    int k = Math.min(v, 3);
                    int[] ids = new int[rows * k];
                    float[] lps = new float[rows * k];
                    for (int r = 0; r < rows; r++) {
                        for (int j = 0; j < k; j++) {
                            ids[r * k + j] = (r + 2 * j) % v; // distinct: V is odd
                            lps[r * k + j] = (float) (-1.3 - 0.7 * j - 0.1 * r);
                        }
                    }
                    b = LogitBatch.ofTopK(rows, v, s, ids, lps, k, y);
                } else {
                    b = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, y);
                }
                out.add(new Object[]{loss, b});
            }
        }
        return out;
    }

    /**
     * The same losses on a thread whose scratch was just filled with NaN (at a larger size than any case needs), and on
     * a fresh thread: the same bits. A loss that read a scratch element before writing it would differ (NaN spreads).
     */
    @Test
    void aLossesBitsDoNotDependOnWhatRanBeforeOnItsThread() throws Exception {
        List<Object[]> cases = cases(new Random(12));
        List<String> fresh = runOnNewThread(cases, false);
        List<String> dirty = runOnNewThread(cases, true);
        assertEquals(2 * cases.size(), fresh.size()); // the whole batch, and rows 1-3 read in place
        for (int i = 0; i < fresh.size(); i++) {
            assertEquals(fresh.get(i), dirty.get(i), "case " + i);
            assertTrue(!fresh.get(i).contains("NaN"), "case " + i + ": " + fresh.get(i));
        }
    }

    private static List<String> runOnNewThread(List<Object[]> cases, boolean poisonFirst) throws Exception {
        List<String> out = new ArrayList<>();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                for (Object[] c : cases) {
                    LogitLoss loss = (LogitLoss) c[0];
                    LogitBatch b = (LogitBatch) c[1];
                    int v = b.classes();
                    if (poisonFirst) {
                        poison(new int[]{b.student().length, 3 * v});
                    }
                    float[] g = Inputs.poisoned(b.student().length);
                    LossResult r = loss.compute(b, g, 0.73f);
                    out.add(loss.name() + " V=" + v + " " + Double.doubleToRawLongBits(r.value()) + " " + new TreeMap<>(r.terms()) + " "
                            + Arrays.hashCode(g) + " " + Arrays.toString(Arrays.copyOf(g, 6)));
                    if (poisonFirst) {
                        poison(new int[]{b.student().length, 3 * v});
                    }
                    float[] rows = Inputs.poisoned(3 * v + 2);
                    LossResult part = loss.computeRows(b, 1, 4, rows, 2, 0.73f); // rows 1-3 in place
                    out.add(loss.name() + " V=" + v + " rows 1-3 " + Double.doubleToRawLongBits(part.value()) + " "
                            + new TreeMap<>(part.terms()) + " " + Arrays.hashCode(Arrays.copyOfRange(rows, 2, rows.length)));
                }
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        t.start();
        t.join();
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        return out;
    }

    /**
     * A weighted sum on a whole batch above {@link Scratch#MAX_KEPT_FLOATS} logits (33 x 131071): its terms' gradient
     * buffer is a slice's, so once the thread's scratch is filled a call allocates nothing batch-sized (it allocated a
     * 17 MB term gradient per call), and value, terms and gradient are the CPU backend's bits.
     */
    @Test
    void aWeightedSumOnABatchAboveTheScratchLimitRunsInBoundedMemoryWithTheBackendsBits() {
        int rows = 33;
        int v = 131071;
        Random rng = new Random(78);
        float[] s = Inputs.logits(rng, rows, v, 2);
        float[] t = Inputs.logits(rng, rows, v, 2);
        int[] y = Inputs.labels(rng, rows, v);
        y[4] = LogitBatch.IGNORE_INDEX;
        LogitBatch b = LogitBatch.of(rows, v, s, t, TeacherValues.LOGITS, y);
        LogitLoss loss = WeightedSum.builder().add(0.3, new CrossEntropy()).add(0.9, new SoftTargetKd(2, 0))
                .add(0.5, new TotalVariation(1)).build();
        float[] grad = Inputs.poisoned(rows * v);
        loss.compute(b, grad, 0.73f); // fills the thread's scratch
        com.sun.management.ThreadMXBean tm = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long id = Thread.currentThread().getId();
        long before = tm.getThreadAllocatedBytes(id);
        LossResult r = loss.compute(b, grad, 0.73f);
        long allocated = tm.getThreadAllocatedBytes(id) - before;
        assertTrue(allocated < 4L << 20, "a call on a batch of 17 MB buffers allocated " + (allocated >> 20)
                + " MB; expected scratch of slice size only (< 4 MB)");
        float[] viaBackend = Inputs.poisoned(rows * v);
        LossResult br;
        try (org.distill4j.backend.CpuBackend cpu = new org.distill4j.backend.CpuBackend(2)) {
            br = cpu.logitLoss(loss, b, viaBackend, 0.73f);
        }
        assertEquals(Double.doubleToRawLongBits(br.value()), Double.doubleToRawLongBits(r.value()),
                "value: compute " + r.value() + ", backend " + br.value());
        assertEquals(br.terms(), r.terms());
        assertEquals(32, r.rows());
        assertTrue(Arrays.equals(viaBackend, grad), "gradient bits of compute and of the backend");
        assertEquals(0.3 * r.terms().get("ce") + 0.9 * r.terms().get("kd") + 0.5 * r.terms().get("tvd"), r.value(), 1e-12 * r.value());
    }

    /** Fills the thread's first three scratch levels with NaN: eight double slots, and four float slots at each length. */
    private static void poison(int[] floatLengths) {
        try (Scratch s0 = Scratch.acquire(); Scratch s1 = Scratch.acquire(); Scratch s2 = Scratch.acquire()) {
            for (Scratch s : new Scratch[]{s0, s1, s2}) {
                for (int slot = 0; slot < 8; slot++) {
                    Arrays.fill(s.doubles(slot, 4096), Double.NaN);
                }
                for (int slot = 0; slot < 4; slot++) {
                    for (int n : floatLengths) {
                        Arrays.fill(s.floats(slot, n), Float.NaN);
                    }
                }
            }
        }
    }
}
