package org.distill4j.loss;

import org.distill4j.testing.Float64Reference;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The loss contract for padded rows, for every registered loss (kd and ce included) and both reductions: rows labeled
 * IGNORE_INDEX or masked out give a zero gradient and add nothing, and MEAN divides by the counted rows, so value,
 * terms and the counted rows' gradients equal those of the batch of the counted rows alone; kd and ce also against the
 * float64 reference over the counted rows. Odd shape, upstream gradient != 1, an extreme row.
 */
class IgnoredRowsTest {
    static final int ROWS = 13;
    static final int V = 37;
    static final int K = 5;
    private static final float UPSTREAM = 0.6f;
    private static final int[] IGNORED = {2, 9};
    private static final int MASKED = 5;

    static List<LogitLoss> losses() {
        List<LogitLoss> out = new ArrayList<>();
        for (String name : Losses.names()) {
            out.add(Losses.create(name, Map.of()));
        }
        out.add(new SoftTargetKd(2.5, 0.4, Reduction.SUM));
        out.add(new CrossEntropy(Reduction.SUM));
        out.add(WeightedSum.builder().add(0.3, new CrossEntropy()).add(0.7, new SoftTargetKd(3, 0)).build());
        return out;
    }

    /** The batch's rows {@code keep}, with the same teacher form and labels, no mask. */
    static LogitBatch rows(LogitBatch b, int[] keep) {
        int n = keep.length;
        float[] s = new float[n * V];
        int[] y = new int[n];
        float[] t = b.teacher() == null ? null : new float[n * V];
        int[] ids = b.topkIds() == null ? null : new int[n * K];
        float[] lps = b.topkIds() == null ? null : new float[n * K];
        for (int i = 0; i < n; i++) {
            int r = keep[i];
            System.arraycopy(b.student(), r * V, s, i * V, V);
            y[i] = b.labels()[r];
            if (t != null) {
                System.arraycopy(b.teacher(), r * V, t, i * V, V);
            }
            if (ids != null) {
                System.arraycopy(b.topkIds(), r * K, ids, i * K, K);
                System.arraycopy(b.topkLogProbs(), r * K, lps, i * K, K);
            }
        }
        return ids != null ? LogitBatch.ofTopK(n, V, s, ids, lps, K, y) : LogitBatch.of(n, V, s, t, TeacherValues.LOGITS, y);
    }

    static LogitBatch padded(LogitLoss loss, Random rng) {
        float[] s = Inputs.logits(rng, ROWS, V, 2);
        float[] t = Inputs.logits(rng, ROWS, V, 2);
        for (int i = 0; i < V; i++) { // an extreme row
            s[7 * V + i] *= 40;
            t[7 * V + i] *= 25;
        }
        int[] y = Inputs.labels(rng, ROWS, V);
        for (int r : IGNORED) {
            y[r] = LogitBatch.IGNORE_INDEX;
        }
        boolean[] mask = new boolean[ROWS];
        java.util.Arrays.fill(mask, true);
        mask[MASKED] = false;
        LogitBatch b;
        if (loss.needsTopK()) {
            b = topK(rng, s, y);
        } else {
            b = LogitBatch.of(ROWS, V, s, t, TeacherValues.LOGITS, y);
        }
        return b.withRowMask(mask);
    }

    /** {@code ROWS} top-k teacher rows of K distinct random classes each, falling log-probabilities, with these logits and labels. */
    static LogitBatch topK(Random rng, float[] s, int[] y) {
        int[] ids = new int[ROWS * K];
        float[] lps = new float[ROWS * K];
        for (int r = 0; r < ROWS; r++) {
            List<Integer> classes = new ArrayList<>();
            for (int c = 0; c < V; c++) {
                classes.add(c);
            }
            java.util.Collections.shuffle(classes, rng);
            for (int j = 0; j < K; j++) {
                ids[r * K + j] = classes.get(j);
                lps[r * K + j] = (float) (-0.5 - rng.nextDouble() - 0.7 * j);
            }
        }
        return LogitBatch.ofTopK(ROWS, V, s, ids, lps, K, y);
    }

    @Test
    void paddedRowsAddNothingAndMeanDividesByTheCountedRows() {
        Random rng = new Random(2024);
        int[] kept = java.util.stream.IntStream.range(0, ROWS)
                .filter(r -> r != MASKED && java.util.Arrays.stream(IGNORED).noneMatch(i -> i == r)).toArray();
        for (LogitLoss loss : losses()) {
            String what = loss.name() + " " + loss.settings() + " " + loss.reduction();
            LogitBatch b = padded(loss, rng);
            assertEquals(kept.length, b.countedRows(), what);
            float[] g = Inputs.poisoned(ROWS * V);
            LossResult r = loss.compute(b, g, UPSTREAM);
            LogitBatch alone = rows(b, kept);
            float[] ga = Inputs.poisoned(kept.length * V);
            LossResult ra = loss.compute(alone, ga, UPSTREAM);
            assertEquals(kept.length, r.rows(), what + ": counted rows");
            assertEquals(ra.value(), r.value(), 1e-12 * Math.abs(ra.value()), what + ": value");
            assertEquals(ra.terms().keySet(), r.terms().keySet(), what);
            for (String term : ra.terms().keySet()) {
                assertEquals(ra.terms().get(term), r.terms().get(term), 1e-12 * Math.abs(ra.terms().get(term)), what + ": " + term);
            }
            for (int row = 0; row < ROWS; row++) {
                int at = java.util.Arrays.binarySearch(kept, row);
                for (int c = 0; c < V; c++) {
                    float expected = at >= 0 ? ga[at * V + c] : 0f;
                    assertEquals(expected, g[row * V + c], 1e-6f * Math.abs(expected) + 1e-12f,
                            what + ": gradient of row " + row + (at >= 0 ? "" : " (not counted)") + ", class " + c);
                }
            }
            assertTrue(r.value() > 0 && Double.isFinite(r.value()), what + ": " + r.value());
        }
    }

