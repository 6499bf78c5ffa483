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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The loss contract for rows labeled {@link LogitBatch#UNLABELED} (unlabeled transfer data): such a row counts (in the
 * mean's count and in every teacher term), while a hard-label term is 0 on it with a zero gradient. Losses without a
 * hard-label term never read the label; kd and ce against the float64 reference; every loss with a hard-label term gives
 * an unlabeled row what its label-free twin gives; dkd, which splits a row at its label, refuses one naming it. Odd shape,
 * upstream gradient != 1, an extreme row.
 */
class UnlabeledRowsTest {
    private static final int ROWS = IgnoredRowsTest.ROWS; // the top-k rows come from there
    private static final int V = IgnoredRowsTest.V;
    private static final int K = IgnoredRowsTest.K;
    private static final float UPSTREAM = 0.6f;
    private static final int[] UNLABELED_ROWS = {1, 6, 11};
    private static final int EXTREME_ROW = 7;

    /** Fresh random labels, the rows {@link #UNLABELED_ROWS} UNLABELED. */
    static int[] mixedLabels(Random rng) {
        int[] y = Inputs.labels(rng, ROWS, V);
        for (int r : UNLABELED_ROWS) {
            y[r] = LogitBatch.UNLABELED;
        }
        return y;
    }

    static boolean unlabeled(int r) {
        return java.util.Arrays.stream(UNLABELED_ROWS).anyMatch(u -> u == r);
    }

    /** Student and teacher rows (dense logits or probabilities, or top-k for a loss that reads those), an extreme row. */
    static LogitBatch batch(LogitLoss loss, Random rng, int[] y, boolean probabilities) {
        float[] s = Inputs.logits(rng, ROWS, V, 2);
        for (int i = 0; i < V; i++) {
            s[EXTREME_ROW * V + i] *= 40;
        }
        if (loss.needsTopK()) {
            return IgnoredRowsTest.topK(rng, s, y);
        }
        if (probabilities) {
            return LogitBatch.of(ROWS, V, s, Inputs.probabilities(rng, ROWS, V, 2), TeacherValues.PROBABILITIES, y);
        }
        float[] t = Inputs.logits(rng, ROWS, V, 2);
        for (int i = 0; i < V; i++) {
            t[EXTREME_ROW * V + i] *= 25;
        }
        return LogitBatch.of(ROWS, V, s, t, TeacherValues.LOGITS, y);
    }

    /** The same rows with other labels. */
    static LogitBatch relabeled(LogitBatch b, int[] y) {
        return b.topkIds() != null ? LogitBatch.ofTopK(ROWS, V, b.student(), b.topkIds(), b.topkLogProbs(), K, y)
                : LogitBatch.of(ROWS, V, b.student(), b.teacher(), b.teacherValues(), y);
    }

    /** Row {@code r} of a dense batch alone, with label {@code y}. */
    static LogitBatch row(LogitBatch b, int r, int y) {
        float[] s = java.util.Arrays.copyOfRange(b.student(), r * V, (r + 1) * V);
        float[] t = java.util.Arrays.copyOfRange(b.teacher(), r * V, (r + 1) * V);
        return LogitBatch.of(1, V, s, t, b.teacherValues(), new int[]{y});
    }

    /** Every loss without a hard-label term gives a batch with unlabeled rows exactly what it gives the batch labeled. */
    @Test
    void lossesWithoutAHardLabelTermNeverReadTheLabel() {
        Random rng = new Random(3101);
        List<LogitLoss> all = new ArrayList<>(IgnoredRowsTest.losses());
        all.add(LogitStandardization.of(new SoftTargetKd(2, 0)));
        int checked = 0;
        for (LogitLoss loss : all) {
            if (loss.needsLabels()) {
                continue;
            }
            String what = loss.name() + " " + loss.settings() + " " + loss.reduction();
            int[] y = mixedLabels(rng);
            LogitBatch mixed = batch(loss, rng, y, false);
            int[] filled = y.clone();
            for (int r : UNLABELED_ROWS) {
                filled[r] = rng.nextInt(V);
            }
            assertEquals(ROWS, mixed.countedRows(), what + ": unlabeled rows count");
            float[] g = Inputs.poisoned(ROWS * V);
            float[] gl = Inputs.poisoned(ROWS * V);
            LossResult r = loss.compute(mixed, g, UPSTREAM);
            LossResult rl = loss.compute(relabeled(mixed, filled), gl, UPSTREAM);
            assertEquals(ROWS, r.rows(), what);
            assertEquals(Double.doubleToRawLongBits(rl.value()), Double.doubleToRawLongBits(r.value()), what + ": value");
            assertEquals(rl.terms(), r.terms(), what + ": terms");
            for (int i = 0; i < g.length; i++) {
                assertEquals(Float.floatToRawIntBits(gl[i]), Float.floatToRawIntBits(g[i]), what + ": gradient element " + i);
            }
            assertTrue(Double.isFinite(r.value()) && r.value() > 0, what + ": " + r.value());
            checked++;
        }
        assertTrue(checked >= 10, "most registered losses read no label: " + checked);
    }

    /**
     * kd (T 1 and T != 1, logit and probability teachers) and ce against the float64 reference, in which an unlabeled row
     * has no CE term and still counts in the mean; kd's ce term is the reference's ce over all rows.
     */
    @Test
    void kdAndCeMatchTheFloat64ReferenceWithoutTheCeOfUnlabeledRows() {
        Random rng = new Random(3203);
        Object[][] cases = {{new SoftTargetKd(3, 0.25), false}, {new SoftTargetKd(1, 0.4), false}, {new SoftTargetKd(2, 0.3), true},
                {new CrossEntropy(), false}};
        for (Object[] c : cases) {
            LogitLoss loss = (LogitLoss) c[0];
            boolean probs = (Boolean) c[1];
            String what = loss.name() + " " + loss.settings() + (probs ? " (probabilities)" : "");
            int[] y = mixedLabels(rng);
            LogitBatch b = batch(loss, rng, y, probs);
            float[] g = Inputs.poisoned(ROWS * V);
            LossResult r = loss.compute(b, g, UPSTREAM);
            double[] ref = new double[ROWS * V];
            double ceRef = Float64Reference.ce(b.student(), y, ROWS, V, 1, null);
            double value;
            if (loss instanceof SoftTargetKd kd) {
                value = Float64Reference.kd(b.student(), b.teacher(), probs, y, ROWS, V, kd.temperature(), kd.alpha(), UPSTREAM, ref);
                Tolerances.assertValueClose(ceRef, r.terms().get(CrossEntropy.NAME), what + ": ce term");
            } else {
                value = Float64Reference.ce(b.student(), y, ROWS, V, UPSTREAM, ref);
            }
            Tolerances.assertValueClose(value, r.value(), what + ": value");
            Tolerances.assertGradClose(ref, g, what + ": gradient");
            assertEquals(ROWS, r.rows(), what + ": counted rows");
            if (loss instanceof CrossEntropy) {
                for (int u : UNLABELED_ROWS) {
                    for (int i = 0; i < V; i++) {
                        assertEquals(0f, g[u * V + i], what + ": unlabeled row " + u + " has no gradient");
                    }
                }
            }
        }
    }

    /** A loss with a hard-label term, its label-free twin, and the factor the twin's row value takes on an unlabeled row. */
    record Twin(LogitLoss loss, LogitLoss labelFree, double factor) {
    }

    /**
     * For every loss with a hard-label term, an unlabeled row gets what the loss's label-free twin gives it (times the
     * factor that the hard-label weight leaves), a labeled row what the loss gives it alone: value (mean over all rows),
     * terms and every gradient element.
     */
    @Test
    void anUnlabeledRowGetsWhatTheLabelFreeTwinGivesIt() {
        Random rng = new Random(3307);
        List<Twin> twins = List.of(
                new Twin(new SoftTargetKd(2.5, 0.4), new SoftTargetKd(2.5, 0), 0.6),
                new Twin(LogitStandardization.of(new SoftTargetKd(2, 0.3)), LogitStandardization.of(new SoftTargetKd(2, 0)), 0.7),
                new Twin(WeightedSum.builder().add(0.3, new CrossEntropy()).add(0.7, new ReverseKl(1.5)).build(), new ReverseKl(1.5), 0.7),
                new Twin(new CrossEntropy(), new CrossEntropy(), 0));
        for (Twin tw : twins) {
            LogitLoss loss = tw.loss();
            assertTrue(loss.needsLabels() && !tw.labelFree().needsLabels() || loss instanceof CrossEntropy, loss.name());
            String what = loss.name() + " " + loss.settings();
            int[] y = mixedLabels(rng);
            LogitBatch b = batch(loss, rng, y, false);
            float[] g = Inputs.poisoned(ROWS * V);
            LossResult r = loss.compute(b, g, UPSTREAM);
            double expected = 0;
            Map<String, Double> expectedTerms = new java.util.HashMap<>();
            for (int row = 0; row < ROWS; row++) {
                boolean u = unlabeled(row);
                float[] gr = Inputs.poisoned(V);
                LossResult one = u ? tw.labelFree().compute(row(b, row, 0), gr, UPSTREAM)
                        : loss.compute(row(b, row, y[row]), gr, UPSTREAM);
                double f = u ? tw.factor() : 1;
                expected += f * one.value() / ROWS;
                if (!u) {
                    one.terms().forEach((k, v) -> expectedTerms.merge(k, v / ROWS, Double::sum));
                }
                double rowMax = 0; // logit-std's chain rule rounds each element of a row against the row's scale
                for (int i = 0; i < V; i++) {
                    rowMax = Math.max(rowMax, Math.abs(f * gr[i] / ROWS));
                }
                for (int i = 0; i < V; i++) {
                    float want = (float) (f * gr[i] / ROWS);
                    assertEquals(want, g[row * V + i], 2e-6 * Math.abs(want) + 1e-6 * rowMax + 1e-12,
                            what + ": gradient of row " + row + (u ? " (unlabeled)" : "") + ", class " + i);
                }
            }
            assertEquals(expected, r.value(), 1e-12 * Math.abs(expected) + 1e-15, what + ": value");
            if (loss instanceof SoftTargetKd) {
                assertEquals(expectedTerms.get(CrossEntropy.NAME), r.terms().get(CrossEntropy.NAME), 1e-12, what + ": the ce term"
                        + " holds the labeled rows' CE over all rows");
            }
            assertEquals(ROWS, r.rows(), what);
        }
    }

    /**
     * dkd splits each row at its label: an unlabeled row is refused, naming it, also inside a weighted sum, and it says so
     * up front (acceptsUnlabeledRows, which the Distiller checks); every other registered loss computes one.
     */
    @Test
    void dkdRefusesAnUnlabeledRowNamingIt() {
        for (String name : Losses.names()) {
            LogitLoss l = Losses.create(name, Map.of());
            assertEquals(!name.equals("dkd"), l.acceptsUnlabeledRows(), name);
            if (l.acceptsUnlabeledRows()) {
                LogitBatch b = batch(l, new Random(name.hashCode()), mixedLabels(new Random(3)), false);
                LossResult r = l.compute(b, new float[ROWS * V], 1f);
                assertTrue(Double.isFinite(r.value()), name);
            }
        }
        assertFalse(LogitStandardization.of(new Dkd(1, 8, 4, 1)).acceptsUnlabeledRows());
        assertTrue(WeightedSum.builder().add(1, new CrossEntropy()).add(1, new SoftTargetKd(2, 0)).build().acceptsUnlabeledRows());
        Random rng = new Random(3409);
        int[] y = Inputs.labels(rng, ROWS, V);
        y[4] = LogitBatch.UNLABELED;
        for (LogitLoss loss : new LogitLoss[]{new Dkd(1, 8, 4, 1), WeightedSum.builder().add(1, new CrossEntropy()).add(1, new Dkd(1, 8, 4, 1)).build()}) {
            LogitBatch b = batch(loss, rng, y, false);
            BadRowException e = assertThrows(BadRowException.class, () -> loss.compute(b, new float[ROWS * V], 1f), loss.name());
            assertEquals(4, e.row(), e.getMessage());
            assertTrue(e.getMessage().contains("row 4 has no hard label") && e.getMessage().contains("dkd"), e.getMessage());
        }
    }

    /** UNLABELED is a label a batch takes: the row counts and has no label; other negative labels are refused, naming both. */
    @Test
    void aBatchTakesUnlabeledRowsAndRefusesOtherNegativeLabels() {
        Random rng = new Random(3511);
        int[] y = mixedLabels(rng);
        LogitBatch b = LogitBatch.ofLabels(ROWS, V, Inputs.logits(rng, ROWS, V, 1), y);
        assertEquals(ROWS, b.countedRows());
        for (int r = 0; r < ROWS; r++) {
            assertEquals(!unlabeled(r), b.hasLabel(r), "row " + r);
            assertTrue(b.counts(r), "row " + r);
        }
        y[3] = -2;
        BadRowException e = assertThrows(BadRowException.class, () -> LogitBatch.ofLabels(ROWS, V, new float[ROWS * V], y));
        assertEquals(3, e.row());
        assertTrue(e.getMessage().contains("UNLABELED (-1)") && e.getMessage().contains("IGNORE_INDEX (-100)"), e.getMessage());
        int[] ignored = new int[ROWS];
        ignored[0] = LogitBatch.IGNORE_INDEX;
        assertFalse(LogitBatch.ofLabels(ROWS, V, new float[ROWS * V], ignored).hasLabel(0));
    }
}
