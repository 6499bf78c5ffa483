package org.distill4j.teacher;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;
import org.distill4j.loss.TopKKd;
import org.distill4j.testing.Float64Reference;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.distill4j.teacher.SparseAlignmentTest.N;
import static org.distill4j.teacher.SparseAlignmentTest.NINF;
import static org.distill4j.teacher.SparseAlignmentTest.batch;
import static org.distill4j.teacher.SparseAlignmentTest.bucketKl;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link VocabularyAlignment#map}: a teacher whose vocabulary is another order of the student's, with teacher tokens the
 * student lacks (dropped, the rest renormalized) and student tokens the teacher lacks (no mass); dense and top-k
 * teachers, against a float64 reference of the mapped distribution.
 */
class IdMapAlignmentTest {
    static final int TC = 29;
    static final int V = 26;
    static final int[] MISSING = {3, 10, 11, 17, 25, 28}; // teacher tokens the student does not have

    /** Teacher id -> student id: a shuffle of the student's ids, the missing teacher ids -1, 3 student ids unmapped. */
    static int[] map(Random rng) {
        List<Integer> ids = new ArrayList<>();
        for (int s = 0; s < V; s++) {
            ids.add(s);
        }
        java.util.Collections.shuffle(ids, rng);
        int[] m = new int[TC];
        int next = 0;
        for (int t = 0; t < TC; t++) {
            m[t] = Arrays.binarySearch(MISSING, t) >= 0 ? -1 : ids.get(next++);
        }
        assertEquals(V - 3, next);
        return m;
    }

    /** The mapped distribution in float64: p'[m[t]] = p[t] renormalized over the mapped teacher ids, 0 elsewhere. */
    static double[] mapped(float[] logits, int r, int[] m) {
        double[] lp = Float64Reference.logSoftmax(logits, r * TC, TC, 1.0);
        double kept = 0;
        for (int t = 0; t < TC; t++) {
            if (m[t] >= 0) {
                kept += Math.exp(lp[t]);
            }
        }
        double[] out = new double[V];
        Arrays.fill(out, Double.NEGATIVE_INFINITY);
        for (int t = 0; t < TC; t++) {
            if (m[t] >= 0) {
                out[m[t]] = lp[t] - Math.log(kept);
            }
        }
        return out;
    }

    @Test
    void aDenseTeacherMapsToTheMappedDistribution() {
        Random rng = new Random(41);
        int[] m = map(rng);
        float[] logits = Inputs.logits(rng, N, TC, 2);
        for (TeacherValues kind : TeacherValues.values()) {
            float[] rows = kind == TeacherValues.LOGITS ? logits : new float[logits.length];
            if (kind == TeacherValues.PROBABILITIES) {
                for (int r = 0; r < N; r++) {
                    double[] lp = Float64Reference.logSoftmax(logits, r * TC, TC, 1.0);
                    for (int t = 0; t < TC; t++) {
                        rows[r * TC + t] = (float) Math.exp(lp[t]);
                    }
                }
            }
            Teacher aligned = VocabularyAlignment.map(new TeacherCombinatorsTest.Fixed(rows, TC, kind), m, V);
            assertFalse(aligned instanceof SparseTeacher);
            assertEquals(V, aligned.classes());
            assertEquals(kind, aligned.values());
            assertTrue(aligned.describe().contains("mapped from 29 to 26 classes (23 of the teacher's kept)"), aligned.describe());
            float[] out = aligned.outputs(batch(N));
            assertEquals(N * V, out.length);
            float[] s = Inputs.logits(rng, N, V, 2);
            List<List<int[]>> buckets = new ArrayList<>();
            List<double[]> mass = new ArrayList<>();
            for (int r = 0; r < N; r++) {
                double[] want = mapped(logits, r, m);
                double[] got = new double[V];
                TeacherRows.logProbabilities(out, kind, r, V, got);
                List<int[]> bs = new ArrayList<>();
                List<Double> lm = new ArrayList<>();
                for (int c = 0; c < V; c++) {
                    if (want[c] == Double.NEGATIVE_INFINITY) {
                        assertEquals(kind == TeacherValues.LOGITS ? NINF : 0f, out[r * V + c], 0f, kind + " row " + r + " class " + c);
                    } else {
                        assertEquals(want[c], got[c], 1e-6, kind + " row " + r + " class " + c);
                        bs.add(new int[]{c});
                        lm.add(want[c]);
                    }
                }
                buckets.add(bs);
                mass.add(lm.stream().mapToDouble(Double::doubleValue).toArray());
            }
            // what training from it computes: kd (alpha 0) against the mapped distribution, value and gradient
            for (double t : new double[]{1, 2.5}) {
                double[] want = new double[N * V];
                double ref = bucketKl(s, N, V, buckets, mass, t, 0.8, want);
                float[] g = new float[N * V];
                double got = new SoftTargetKd(t, 0).compute(LogitBatch.of(N, V, s, out, kind, null), g, 0.8f).value();
                Tolerances.assertValueClose(ref, got, kind + " T " + t + " value");
                Tolerances.assertGradClose(want, g, kind + " T " + t + " gradient");
            }
        }
    }