    /**
     * What a padded row holds is never read: NaN and infinite student logits and teacher values there change nothing, bit
     * for bit (value, terms, gradient); also for logit-std around losses without a hard-label part, whose padded rows'
     * gradient no cross-entropy writes first.
     */
    @Test
    void whatPaddedRowsHoldIsNeverRead() {
        Random rng = new Random(4049);
        List<LogitLoss> all = new ArrayList<>(losses());
        all.add(LogitStandardization.of(new SoftTargetKd(2, 0)));
        all.add(LogitStandardization.of(new ReverseKl(1.5)));
        boolean[] mask = new boolean[ROWS];
        java.util.Arrays.fill(mask, true);
        mask[MASKED] = false;
        for (LogitLoss loss : all) {
            String what = loss.name() + " " + loss.settings() + " " + loss.reduction();
            LogitBatch b = padded(loss, rng);
            float[] s = b.student().clone();
            float[] t = b.teacher() == null ? null : b.teacher().clone();
            for (int row : new int[]{IGNORED[0], IGNORED[1], MASKED}) {
                for (int c = 0; c < V; c++) {
                    s[row * V + c] = c % 2 == 0 ? Float.NaN : Float.POSITIVE_INFINITY;
                    if (t != null) {
                        t[row * V + c] = c % 3 == 0 ? Float.NaN : Float.POSITIVE_INFINITY;
                    }
                }
            }
            LogitBatch garbage = (t == null ? LogitBatch.ofTopK(ROWS, V, s, b.topkIds(), b.topkLogProbs(), K, b.labels())
                    : LogitBatch.of(ROWS, V, s, t, TeacherValues.LOGITS, b.labels())).withRowMask(mask);
            float[] g = Inputs.poisoned(ROWS * V);
            float[] gg = Inputs.poisoned(ROWS * V);
            LossResult r = loss.compute(b, g, UPSTREAM);
            LossResult rg = loss.compute(garbage, gg, UPSTREAM);
            assertEquals(Double.doubleToRawLongBits(r.value()), Double.doubleToRawLongBits(rg.value()), what + ": value");
            assertEquals(r.terms(), rg.terms(), what + ": terms");
            for (int i = 0; i < g.length; i++) {
                assertEquals(Float.floatToRawIntBits(g[i]), Float.floatToRawIntBits(gg[i]), what + ": gradient element " + i);
            }
            for (int row : new int[]{IGNORED[0], IGNORED[1], MASKED}) {
                for (int c = 0; c < V; c++) {
                    assertEquals(0f, gg[row * V + c], what + ": padded row " + row + " gets a zero gradient");
                }
            }
        }
    }

    /** kd and ce over a padded batch against the float64 reference over its counted rows (mean: divided by their number). */
    @Test
    void kdAndCeOnPaddedRowsMatchTheFloat64ReferenceOfTheCountedRows() {
        Random rng = new Random(77);
        int[] kept = java.util.stream.IntStream.range(0, ROWS)
                .filter(r -> r != MASKED && java.util.Arrays.stream(IGNORED).noneMatch(i -> i == r)).toArray();
        for (LogitLoss loss : new LogitLoss[]{new SoftTargetKd(3, 0.25), new CrossEntropy()}) {
            LogitBatch b = padded(loss, rng);
            LogitBatch alone = rows(b, kept);
            float[] g = Inputs.poisoned(ROWS * V);
            LossResult r = loss.compute(b, g, UPSTREAM);
            double[] ref = new double[kept.length * V];
            double value = loss instanceof SoftTargetKd kd
                    ? Float64Reference.kd(alone.student(), alone.teacher(), false, alone.labels(), kept.length, V, kd.temperature(),
                    kd.alpha(), UPSTREAM, ref)
                    : Float64Reference.ce(alone.student(), alone.labels(), kept.length, V, UPSTREAM, ref);
            Tolerances.assertValueClose(value, r.value(), loss.name() + " value");
            float[] counted = new float[kept.length * V];
            for (int i = 0; i < kept.length; i++) {
                System.arraycopy(g, kept[i] * V, counted, i * V, V);
            }
            Tolerances.assertGradClose(ref, counted, loss.name() + " gradient of the counted rows");
            for (int row : new int[]{IGNORED[0], IGNORED[1], MASKED}) {
                for (int c = 0; c < V; c++) {
                    assertEquals(0f, g[row * V + c], loss.name() + ": row " + row + " is not counted");
                }
            }
        }
    }
}
