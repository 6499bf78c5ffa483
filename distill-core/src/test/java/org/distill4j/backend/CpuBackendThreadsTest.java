package org.distill4j.backend;

import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.Losses;
import org.distill4j.loss.Reduction;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;
import org.distill4j.loss.TopKKd;
import org.distill4j.loss.WeightedSum;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CPU backend's threads: a large batch of a row-separable loss is cut into slices by its shape, computed on
 * several threads and summed in row order. Checked against the loss's own single-threaded {@code compute} on fresh
 * random inputs of odd sizes (37 rows of 301 classes, slices of 3 rows, the last one short), with padded and masked
 * rows and an upstream gradient of 0.7: the gradient must be the same bits, the value and terms equal within
 * {@link #REL} (the sums are grouped by slice), and every thread count must give the same bits.
 */
class CpuBackendThreadsTest {
    /** Relative tolerance of value and terms against compute: double sums in another grouping. */
    private static final double REL = 1e-12;
    private static final int ROWS = 37;
    private static final int V = 301;
    /** Logits per slice in these tests: 3 rows of 301, so 13 slices, the last of one row. */
    private static final int CHUNK = 3 * V + 17;
    private static final float UPSTREAM = 0.7f;
    private static final int[] THREADS = {1, 2, 3, 5};

    private static LogitBatch randomBatch(LogitLoss loss, long seed) {
        Random rng = new Random(seed);
        float[] s = new float[ROWS * V];
        float[] t = new float[ROWS * V];
        for (int i = 0; i < s.length; i++) {
            s[i] = (float) (3 * rng.nextGaussian());
            t[i] = (float) (3 * rng.nextGaussian());
        }
        s[5 * V + 7] = 80f; // an extreme logit
        t[20 * V + 3] = -60f;
        int[] y = new int[ROWS];
        for (int r = 0; r < ROWS; r++) {
            y[r] = r % 11 == 4 ? LogitBatch.IGNORE_INDEX : rng.nextInt(V);
        }
        boolean[] mask = new boolean[ROWS];
        for (int r = 0; r < ROWS; r++) {
            mask[r] = r % 7 != 2;
        }
        LogitBatch b;
        if (loss.needsTopK()) {
            int k = 7;
            int[] ids = new int[ROWS * k];
            float[] lps = new float[ROWS * k];
            for (int r = 0; r < ROWS; r++) {
                for (int j = 0; j < k; j++) {
                    ids[r * k + j] = (int) ((j * 43L + r * 5L) % V); // distinct within a row: 43 * j < V
                    lps[r * k + j] = (float) (-2.0 - rng.nextDouble() - 0.3 * j);
                }
            }
            b = LogitBatch.ofTopK(ROWS, V, s, ids, lps, k, y);
        } else {
            b = LogitBatch.of(ROWS, V, s, t, TeacherValues.LOGITS, y);
        }
        return b.withRowMask(mask);
    }

    private static float[] poisoned() {
        float[] g = new float[ROWS * V];
        Arrays.fill(g, Float.NaN);
        return g;
    }

    /** The backend's result against compute, for each thread count; returns nothing, asserts all. */
    private static void agreesWithCompute(LogitLoss loss, LogitBatch batch) {
        float[] g0 = poisoned();
        LossResult r0 = loss.compute(batch, g0, UPSTREAM);
        for (int i = 0; i < g0.length; i++) { // assertArrayEquals takes NaN for NaN: an element neither path writes would pass
            assertFalse(Float.isNaN(g0[i]), loss.name() + ": compute left gradient element " + i + " unwritten");
        }
        LossResult first = null;
        for (int threads : THREADS) {
            try (CpuBackend be = new CpuBackend(threads, CHUNK)) {
                float[] g = poisoned();
                LossResult r = be.logitLoss(loss, batch, g, UPSTREAM);
                String what = loss.name() + " on " + threads + " threads";
                assertArrayEquals(g0, g, what + ": gradient");
                assertEquals(r0.rows(), r.rows(), what + ": rows");
                assertEquals(r0.value(), r.value(), REL * Math.abs(r0.value()), what + ": value");
                assertEquals(r0.terms().keySet(), r.terms().keySet(), what + ": terms");
                for (String key : r0.terms().keySet()) {
                    assertEquals(r0.terms().get(key), r.terms().get(key), REL * Math.abs(r0.terms().get(key)), what + ": term " + key);
                }
                if (first == null) {
                    first = r;
                } else {
                    assertEquals(Double.doubleToLongBits(first.value()), Double.doubleToLongBits(r.value()), what + ": value bits");
                    for (String key : first.terms().keySet()) {
                        assertEquals(Double.doubleToLongBits(first.terms().get(key)), Double.doubleToLongBits(r.terms().get(key)),
                                what + ": bits of term " + key);
                    }
                }
            }
        }
        assertTrue(r0.value() != 0 && Double.isFinite(r0.value()), loss.name() + ": a value to compare, got " + r0.value());
    }

    @Test
    void everyRegisteredLossIsRowSeparableAndGivesComputesResultOnAnyThreads() {
        long seed = 11;
        for (String name : Losses.names()) {
            LogitLoss loss = Losses.create(name, Map.of());
            // dist's class term correlates over the batch's rows: the one registered loss the backend must run whole
            assertEquals(!name.equals(org.distill4j.loss.Dist.NAME), loss.rowSeparable(), name + " is a sum over rows");
            agreesWithCompute(loss, randomBatch(loss, seed++));
        }
    }

    @Test
    void sumReductionANormalizerAndAWeightedSumToo() {
        LogitLoss sum = new SoftTargetKd(2.5, 0.4, Reduction.SUM);
        agreesWithCompute(sum, randomBatch(sum, 3));
        LogitLoss kd = new SoftTargetKd(3, 0.2);
        agreesWithCompute(kd, randomBatch(kd, 4).withNormalizer(90)); // an accumulated step of 90 counted rows
        LogitLoss both = WeightedSum.builder().add(0.6, new SoftTargetKd(2, 0)).add(0.4, new CrossEntropy()).build();
        assertTrue(both.rowSeparable());
        agreesWithCompute(both, randomBatch(both, 5));
        LogitLoss rest = new TopKKd(1.5, TopKKd.Tail.REST_BUCKET);
        agreesWithCompute(rest, randomBatch(rest, 6));
    }

    @Test
    void aBatchWhereNoRowCountsGivesZeros() {
        LogitLoss kd = new SoftTargetKd(2, 0.3);
        LogitBatch none = randomBatch(kd, 12).withRowMask(new boolean[ROWS]);
        try (CpuBackend be = new CpuBackend(3, CHUNK)) {
            float[] g = poisoned();
            LossResult r = be.logitLoss(kd, none, g, UPSTREAM);
            assertEquals(0, r.rows());
            assertEquals(0.0, r.value());
            assertArrayEquals(new float[ROWS * V], g);
        }
    }

    /** A loss that records its calls and may hold each new thread until a second one has come. */
    private static final class Recording implements LogitLoss {
        final LogitLoss inner = new SoftTargetKd(2, 0.3);
        final boolean separable;
        final List<LogitBatch> batches = java.util.Collections.synchronizedList(new ArrayList<>());
        final Set<Thread> threads = ConcurrentHashMap.newKeySet();
        final CountDownLatch twoThreads;

        Recording(boolean separable, boolean waitForTwoThreads) {
            this.separable = separable;
            this.twoThreads = new CountDownLatch(waitForTwoThreads ? 2 : 0);
        }

        @Override
        public String name() {
            return "recording";
        }

        @Override
        public Map<String, Object> settings() {
            return Map.of();
        }

        @Override
        public boolean needsTeacher() {
            return true;
        }

        @Override
        public boolean needsLabels() {
            return true;
        }

        @Override
        public boolean rowSeparable() {
            return separable;
        }

        @Override
        public Reduction reduction() {
            return Reduction.MEAN;
        }

        @Override
        public LossResult compute(LogitBatch batch, float[] gradOut, float upstream) {
            batches.add(batch);
            if (threads.add(Thread.currentThread())) {
                twoThreads.countDown();
            }
            try {
                if (!twoThreads.await(20, TimeUnit.SECONDS)) {
                    throw new AssertionError("no second thread took a slice within 20 s");
                }
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
            return inner.compute(batch, gradOut, upstream);
        }
    }

    @Test
    void slicesRunOnSeveralThreads() {
        Recording loss = new Recording(true, true);
        LogitBatch batch = randomBatch(loss, 6);
        try (CpuBackend be = new CpuBackend(3, CHUNK)) {
            be.logitLoss(loss, batch, poisoned(), UPSTREAM);
        }
        assertEquals(13, loss.batches.size(), "one call per slice of 3 rows");
        assertTrue(loss.threads.size() >= 2, "threads: " + loss.threads);
        // (the calling thread offers to take slices too, but the pool's threads may have taken them all first)
        int rows = loss.batches.stream().mapToInt(LogitBatch::rows).sum();
        assertEquals(ROWS, rows);
    }

    @Test
    void aLossThatIsNotRowSeparableAndASmallBatchRunWhole() {
        Recording loss = new Recording(false, false);
        LogitBatch batch = randomBatch(loss, 7);
        try (CpuBackend be = new CpuBackend(4, CHUNK)) {
            be.logitLoss(loss, batch, poisoned(), UPSTREAM);
            assertEquals(1, loss.batches.size());
            assertSame(batch, loss.batches.get(0));
            Recording separable = new Recording(true, false);
            try (CpuBackend wide = new CpuBackend(4, ROWS * V)) { // one slice holds the batch
                wide.logitLoss(separable, batch, poisoned(), UPSTREAM);
            }
            assertEquals(List.of(batch), separable.batches);
        }
        assertEquals(Set.of(Thread.currentThread()), loss.threads);
    }

    @Test
    void anErrorNamesTheBatchsRowNotTheSlices() {
        LogitLoss kd = new SoftTargetKd(2, 0);
        LogitBatch batch = randomBatch(kd, 8);
        batch.student()[31 * V + 9] = Float.NaN;
        try (CpuBackend be = new CpuBackend(3, CHUNK)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.logitLoss(kd, batch, poisoned(), 1f));
            assertTrue(e.getMessage().contains("row 31"), e.getMessage());
            Recording counting = new Recording(true, false);
            IllegalArgumentException shape = assertThrows(IllegalArgumentException.class,
                    () -> be.logitLoss(counting, batch, new float[ROWS * V - 1], 1f));
            assertTrue(shape.getMessage().contains("gradient buffer"), shape.getMessage());
            assertEquals(List.of(), counting.batches, "the whole batch's buffers are checked before any slice runs");
        }
    }

    @Test
    void closingStopsThePoolIsHarmlessTwiceAndAClosedBackendStillComputesTheSameBits() throws InterruptedException {
        Recording kd = new Recording(true, true);
        LogitBatch batch = randomBatch(kd, 9);
        CpuBackend be = new CpuBackend(3, CHUNK);
        float[] open = poisoned();
        double v1 = be.logitLoss(kd, batch, open, UPSTREAM).value();
        be.close();
        be.close();
        assertTrue(kd.threads.size() >= 2, "a pool thread took slices: " + kd.threads);
        for (Thread t : kd.threads) {
            if (t != Thread.currentThread()) {
                t.join(10_000);
                assertFalse(t.isAlive(), t.getName() + " still runs after close");
            }
        }
        float[] closed = poisoned();
        double v2 = be.logitLoss(kd, batch, closed, UPSTREAM).value();
        assertArrayEquals(open, closed);
        assertEquals(Double.doubleToLongBits(v1), Double.doubleToLongBits(v2));
    }

    @Test
    void threadsComeFromThePropertyAndABadOneIsNamed() {
        String old = System.getProperty(CpuBackend.THREADS_PROPERTY);
        try {
            System.clearProperty(CpuBackend.THREADS_PROPERTY);
            assertEquals(Runtime.getRuntime().availableProcessors(), new CpuBackend().threads());
            System.setProperty(CpuBackend.THREADS_PROPERTY, " 3 ");
            assertEquals(3, new CpuBackend().threads());
            for (String bad : new String[] {"0", "-2", "two"}) {
                System.setProperty(CpuBackend.THREADS_PROPERTY, bad);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, CpuBackend::new);
                assertTrue(e.getMessage().contains(CpuBackend.THREADS_PROPERTY) && e.getMessage().contains("'" + bad + "'"), e.getMessage());
            }
        } finally {
            if (old == null) {
                System.clearProperty(CpuBackend.THREADS_PROPERTY);
            } else {
                System.setProperty(CpuBackend.THREADS_PROPERTY, old);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> new CpuBackend(0));
    }

    @Test
    void aSliceWeighsItsRowsAsTheBatchDoes() {
        LogitLoss kd = new SoftTargetKd(2, 0.5);
        LogitBatch batch = randomBatch(kd, 10);
        LogitBatch part = batch.slice(3, 9);
        assertEquals(6, part.rows());
        assertEquals(batch.rowWeight(Reduction.MEAN), part.rowWeight(Reduction.MEAN));
        for (int r = 0; r < 6; r++) {
            assertEquals(batch.counts(3 + r), part.counts(r), "row " + r);
            assertEquals(batch.labels()[3 + r], part.labels()[r]);
            assertEquals(batch.student()[(3 + r) * V + 5], part.student()[r * V + 5]);
        }
        assertFalse(part.student() == batch.student(), "copied");
        assertEquals(batch.withNormalizer(50).rowWeight(Reduction.MEAN), batch.withNormalizer(50).slice(0, 1).rowWeight(Reduction.MEAN));
        for (int[] bad : new int[][] {{-1, 3}, {4, 4}, {5, 2}, {0, ROWS + 1}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> batch.slice(bad[0], bad[1]));
            assertTrue(e.getMessage().contains("of a batch of " + ROWS + " rows"), e.getMessage());
        }
    }
}