    /** A top-k teacher stays top-k: entries renamed, those of missing tokens dropped, the student's own tokens of no mass. */
    @Test
    void aTopKTeacherMapsToTheMappedDistributionsEntries() {
        Random rng = new Random(42);
        int[] m = map(rng);
        int k = 8;
        float[] logits = Inputs.logits(rng, N, TC, 1.5);
        for (int r = 1; r < N; r++) {
            // rows 1.. put the missing tokens first but one (the tail of such a row lies in the student's vocabulary but for
            // one token of mass exp(-40)); row 0 leaves them where they fall
            float max = Float.NEGATIVE_INFINITY;
            for (int t = 0; t < TC; t++) {
                max = Math.max(max, logits[r * TC + t]);
            }
            for (int i = 0; i < MISSING.length; i++) {
                logits[r * TC + MISSING[i]] = i == 0 ? max - 40f : max + 0.3f * i + 0.05f * r;
            }
        }
        SparseAlignmentTest.Entries sparse = SparseAlignmentTest.topK(logits, N, TC, k);
        SparseTeacher aligned = VocabularyAlignment.map(sparse, m, V);
        assertEquals(V, aligned.classes());
        assertEquals(k + 3, aligned.k(), "the top-k, and the 3 student tokens the teacher lacks as entries of probability 0");
        SparseTeacher.TopK top = aligned.topK(batch(N));
        assertEquals(k + 3, top.k());
        int kk = top.k();
        int[] unmapped = {0, 0, 0};
        boolean[] image = new boolean[V];
        for (int t : m) {
            if (t >= 0) {
                image[t] = true;
            }
        }
        for (int c = 0, u = 0; c < V; c++) {
            if (!image[c]) {
                unmapped[u++] = c;
            }
        }
        float[] s = Inputs.logits(rng, N, V, 2);
        List<List<int[]>> renorm = new ArrayList<>();
        List<double[]> renormMass = new ArrayList<>();
        List<List<int[]>> rest = new ArrayList<>();
        List<double[]> restMass = new ArrayList<>();
        for (int r = 0; r < N; r++) {
            double[] want = mapped(logits, r, m);
            List<Integer> kept = new ArrayList<>();
            for (int j = 0; j < k; j++) {
                int t = sparse.ids[r * k + j];
                if (m[t] >= 0) {
                    kept.add(m[t]);
                }
            }
            if (r > 0) {
                assertEquals(k - (MISSING.length - 1), kept.size(), "row " + r);
            }
            List<int[]> rb = new ArrayList<>();
            List<Double> rm = new ArrayList<>();
            List<int[]> bb = new ArrayList<>();
            List<Double> bm = new ArrayList<>();
            boolean[] in = new boolean[V];
            double known = 0;
            for (int j = 0; j < kk; j++) {
                int id = top.ids()[r * kk + j];
                if (id != LogitBatch.ABSENT) {
                    in[id] = true;
                }
                if (j < kept.size()) {
                    assertEquals(kept.get(j), id, "row " + r + ", entry " + j + ": the teacher's entry, renamed, in order");
                    if (r > 0) { // the row's tail lies in the student's vocabulary: exactly the mapped distribution
                        assertEquals(want[id], top.logProbs()[r * kk + j], 2e-6, "row " + r + ", entry " + j);
                    }
                    rb.add(new int[]{id});
                    rm.add(want[id]);
                    bb.add(new int[]{id});
                    bm.add((double) top.logProbs()[r * kk + j]);
                    known += Math.exp(top.logProbs()[r * kk + j]);
                } else {
                    assertEquals(NINF, top.logProbs()[r * kk + j], 0f, "row " + r + ", entry " + j);
                    assertTrue(j >= k || id == LogitBatch.ABSENT, "row " + r + ": a dropped entry's slot is absent, got " + id);
                    assertTrue(j < k || image[id] == false, "row " + r + ": the student's own tokens, of no teacher mass");
                }
            }
            for (int j = 0; j < 3; j++) {
                assertEquals(unmapped[j], top.ids()[r * kk + k + j], "row " + r + ": the student's own tokens, last");
            }
            List<Integer> tail = new ArrayList<>();
            for (int c = 0; c < V; c++) {
                if (!in[c]) {
                    tail.add(c);
                }
            }
            bb.add(tail.stream().mapToInt(Integer::intValue).toArray());
            bm.add(Math.log1p(-known));
            renorm.add(rb);
            renormMass.add(rm.stream().mapToDouble(Double::doubleValue).toArray());
            rest.add(bb);
            restMass.add(bm.stream().mapToDouble(Double::doubleValue).toArray());
        }
        LogitBatch b = LogitBatch.ofTopK(N, V, s, top.ids(), top.logProbs(), kk, null);
        for (double t : new double[]{1, 3}) {
            double[] want = new double[N * V];
            double ref = bucketKl(s, N, V, renorm, renormMass, t, -1.3, want);
            float[] g = new float[N * V];
            double got = new TopKKd(t, TopKKd.Tail.RENORMALIZE).compute(b, g, -1.3f).value();
            Tolerances.assertValueClose(ref, got, "RENORMALIZE, T " + t + " value");
            Tolerances.assertGradClose(want, g, "RENORMALIZE, T " + t + " gradient");
            // REST: the entries as aligned, the rest over the student tokens outside the row (the dropped entries' absent
            // slots hold none, so their classes are in the rest; the student's own tokens: mass 0)
            ref = bucketKl(s, N, V, rest, restMass, t, 0.45, want);
            got = new TopKKd(t, TopKKd.Tail.REST_BUCKET).compute(b, g, 0.45f).value();
            Tolerances.assertValueClose(ref, got, "REST, T " + t + " value");
            Tolerances.assertGradClose(want, g, "REST, T " + t + " gradient");
        }
    }

