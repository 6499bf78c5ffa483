package org.distill4j.teacher;

import org.distill4j.data.Batch;
import org.distill4j.loss.TeacherValues;
import org.distill4j.testing.Inputs;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TeacherCombinatorsTest {
    /** A teacher that returns fixed rows (cycled over the batch). */
    record Fixed(float[] rows, int classes, TeacherValues values) implements Teacher {
        @Override
        public float[] outputs(Batch batch) {
            float[] out = new float[batch.size() * classes];
            for (int r = 0; r < batch.size(); r++) {
                System.arraycopy(rows, (r % (rows.length / classes)) * classes, out, r * classes, classes);
            }
            return out;
        }

        @Override
        public String describe() {
            return "fixed";
        }
    }

    static Batch batch(int n) {
        return new Batch(new int[n], new float[n], 1, new int[n]);
    }

    static double[] softmax(float[] x, int off, int v) {
        double m = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            m = Math.max(m, x[off + i]);
        }
        double z = 0;
        double[] p = new double[v];
        for (int i = 0; i < v; i++) {
            p[i] = Math.exp(x[off + i] - m);
            z += p[i];
        }
        for (int i = 0; i < v; i++) {
            p[i] /= z;
        }
        return p;
    }

    @Test
    void ensembleAveragesProbabilitiesOrLogitsWithNormalizedWeights() {
        float[] a = {1, 2, 3, 0, 0, 0};
        float[] b = {3, 1, -1, 2, 2, 5};
        Teacher ta = new Fixed(a, 3, TeacherValues.LOGITS);
        Teacher tb = new Fixed(b, 3, TeacherValues.LOGITS);
        EnsembleTeacher probs = EnsembleTeacher.of(List.of(ta, tb), new double[]{1, 3}, EnsembleTeacher.Combine.PROBABILITIES);
        // the average of the probabilities, as its log (logits): softened at T = 1 it is the average itself
        assertEquals(TeacherValues.LOGITS, probs.values());
        float[] out = probs.outputs(batch(2));
        for (int r = 0; r < 2; r++) {
            double[] pa = softmax(a, r * 3, 3);
            double[] pb = softmax(b, r * 3, 3);
            for (int i = 0; i < 3; i++) {
                assertEquals(0.25 * pa[i] + 0.75 * pb[i], Math.exp(out[r * 3 + i]), 1e-7);
            }
        }
        float[] logits = EnsembleTeacher.of(List.of(ta, tb), new double[]{2, 2}, EnsembleTeacher.Combine.LOGITS).outputs(batch(2));
        assertArrayEquals(new float[]{2, 1.5f, 1, 1, 1, 2.5f}, logits, 1e-6f);
        Teacher probTeacher = new Fixed(new float[]{0.2f, 0.3f, 0.5f}, 3, TeacherValues.PROBABILITIES);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> EnsembleTeacher.of(List.of(ta, probTeacher), new double[]{1, 1}, EnsembleTeacher.Combine.LOGITS));
        assertTrue(e.getMessage().contains("teacher 1 gives probabilities"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> EnsembleTeacher.of(ta, new Fixed(new float[4], 4, TeacherValues.LOGITS)));
        assertTrue(e.getMessage().contains("has 4 classes, teacher 0 has 3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> EnsembleTeacher.of(List.of(ta, tb), new double[]{1, -1}, EnsembleTeacher.Combine.PROBABILITIES));
        assertTrue(e.getMessage().contains("weight 1 is -1.0"), e.getMessage());
    }

    /** Finite weights whose sum overflows a double are still normalized (not to 0 / Infinity, which is 0 each). */
    @Test
    void hugeEnsembleWeightsAreNormalizedWithoutOverflow() {
        float[] a = {1, 2, 3, 0.5f, -2, 4};
        float[] b = {3, 1, -1, 2, 2, 5};
        Teacher ta = new Fixed(a, 3, TeacherValues.LOGITS);
        Teacher tb = new Fixed(b, 3, TeacherValues.LOGITS);
        for (EnsembleTeacher.Combine combine : EnsembleTeacher.Combine.values()) {
            float[] expected = EnsembleTeacher.of(List.of(ta, tb), new double[]{1, 3}, combine).outputs(batch(2));
            float[] huge = EnsembleTeacher.of(List.of(ta, tb), new double[]{Double.MAX_VALUE / 3, Double.MAX_VALUE}, combine)
                    .outputs(batch(2));
            assertArrayEquals(expected, huge, 1e-6f, combine.name());
        }
    }

    @Test
    void alignmentTruncatesOrPadsAndRefusesTheWrongDirection() {
        float[] rows = {1, 2, 3, 4, 5, 6, 7, 8};
        Teacher t4 = new Fixed(rows, 4, TeacherValues.LOGITS);
        Teacher cut = VocabularyAlignment.align(t4, 3, VocabularyAlignment.Mode.TRUNCATE);
        assertArrayEquals(new float[]{1, 2, 3, 5, 6, 7}, cut.outputs(batch(2)), 0f);
        // PAD keeps the teacher's kind: logits padded with -inf, probabilities with 0 (both zero mass)
        Teacher padded = VocabularyAlignment.align(t4, 6, VocabularyAlignment.Mode.PAD);
        assertEquals(TeacherValues.LOGITS, padded.values());
        float ninf = Float.NEGATIVE_INFINITY;
        assertArrayEquals(new float[]{1, 2, 3, 4, ninf, ninf, 5, 6, 7, 8, ninf, ninf}, padded.outputs(batch(2)), 0f);
        float[] probs = {0.1f, 0.2f, 0.3f, 0.4f, 0.7f, 0f, 0.2f, 0.1f};
        Teacher paddedProbs = VocabularyAlignment.align(new Fixed(probs, 4, TeacherValues.PROBABILITIES), 5, VocabularyAlignment.Mode.PAD);
        assertEquals(TeacherValues.PROBABILITIES, paddedProbs.values());
        assertArrayEquals(new float[]{0.1f, 0.2f, 0.3f, 0.4f, 0f, 0.7f, 0f, 0.2f, 0.1f, 0f}, paddedProbs.outputs(batch(2)), 0f);
        assertSame(t4, VocabularyAlignment.align(t4, 4, VocabularyAlignment.Mode.PAD));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VocabularyAlignment.align(t4, 6, VocabularyAlignment.Mode.TRUNCATE));
        assertTrue(e.getMessage().contains("4 classes, fewer than the student's 6; use PAD"), e.getMessage());
    }

    @Test
    void alignmentRefusesAStudentWithoutClasses() {
        Teacher t4 = new Fixed(new float[]{1, 2, 3, 4}, 4, TeacherValues.LOGITS);
        for (int bad : new int[]{0, -2}) {
            for (VocabularyAlignment.Mode mode : VocabularyAlignment.Mode.values()) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VocabularyAlignment.align(t4, bad, mode),
                        bad + " " + mode);
                assertEquals("cannot align the teacher's 4 classes to a student with " + bad + " classes; expected >= 1",
                        e.getMessage());
            }
        }
    }

    /** The wrappers change the teacher's class scores, not the model: its intermediate features stay reachable (feature losses). */
    @Test
    void alignedAndTopKTeachersGiveTheirTeachersFeatures() {
        float[] hidden = {0.5f, -1, 2, 7, 0.25f, 3};
        Teacher scores = new Fixed(new float[]{1, 2, 3, 4, 5, 6}, 3, TeacherValues.LOGITS);
        Teacher withFeatures = new Teacher() {
            @Override
            public int classes() {
                return scores.classes();
            }

            @Override
            public TeacherValues values() {
                return scores.values();
            }

            @Override
            public float[] outputs(Batch batch) {
                return scores.outputs(batch);
            }

            @Override
            public String describe() {
                return "fixed, with a feature";
            }

            @Override
            public org.distill4j.data.Feature feature(Batch batch, String name) {
                if (!name.equals("hidden")) {
                    throw new IllegalArgumentException("no feature '" + name + "'");
                }
                return new org.distill4j.data.Feature(Arrays.copyOf(hidden, batch.size() * 3), batch.size(), new int[]{3});
            }
        };
        for (Teacher t : new Teacher[]{VocabularyAlignment.align(withFeatures, 5, VocabularyAlignment.Mode.PAD),
                VocabularyAlignment.align(withFeatures, 2, VocabularyAlignment.Mode.TRUNCATE), TopKTeacher.of(withFeatures, 2)}) {
            org.distill4j.data.Feature f = t.feature(batch(2), "hidden");
            assertArrayEquals(hidden, f.values(), 0f, t.describe());
            assertArrayEquals(new int[]{3}, f.shape(), t.describe());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.feature(batch(2), "conv"));
            assertEquals("no feature 'conv'", e.getMessage());
        }
    }

    /**
     * Zero-mass classes of a padded teacher through the other wrappers: an ensemble averaging logits keeps them of
     * zero mass (and a member of weight 0 takes no part, instead of 0 x -inf = NaN); a top-k of more classes than the
     * teacher has gives -inf log-probabilities, which training takes.
     */
    @Test
    void paddedClassesStayOfZeroMassThroughEnsemblesAndTopK() {
        float ninf = Float.NEGATIVE_INFINITY;
        Teacher padded = VocabularyAlignment.align(new Fixed(new float[]{1, 2, 3, 4, 5, 6}, 3, TeacherValues.LOGITS), 4,
                VocabularyAlignment.Mode.PAD);
        Teacher full = new Fixed(new float[]{0.5f, -1, 2, 1, 3, 0, -2, 0.25f}, 4, TeacherValues.LOGITS);
        float[] avg = EnsembleTeacher.of(List.of(padded, full), new double[]{1, 3}, EnsembleTeacher.Combine.LOGITS).outputs(batch(2));
        assertArrayEquals(new float[]{0.625f, -0.25f, 2.25f, ninf, 3.25f, 1.25f, 0, ninf}, avg, 1e-6f);
        float[] none = EnsembleTeacher.of(List.of(padded, full), new double[]{0, 1}, EnsembleTeacher.Combine.LOGITS).outputs(batch(2));
        assertArrayEquals(new float[]{0.5f, -1, 2, 1, 3, 0, -2, 0.25f}, none, 0f);
        float[] mixed = EnsembleTeacher.of(List.of(padded, full), new double[]{1, 1}, EnsembleTeacher.Combine.PROBABILITIES)
                .outputs(batch(2));
        double[] pa = softmax(new float[]{1, 2, 3}, 0, 3);
        double[] pf = softmax(new float[]{0.5f, -1, 2, 1}, 0, 4);
        for (int i = 0; i < 4; i++) {
            assertEquals(0.5 * (i < 3 ? pa[i] : 0) + 0.5 * pf[i], Math.exp(mixed[i]), 1e-7, "class " + i);
        }

        SparseTeacher.TopK top = TopKTeacher.of(padded, 4).topK(batch(2));
        assertEquals(ninf, top.logProbs()[3]);
        assertEquals(3, top.ids()[3], "the padded class is last");
        org.distill4j.loss.LogitBatch b = org.distill4j.loss.LogitBatch.ofTopK(2, 4, new float[]{0.1f, 0.4f, -0.3f, 0.2f, 1, 0, 0.5f, -1},
                top.ids(), top.logProbs(), 4, null);
        float[] g = new float[8];
        double kd = new org.distill4j.loss.TopKKd(2, org.distill4j.loss.TopKKd.Tail.RENORMALIZE).compute(b, g, 1f).value();
        assertTrue(Double.isFinite(kd), "top-k kd over the padded teacher: " + kd);
        for (float x : g) {
            assertTrue(Float.isFinite(x));
        }
    }

    @Test
    void topKKeepsTheBestClassesInOrderWithExactLogProbabilities() {
        Random rng = new Random(2);
        int v = 57;
        int n = 4;
        float[] logits = Inputs.logits(rng, n, v, 3);
        TopKTeacher top = TopKTeacher.of(new Fixed(logits, v, TeacherValues.LOGITS), 6);
        SparseTeacher.TopK k = top.topK(batch(n));
        for (int r = 0; r < n; r++) {
            double[] p = softmax(logits, r * v, v);
            Integer[] order = new Integer[v];
            for (int i = 0; i < v; i++) {
                order[i] = i;
            }
            Arrays.sort(order, (x, y) -> Double.compare(p[y], p[x]));
            for (int j = 0; j < 6; j++) {
                assertEquals(order[j], k.ids()[r * 6 + j], "row " + r + " rank " + j);
                assertEquals(Math.log(p[order[j]]), k.logProbs()[r * 6 + j], 1e-6);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> TopKTeacher.of(new Fixed(logits, v, TeacherValues.LOGITS), v + 1));
    }

    /** Log softmax of x / t in float64, shifted by the row's max first (exact also for logits near the float limit). */
    static double[] refLogSoftmax(float[] x, int off, int v, double t, boolean probabilities) {
        double[] row = new double[v];
        double m = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            row[i] = probabilities ? Math.log(x[off + i]) : x[off + i];
            m = Math.max(m, row[i]);
        }
        for (int i = 0; i < v; i++) {
            row[i] -= m;
        }
        return org.distill4j.testing.Float64Reference.logSoftmax(row, 0, v, t);
    }

    /** Rows of 13 logits: moderate, near the float limit (with a tie), +-300 with a 900, and with a -inf class. */
    static float[] extremeLogits(Random rng, int n, int v) {
        float[] x = Inputs.logits(rng, n, v, 2);
        for (int i = 0; i < v; i++) {
            x[v + i] = 3.0e38f - i * 1.0e37f;                 // row 1: near the float limit
            x[2 * v + i] = (float) (300 * rng.nextGaussian()); // row 2: |x| ~ 300 and a 900
        }
        x[v + 5] = 3.0e38f;
        x[2 * v + 4] = 900;
        x[3 * v + 7] = Float.NEGATIVE_INFINITY;                // row 3: a class of zero mass
        return x;
    }

    /** TeacherRows.logProbabilities at T against float64, for logits and probabilities; at T = 1 the T-less method. */
    @Test
    void teacherRowsSoftenAtATemperature() {
        Random rng = new Random(31);
        int v = 13;
        int n = 5;
        float[] logits = extremeLogits(rng, n, v);
        float[] probs = Inputs.probabilities(rng, n, v, 3);
        probs[2] = 0f;
        probs[v + 4] = 1e-30f;
        double[] out = new double[v];
        double[] plain = new double[v];
        for (double t : new double[]{0.5, 1, 2.5, 4, 7.3}) {
            for (int r = 0; r < n; r++) {
                TeacherRows.logProbabilities(logits, TeacherValues.LOGITS, r, v, t, out);
                org.distill4j.testing.Tolerances.assertLogProbsClose(refLogSoftmax(logits, r * v, v, t, false), out, "logits, T " + t + ", row " + r);
                TeacherRows.logProbabilities(probs, TeacherValues.PROBABILITIES, r, v, t, out);
                org.distill4j.testing.Tolerances.assertLogProbsClose(refLogSoftmax(probs, r * v, v, t, true), out, "probabilities, T " + t + ", row " + r);
                if (t == 1) {
                    for (TeacherValues kind : TeacherValues.values()) {
                        float[] rows = kind == TeacherValues.LOGITS ? logits : probs;
                        TeacherRows.logProbabilities(rows, kind, r, v, 1.0, out);
                        TeacherRows.logProbabilities(rows, kind, r, v, plain);
                        assertArrayEquals(plain, out, 0.0, kind + " row " + r);
                    }
                }
            }
        }
        assertEquals(0.0, Math.exp(outAt(logits, 3, v, 4)[7]), "a -inf logit stays of zero mass at T");
        for (double bad : new double[]{0, -1, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TeacherRows.logProbabilities(logits, TeacherValues.LOGITS, 0, v, bad, new double[v]));
            assertEquals("temperature is " + bad + ", expected a finite value > 0", e.getMessage());
        }
    }

    static double[] outAt(float[] rows, int r, int v, double t) {
        double[] out = new double[v];
        TeacherRows.logProbabilities(rows, TeacherValues.LOGITS, r, v, t, out);
        return out;
    }

    /**
     * An ensemble's rows at T softened at T are m_T = sum_k w_k softmax(x_k / T) (float64 reference); outputs(batch) is
     * outputs(batch, 1); a LOGITS ensemble is the same at every T, and one with a PROBABILITIES ensemble among its members
     * is the normalized geometric mean of the members' distributions at T (the inner one's being its m_T).
     */
    @Test
    void anEnsembleAtTAveragesItsMembersSoftenedAtT() {
        Random rng = new Random(32);
        int v = 13;
        int n = 5;
        float[] a = extremeLogits(rng, n, v);
        float[] b = Inputs.probabilities(rng, n, v, 2);
        b[3 * v + 7] = 0f; // row 3, class 7: zero mass in both members
        b[v + 2] = 1e-30f;
        float[] c = Inputs.logits(rng, n, v, 4);
        Teacher ta = new Fixed(a, v, TeacherValues.LOGITS);
        Teacher tb = new Fixed(b, v, TeacherValues.PROBABILITIES);
        Teacher tc = new Fixed(c, v, TeacherValues.LOGITS);
        EnsembleTeacher ens = EnsembleTeacher.of(List.of(ta, tb), new double[]{1, 2.5}, EnsembleTeacher.Combine.PROBABILITIES);
        EnsembleTeacher geo = EnsembleTeacher.of(List.of(ens, tc), new double[]{3, 1}, EnsembleTeacher.Combine.LOGITS);
        EnsembleTeacher plainGeo = EnsembleTeacher.of(List.of(ta, tc), new double[]{3, 1}, EnsembleTeacher.Combine.LOGITS);
        assertEquals(TeacherValues.LOGITS, ens.values());
        assertArrayEquals(ens.outputs(batch(n), 1.0), ens.outputs(batch(n)), 0f);
        for (double t : new double[]{0.5, 1, 2.5, 4}) {
            float[] rows = ens.outputs(batch(n), t);
            float[] geoRows = geo.outputs(batch(n), t);
            assertArrayEquals(plainGeo.outputs(batch(n)), plainGeo.outputs(batch(n), t), 0f, "LOGITS of T-free members, T " + t);
            for (int r = 0; r < n; r++) {
                double[] la = refLogSoftmax(a, r * v, v, t, false);
                double[] lb = refLogSoftmax(b, r * v, v, t, true);
                double[] lc = refLogSoftmax(c, r * v, v, t, false);
                double[] m = new double[v];
                double[] g = new double[v];
                for (int i = 0; i < v; i++) {
                    m[i] = Math.log(Math.exp(la[i]) / 3.5 + 2.5 * Math.exp(lb[i]) / 3.5);
                    g[i] = 0.75 * m[i] + 0.25 * lc[i];
                }
                String what = "T " + t + ", row " + r;
                org.distill4j.testing.Tolerances.assertLogProbsClose(m, refLogSoftmax(rows, r * v, v, t, false), what);
                double[] gm = org.distill4j.testing.Float64Reference.logSoftmax(g, 0, v, 1.0);
                org.distill4j.testing.Tolerances.assertLogProbsClose(gm, refLogSoftmax(geoRows, r * v, v, t, false), "geometric, " + what);
            }
            assertEquals(Float.NEGATIVE_INFINITY, rows[3 * v + 7], "zero mass in every member, T " + t);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ens.outputs(batch(n), 0));
        assertEquals("ensemble teacher asked at temperature 0.0, expected a finite value > 0", e.getMessage());
    }

    /** The wrappers forward the temperature: the aligned dense rows and the aligned top-k of an ensemble at T. */
    @Test
    void alignmentAndTopKForwardTheTemperature() {
        Random rng = new Random(33);
        int v = 11;
        int n = 4;
        Teacher ta = new Fixed(Inputs.logits(rng, n, v, 3), v, TeacherValues.LOGITS);
        Teacher tb = new Fixed(Inputs.probabilities(rng, n, v, 2), v, TeacherValues.PROBABILITIES);
        EnsembleTeacher ens = EnsembleTeacher.of(List.of(ta, tb), new double[]{1, 2}, EnsembleTeacher.Combine.PROBABILITIES);
        double t = 4;
        float[] at = ens.outputs(batch(n), t);
        float ninf = Float.NEGATIVE_INFINITY;
        Teacher padded = VocabularyAlignment.align(ens, v + 2, VocabularyAlignment.Mode.PAD);
        float[] p = padded.outputs(batch(n), t);
        for (int r = 0; r < n; r++) {
            assertArrayEquals(Arrays.copyOfRange(at, r * v, (r + 1) * v), Arrays.copyOfRange(p, r * (v + 2), r * (v + 2) + v), 0f);
            assertArrayEquals(new float[]{ninf, ninf}, Arrays.copyOfRange(p, r * (v + 2) + v, (r + 1) * (v + 2)), 0f);
        }
        float[] cut = VocabularyAlignment.align(ens, v - 3, VocabularyAlignment.Mode.TRUNCATE).outputs(batch(n), t);
        for (int r = 0; r < n; r++) {
            assertArrayEquals(Arrays.copyOfRange(at, r * v, r * v + v - 3), Arrays.copyOfRange(cut, r * (v - 3), (r + 1) * (v - 3)), 0f);
        }
        TopKTeacher top = TopKTeacher.of(ens, 4);
        SparseTeacher.TopK k1 = top.topK(batch(n));
        SparseTeacher.TopK k4 = top.topK(batch(n), t);
        assertNotEquals(Arrays.toString(k1.logProbs()), Arrays.toString(k4.logProbs()), "the top-k at T differs from the top-k at 1");
        SparseTeacher.TopK direct = TopKTeacher.of(new Fixed(at, v, TeacherValues.LOGITS), 4).topK(batch(n));
        assertArrayEquals(direct.ids(), k4.ids());
        assertArrayEquals(direct.logProbs(), k4.logProbs(), 0f);
        // the aligned top-k view forwards T: PAD keeps the entries at T and appends the new classes
        SparseTeacher.TopK aligned = VocabularyAlignment.align(top, v + 1, VocabularyAlignment.Mode.PAD).topK(batch(n), t);
        assertEquals(5, aligned.k());
        for (int r = 0; r < n; r++) {
            assertArrayEquals(Arrays.copyOfRange(k4.ids(), r * 4, r * 4 + 4), Arrays.copyOfRange(aligned.ids(), r * 5, r * 5 + 4));
            assertArrayEquals(Arrays.copyOfRange(k4.logProbs(), r * 4, r * 4 + 4), Arrays.copyOfRange(aligned.logProbs(), r * 5, r * 5 + 4), 0f);
            assertEquals(ninf, aligned.logProbs()[r * 5 + 4]);
        }
        // a top-k of a top-k teacher takes the best entries of that teacher at T
        SparseTeacher.TopK best = TopKTeacher.of(top, 2).topK(batch(n), t);
        for (int r = 0; r < n; r++) {
            assertArrayEquals(Arrays.copyOfRange(k4.ids(), r * 4, r * 4 + 2), Arrays.copyOfRange(best.ids(), r * 2, r * 2 + 2));
        }
    }

    /**
     * mse, which refuses probabilities, takes a probability-averaging ensemble: its rows are the log of the averaged
     * probabilities, and mse matches them (float64 reference, upstream 0.6).
     */
    @Test
    void mseMatchesTheLogOfAnEnsemblesAveragedProbabilities() {
        Random rng = new Random(34);
        int v = 9;
        int n = 3;
        float[] a = Inputs.logits(rng, n, v, 3);
        float[] b = Inputs.probabilities(rng, n, v, 2);
        EnsembleTeacher ens = EnsembleTeacher.of(List.of(new Fixed(a, v, TeacherValues.LOGITS), new Fixed(b, v, TeacherValues.PROBABILITIES)),
                new double[]{1, 3}, EnsembleTeacher.Combine.PROBABILITIES);
        float[] s = Inputs.logits(rng, n, v, 2);
        float[] rows = ens.outputs(batch(n));
        float[] g = new float[n * v];
        double value = new org.distill4j.loss.LogitMse().compute(org.distill4j.loss.LogitBatch.of(n, v, s, rows, ens.values(), null), g, 0.6f)
                .value();
        double expected = 0;
        double[] gRef = new double[n * v];
        for (int r = 0; r < n; r++) {
            double[] la = refLogSoftmax(a, r * v, v, 1, false);
            double[] lb = refLogSoftmax(b, r * v, v, 1, true);
            for (int i = 0; i < v; i++) {
                double logM = Math.log(0.25 * Math.exp(la[i]) + 0.75 * Math.exp(lb[i]));
                org.distill4j.testing.Tolerances.assertLogProbsClose(new double[]{logM}, new double[]{rows[r * v + i]}, "row " + r + " class " + i);
                double d = s[r * v + i] - logM;
                expected += d * d / v / n;
                gRef[r * v + i] = 0.6 * 2 * d / v / n;
            }
        }
        org.distill4j.testing.Tolerances.assertValueClose(expected, value, "mse on the ensemble");
        org.distill4j.testing.Tolerances.assertGradClose(gRef, g, "mse gradient on the ensemble");
    }
}
