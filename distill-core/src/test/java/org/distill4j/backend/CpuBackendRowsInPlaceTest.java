package org.distill4j.backend;

import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.Dkd;
import org.distill4j.loss.GeneralizedJsd;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LogitMse;
import org.distill4j.loss.LogitStandardization;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.Losses;
import org.distill4j.loss.Reduction;
import org.distill4j.loss.ReverseKl;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;
import org.distill4j.loss.TopKKd;
import org.distill4j.loss.TotalVariation;
import org.distill4j.loss.WeightedSum;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CPU backend reads each slice's rows where they are ({@link LogitLoss#computeRows}) instead of copying them: for
 * every built-in logit loss, at an odd shape (7 rows of 1031 classes) with slices of one row and of two (the last one
 * short), on 1 to 7 threads, the value, terms and counted rows must be the bits of the copying path (each slice's
 * {@code compute} on {@code batch.slice}, summed in row order) and the gradient the bits of {@code compute} on the
 * whole batch.
 */
class CpuBackendRowsInPlaceTest {
    private static final int ROWS = 7;
    private static final int V = 1031;
    private static final float UPSTREAM = 0.7f;
    private static final int[] THREADS = {1, 2, 3, 7};
    /** Slices of one row, and of two rows (four slices, the last of one row). */
    private static final int[] CHUNKS = {1, 2 * V + 5};

    /**
     * The registry's row-separable losses at their defaults (the backend slices only those; dist, which is not, runs
     * whole: DistTest), and the variants with other code paths.
     */
    private static List<LogitLoss> losses() {
        List<LogitLoss> out = new ArrayList<>();
        for (String name : Losses.names()) {
            LogitLoss loss = Losses.create(name, Map.of());
            if (loss.rowSeparable()) {
                out.add(loss);
            }
        }
        out.add(new GeneralizedJsd(1, 2)); // reverse KL, floored teacher
        out.add(new GeneralizedJsd(0, 1.5)); // forward KL
        out.add(new TopKKd(1.5, TopKKd.Tail.REST_BUCKET));
        out.add(new SoftTargetKd(2.5, 0.4, Reduction.SUM));
        out.add(new SoftTargetKd(1, 0.3)); // T = 1: one softmax serves kd and ce
        out.add(LogitStandardization.of(new ReverseKl(2)));
        out.add(LogitStandardization.of(new LogitMse()));
        out.add(LogitStandardization.of(new Dkd(1, 8, 3, 0)));
        out.add(WeightedSum.builder().add(0.3, new CrossEntropy()).add(1, LogitStandardization.of(new Dkd(1, 8, 3, 0)))
                .add(0.5, new TotalVariation(2)).build());
        out.add(LogitStandardization.of(WeightedSum.builder().add(0.6, new SoftTargetKd(2, 0)).add(0.4, new GeneralizedJsd(0.5, 2))
                .build()));
        return out;
    }

    private static boolean readsMse(LogitLoss loss) {
        return loss instanceof LogitMse || (loss instanceof LogitStandardization ls && ls.inner() instanceof LogitMse);
    }

    /** Random rows with a padded label, a masked row, an extreme logit and (unless the loss compares logits) a zero-mass class. */
    private static LogitBatch batch(LogitLoss loss, long seed) {
        Random rng = new Random(seed);
        float[] s = new float[ROWS * V];
        float[] t = new float[ROWS * V];
        for (int i = 0; i < s.length; i++) {
            s[i] = (float) (3 * rng.nextGaussian());
            t[i] = (float) (3 * rng.nextGaussian());
        }
        s[3 * V + 17] = 70f;
        if (!readsMse(loss)) {
            t[5 * V + 1] = Float.NEGATIVE_INFINITY;
        }
        int[] y = new int[ROWS];
        for (int r = 0; r < ROWS; r++) {
            y[r] = r == 4 ? LogitBatch.IGNORE_INDEX : rng.nextInt(V);
        }
        boolean[] mask = {true, true, false, true, true, true, true};
        LogitBatch b;
        if (loss.needsTopK()) {
            int k = 5;
            int[] ids = new int[ROWS * k];
            float[] lps = new float[ROWS * k];
            for (int r = 0; r < ROWS; r++) {
                for (int j = 0; j < k; j++) {
                    ids[r * k + j] = (int) ((j * 211L + r * 13L) % V);
                    lps[r * k + j] = (float) (-1.8 - rng.nextDouble() - 0.4 * j);
                }
            }
            b = LogitBatch.ofTopK(ROWS, V, s, ids, lps, k, y);
        } else {
            b = LogitBatch.of(ROWS, V, s, t, TeacherValues.LOGITS, y);
        }
        return b.withRowMask(mask);
    }