    /** TRUNCATE and PAD are the maps t -> t (or none beyond the student's classes): the same rows. */
    @Test
    void truncateAndPadAreIdentityMaps() {
        Random rng = new Random(43);
        float[] logits = Inputs.logits(rng, N, 17, 2);
        Teacher dense = new TeacherCombinatorsTest.Fixed(logits, 17, TeacherValues.LOGITS);
        SparseAlignmentTest.Entries sparse = SparseAlignmentTest.topK(logits, N, 17, 5);
        int[] cut = new int[17];
        for (int t = 0; t < 17; t++) {
            cut[t] = t < 12 ? t : -1;
        }
        int[] same = new int[17];
        Arrays.setAll(same, t -> t);
        assertArrayEquals(VocabularyAlignment.align(dense, 12, VocabularyAlignment.Mode.TRUNCATE).outputs(batch(N)),
                VocabularyAlignment.map(dense, cut, 12).outputs(batch(N)), 0f);
        assertArrayEquals(VocabularyAlignment.align(dense, 20, VocabularyAlignment.Mode.PAD).outputs(batch(N)),
                VocabularyAlignment.map(dense, same, 20).outputs(batch(N)), 0f);
        SparseTeacher.TopK a = VocabularyAlignment.align(sparse, 12, VocabularyAlignment.Mode.TRUNCATE).topK(batch(N));
        SparseTeacher.TopK b = VocabularyAlignment.map(sparse, cut, 12).topK(batch(N));
        assertArrayEquals(a.ids(), b.ids());
        assertArrayEquals(a.logProbs(), b.logProbs(), 0f);
        a = VocabularyAlignment.align(sparse, 20, VocabularyAlignment.Mode.PAD).topK(batch(N));
        b = VocabularyAlignment.map(sparse, same, 20).topK(batch(N));
        assertArrayEquals(a.ids(), b.ids());
        assertArrayEquals(a.logProbs(), b.logProbs(), 0f);
    }

    @Test
    void aBadMapIsRefusedNamingTheEntry() {
        Teacher t = new TeacherCombinatorsTest.Fixed(new float[]{1, 2, 3, 4}, 4, TeacherValues.LOGITS);
        String[][] cases = {
                {"id map has 3 entries, expected one per teacher class (4)"},
                {"id map entry 2 (teacher class 2) is 5, expected a student class in [0, 5) or -1 for none"},
                {"id map entry 1 (teacher class 1) is -2, expected a student class in [0, 5) or -1 for none"},
                {"id map sends teacher classes 0 and 3 both to student class 4"},
                {"id map sends none of the teacher's 4 classes to the student's"},
        };
        int[][] maps = {{0, 1, 2}, {0, 1, 5, 2}, {0, -2, 1, 2}, {4, 1, 2, 4}, {-1, -1, -1, -1}};
        for (int i = 0; i < maps.length; i++) {
            int[] m = maps[i];
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VocabularyAlignment.map(t, m, 5));
            assertTrue(e.getMessage().contains(cases[i][0]), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VocabularyAlignment.map(t, new int[]{0, 1, 2, 3}, 0));
        assertTrue(e.getMessage().contains("expected >= 1"), e.getMessage());
        // the map is part of what the outputs depend on: another map, another identity (a checkpoint does not resume with it)
        Teacher a = VocabularyAlignment.map(t, new int[]{0, 1, 2, 3}, 5);
        Teacher b = VocabularyAlignment.map(t, new int[]{1, 0, 2, 3}, 5);
        assertNotEquals(a.identity(), b.identity());
        assertEquals(a.identity(), VocabularyAlignment.map(t, new int[]{0, 1, 2, 3}, 5).identity());
        // the map is copied: changing the caller's array afterwards changes nothing
        int[] m = {0, 1, 2, 3};
        Teacher c = VocabularyAlignment.map(t, m, 5);
        float[] before = c.outputs(batch(1));
        m[0] = 4;
        assertArrayEquals(before, c.outputs(batch(1)), 0f);
    }
}