    private static float[] filled(int n, float x) {
        float[] g = new float[n];
        Arrays.fill(g, x);
        return g;
    }

    /** Fails at the first element whose bits differ, naming its row and class (a NaN is an element left unwritten). */
    private static void sameBits(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                throw new AssertionError(what + ": gradient of row " + i / V + ", class " + i % V + " is " + actual[i] + ", expected "
                        + expected[i]);
            }
        }
    }

    /** Value, counted rows and terms as bits, in a fixed order. */
    private static String bits(LossResult r) {
        Map<String, Long> terms = new TreeMap<>();
        r.terms().forEach((k, v) -> terms.put(k, Double.doubleToRawLongBits(v)));
        return Double.doubleToRawLongBits(r.value()) + " " + r.rows() + " " + terms;
    }

    /** What the backend computed before it read rows in place: each slice's rows copied, its compute, summed in row order. */
    private static LossResult copyingPath(LogitLoss loss, LogitBatch batch, int perSlice, float[] gradOut) {
        double value = 0;
        int rows = 0;
        Map<String, Double> terms = new LinkedHashMap<>();
        for (int from = 0; from < ROWS; from += perSlice) {
            int to = Math.min(ROWS, from + perSlice);
            float[] g = new float[(to - from) * V];
            LossResult r = loss.compute(batch.slice(from, to), g, UPSTREAM);
            System.arraycopy(g, 0, gradOut, from * V, g.length);
            value += r.value();
            rows += r.rows();
            r.terms().forEach((k, v) -> terms.merge(k, v, Double::sum));
        }
        return new LossResult(value, rows, terms);
    }

    @Test
    void everyBuiltInLossGivesTheCopyingPathsBitsOnAnyThreads() {
        long seed = 40;
        for (LogitLoss loss : losses()) {
            LogitBatch batch = batch(loss, seed++);
            for (LogitBatch b : new LogitBatch[]{batch, batch.withNormalizer(batch.countedRows() + 3)}) {
                float[] whole = filled(ROWS * V, Float.NaN);
                loss.compute(b, whole, UPSTREAM);
                for (int chunk : CHUNKS) {
                    int perSlice = Math.max(1, chunk / V);
                    String what = loss.name() + " " + loss.settings() + ", " + perSlice + " rows per slice";
                    float[] copied = filled(ROWS * V, Float.NaN);
                    String expected = bits(copyingPath(loss, b, perSlice, copied));
                    sameBits(whole, copied, what + ", copied slices");
                    for (int threads : THREADS) {
                        try (CpuBackend be = new CpuBackend(threads, chunk)) {
                            float[] g = filled(ROWS * V, Float.NaN);
                            LossResult r = be.logitLoss(loss, b, g, UPSTREAM);
                            assertEquals(expected, bits(r), what + ", " + threads + " threads: value, rows and terms");
                            sameBits(whole, g, what + ", " + threads + " threads");
                        }
                    }
                }
            }
        }
    }

    @Test
    void computeRowsWritesItsRowsAtTheOffsetAndNothingElse() {
        long seed = 70;
        for (LogitLoss loss : losses()) {
            LogitBatch batch = batch(loss, seed++);
            float[] g = new float[3 * V];
            String expected = bits(loss.compute(batch.slice(2, 5), g, UPSTREAM));
            float[] out = filled(3 * V + 20, 12345f);
            LossResult r = loss.computeRows(batch, 2, 5, out, 11, UPSTREAM);
            assertEquals(expected, bits(r), loss.name() + ": rows 2-4");
            for (int i = 0; i < out.length; i++) {
                float want = i >= 11 && i < 11 + g.length ? g[i - 11] : 12345f;
                assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(out[i]), loss.name() + ": element " + i);
            }
        }
    }

    @Test
    void aLossOfItsOwnGetsTheSameBitsThroughTheCopyingDefault() {
        LogitLoss kd = new SoftTargetKd(2, 0.3);
        LogitLoss own = new org.distill4j.testing.CopyingRowsLoss(kd);
        LogitBatch batch = batch(kd, 90);
        float[] a = filled(3 * V + 4, 7f);
        float[] b = filled(3 * V + 4, 7f);
        assertEquals(bits(kd.computeRows(batch, 1, 4, a, 4, UPSTREAM)), bits(own.computeRows(batch, 1, 4, b, 4, UPSTREAM)));
        sameBits(a, b, "rows 1-3 at offset 4");
        float[] whole = new float[ROWS * V];
        float[] viaRows = new float[ROWS * V];
        assertEquals(bits(kd.compute(batch, whole, UPSTREAM)), bits(own.computeRows(batch, 0, ROWS, viaRows, 0, UPSTREAM)));
        sameBits(whole, viaRows, "the whole batch");
        try (CpuBackend be = new CpuBackend(3, 1)) {
            float[] g = new float[ROWS * V];
            float[] gk = new float[ROWS * V];
            LossResult r = be.logitLoss(own, batch, g, UPSTREAM);
            LossResult rk = be.logitLoss(kd, batch, gk, UPSTREAM);
            assertEquals(Double.doubleToRawLongBits(rk.value()), Double.doubleToRawLongBits(r.value()));
            sameBits(gk, g, "through the backend");
        }
    }

    @Test
    void badRowsOrGradientBuffersAreNamed() {
        for (LogitLoss loss : List.of(new SoftTargetKd(2, 0.3), LogitStandardization.of(new SoftTargetKd(2, 0.3)), new org.distill4j.testing.CopyingRowsLoss(new CrossEntropy()))) {
            LogitBatch batch = batch(loss, 5);
            for (int[] bad : new int[][]{{-1, 2}, {3, 3}, {4, 2}, {0, ROWS + 1}}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> loss.computeRows(batch, bad[0], bad[1], new float[ROWS * V], 0, 1f));
                assertTrue(e.getMessage().contains("of a batch of " + ROWS + " rows"), e.getMessage());
            }
            IllegalArgumentException shortBuffer = assertThrows(IllegalArgumentException.class,
                    () -> loss.computeRows(batch, 1, 3, new float[2 * V + 4], 5, 1f));
            assertTrue(shortBuffer.getMessage().contains("gradient buffer") && shortBuffer.getMessage().contains("offset 5"),
                    shortBuffer.getMessage());
            assertThrows(IllegalArgumentException.class, () -> loss.computeRows(batch, 1, 3, new float[2 * V], -1, 1f));
            IllegalArgumentException alias = assertThrows(IllegalArgumentException.class,
                    () -> loss.computeRows(batch, 1, 3, batch.student(), 0, 1f));
            assertTrue(alias.getMessage().contains("student logits"), alias.getMessage());
            assertThrows(IllegalArgumentException.class, () -> loss.computeRows(batch, 1, 3, new float[2 * V], 0, Float.NaN));
        }
        LogitLoss kd = new SoftTargetKd(2, 0);
        LogitBatch batch = batch(kd, 6);
        batch.student()[5 * V + 9] = Float.NaN;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> kd.computeRows(batch, 5, 7, new float[2 * V], 0, 1f));
        assertTrue(e.getMessage().contains("row 5"), "the batch's row, read in place: " + e.getMessage());
    }
}
