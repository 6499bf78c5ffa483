package org.distill4j.teacher;

import org.distill4j.data.Batch;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LossResult;
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

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A top-k teacher ({@link SparseTeacher}: API logprobs, a top-k store) aligned to a student of another vocabulary size
 * stays a top-k teacher, for {@code topk-kd}, with the semantics of aligning its dense distribution: PAD keeps the
 * entries and gives the new classes no mass; TRUNCATE drops the entries beyond the student's vocabulary and renormalizes.
 * Checked against a float64 reference of the aligned distribution (value and gradient of topk-kd, both tail modes).
 */
class SparseAlignmentTest {
    static final int N = 7;
    static final float NINF = Float.NEGATIVE_INFINITY;

    /**
     * A top-k teacher that has only its entries, as a top-k store: {@link #outputs} throws. Rows are cycled over the
     * batch; {@link #calls} counts the top-k reads.
     */
    static final class Entries implements SparseTeacher {
        final int[] ids;
        final float[] lps;
        final int k;
        final int classes;
        int calls;

        Entries(int[] ids, float[] lps, int k, int classes) {
            this.ids = ids;
            this.lps = lps;
            this.k = k;
            this.classes = classes;
        }

        @Override
        public int k() {
            return k;
        }

        @Override
        public TopK topK(Batch batch) {
            calls++;
            int rows = ids.length / k;
            int[] i = new int[batch.size() * k];
            float[] l = new float[batch.size() * k];
            for (int r = 0; r < batch.size(); r++) {
                System.arraycopy(ids, (r % rows) * k, i, r * k, k);
                System.arraycopy(lps, (r % rows) * k, l, r * k, k);
            }
            return new TopK(i, l, k);
        }

        @Override
        public int classes() {
            return classes;
        }

        @Override
        public TeacherValues values() {
            return TeacherValues.LOGITS;
        }

        @Override
        public float[] outputs(Batch batch) {
            throw new UnsupportedOperationException("entries only");
        }

        @Override
        public String describe() {
            return "entries";
        }
    }

    /** The top-k of each row of dense logits in float64 (best first, a tie to the smaller id), as a sparse teacher. */
    static Entries topK(float[] logits, int rows, int v, int k) {
        int[] ids = new int[rows * k];
        float[] lps = new float[rows * k];
        for (int r = 0; r < rows; r++) {
            double[] lp = Float64Reference.logSoftmax(logits, r * v, v, 1.0);
            Integer[] order = new Integer[v];
            for (int i = 0; i < v; i++) {
                order[i] = i;
            }
            Arrays.sort(order, (a, b) -> lp[a] != lp[b] ? Double.compare(lp[b], lp[a]) : Integer.compare(a, b));
            for (int j = 0; j < k; j++) {
                ids[r * k + j] = order[j];
                lps[r * k + j] = (float) lp[order[j]];
            }
        }
        return new Entries(ids, lps, k, v);
    }

    /**
     * topk-kd as KL over buckets of the student's classes, in float64: each bucket has a teacher log-mass (T = 1), is
     * tempered as one class ({@code mass^(1/T)}, renormalized over the buckets) and matched to the student's tempered
     * mass in it. A class in no bucket has teacher mass 0. Value {@code T^2 sum_b P_b log(P_b / Q_b)} per row, gradient
     * {@code T (q_j - P_b(j) q_j / Q_b(j))}; mean over rows, the gradient times upstream.
     */
    static double bucketKl(float[] s, int rows, int v, List<List<int[]>> buckets, List<double[]> logMass, double t, double upstream,
                           double[] grad) {
        double total = 0;
        for (int r = 0; r < rows; r++) {
            double[] lq = Float64Reference.logSoftmax(s, r * v, v, t);
            List<int[]> bs = buckets.get(r);
            double[] lm = logMass.get(r);
            double m = Double.NEGATIVE_INFINITY;
            for (double x : lm) {
                m = Math.max(m, x / t);
            }
            double z = 0;
            for (double x : lm) {
                z += Math.exp(x / t - m);
            }
            double[] ratio = new double[v]; // P_b / Q_b of each class's bucket, 0 outside every bucket
            for (int b = 0; b < bs.size(); b++) {
                double p = Math.exp(lm[b] / t - m) / z;
                double qb = 0;
                for (int j : bs.get(b)) {
                    qb += Math.exp(lq[j]);
                }
                if (p > 0) {
                    total += t * t * p * (Math.log(p) - Math.log(qb)) / rows;
                }
                for (int j : bs.get(b)) {
                    ratio[j] = p / qb;
                }
            }
            for (int j = 0; j < v; j++) {
                double q = Math.exp(lq[j]);
                grad[r * v + j] = upstream * t * (q - ratio[j] * q) / rows;
            }
        }
        return total;
    }

    /** topk-kd on the aligned teacher's entries for a student of {@code v} classes. */
    static LossResult topKKd(SparseTeacher.TopK top, float[] s, int rows, int v, TopKKd.Tail tail, double t, float upstream, float[] g) {
        LogitBatch b = LogitBatch.ofTopK(rows, v, s, top.ids(), top.logProbs(), top.k(), null);
        return new TopKKd(t, tail).compute(b, g, upstream);
    }

    static Batch batch(int n) {
        return TeacherCombinatorsTest.batch(n);
    }

    @Test
    void aPadAlignedTopKTeacherIsATopKTeacherWhoseNewClassesHaveNoMass() {
        Random rng = new Random(31);
        int vt = 37;
        int v = 44;
        int k = 5;
        float[] logits = Inputs.logits(rng, N, vt, 2.5);
        Entries sparse = topK(logits, N, vt, k);
        Teacher aligned = VocabularyAlignment.align(sparse, v, VocabularyAlignment.Mode.PAD);
        assertTrue(aligned instanceof SparseTeacher, "a PAD-aligned top-k teacher is still a top-k teacher: " + aligned.describe());
        SparseTeacher st = (SparseTeacher) aligned;
        assertEquals(v, st.classes());
        assertTrue(st.describe().contains("padded from 37 to 44 classes"), st.describe());
        SparseTeacher.TopK top = st.topK(batch(N));
        assertEquals(st.k(), top.k());
        for (int r = 0; r < N; r++) {
            // the teacher's entries as they were, then the student's new classes at probability 0
            for (int j = 0; j < k; j++) {
                assertEquals(sparse.ids[r * k + j], top.ids()[r * top.k() + j]);
                assertEquals(sparse.lps[r * k + j], top.logProbs()[r * top.k() + j], 0f);
            }
            for (int c = vt; c < v; c++) {
                boolean found = false;
                for (int j = k; j < top.k(); j++) {
                    found |= top.ids()[r * top.k() + j] == c;
                }
                assertTrue(found, "row " + r + ": new class " + c + " is an entry of probability 0");
            }
            for (int j = k; j < top.k(); j++) {
                assertEquals(NINF, top.logProbs()[r * top.k() + j], 0f);
            }
        }

        float[] s = Inputs.logits(rng, N, v, 2);
        for (TopKKd.Tail tail : TopKKd.Tail.values()) {
            for (double t : new double[]{1, 2.5}) {
                // the aligned distribution: the teacher's top-k entries; under REST the rest of the teacher's mass lies on
                // its own classes outside the top-k, none on the student's new classes
                List<List<int[]>> buckets = new ArrayList<>();
                List<double[]> mass = new ArrayList<>();
                for (int r = 0; r < N; r++) {
                    List<int[]> bs = new ArrayList<>();
                    List<Double> lm = new ArrayList<>();
                    boolean[] in = new boolean[v];
                    double known = 0;
                    for (int j = 0; j < k; j++) {
                        bs.add(new int[]{sparse.ids[r * k + j]});
                        lm.add((double) sparse.lps[r * k + j]);
                        in[sparse.ids[r * k + j]] = true;
                        known += Math.exp(sparse.lps[r * k + j]);
                    }
                    if (tail == TopKKd.Tail.REST_BUCKET) {
                        List<Integer> rest = new ArrayList<>();
                        for (int c = 0; c < vt; c++) {
                            if (!in[c]) {
                                rest.add(c);
                            }
                        }
                        bs.add(rest.stream().mapToInt(Integer::intValue).toArray());
                        lm.add(Math.log(1 - known));
                    }
                    buckets.add(bs);
                    mass.add(lm.stream().mapToDouble(Double::doubleValue).toArray());
                }
                double[] want = new double[N * v];
                double ref = bucketKl(s, N, v, buckets, mass, t, 0.37, want);
                float[] g = new float[N * v];
                double got = topKKd(top, s, N, v, tail, t, 0.37f, g).value();
                String what = "PAD, " + tail + ", T " + t;
                Tolerances.assertValueClose(ref, got, what + " value");
                Tolerances.assertGradClose(want, g, what + " gradient");
                for (int r = 0; r < N; r++) {
                    for (int c = vt; c < v; c++) {
                        assertTrue(g[r * v + c] > 0, what + ": the student's mass on new class " + c + " is pushed down");
                    }
                }
            }
        }
    }

    /**
     * TRUNCATE: the entries beyond the student's vocabulary are dropped and the rest renormalized, as for a dense teacher.
     * Rows of the teacher here put all its classes beyond the student's in its top-k (so the unknown tail lies in the
     * student's vocabulary and the aligned entries are exactly the truncated distribution's), one row none of them.
     */
    @Test
    void aTruncatedTopKTeacherIsTheTruncatedDistributionsTopK() {
        Random rng = new Random(32);
        int vt = 35;
        int v = 31;
        int k = 6;
        float[] logits = Inputs.logits(rng, N, vt, 1.5);
        for (int r = 0; r < N; r++) {
            float max = Float.NEGATIVE_INFINITY;
            for (int c = 0; c < v; c++) {
                max = Math.max(max, logits[r * vt + c]);
            }
            for (int c = v; c < vt; c++) {
                // classes 31..34 the best of rows 1..6; of no mass (exp(-30)) in row 0
                logits[r * vt + c] = r == 0 ? max - 30f : max + 0.2f * (c - v) + 0.1f * r;
            }
        }
        Entries sparse = topK(logits, N, vt, k);
        Teacher aligned = VocabularyAlignment.align(sparse, v, VocabularyAlignment.Mode.TRUNCATE);
        assertTrue(aligned instanceof SparseTeacher, "a TRUNCATE-aligned top-k teacher is still a top-k teacher: " + aligned.describe());
        SparseTeacher st = (SparseTeacher) aligned;
        assertEquals(v, st.classes());
        assertEquals(k, st.k());
        assertTrue(st.describe().contains("truncated from 35 to 31 classes"), st.describe());
        SparseTeacher.TopK top = st.topK(batch(N));
        assertEquals(k, top.k());
        int dropped = 0;
        for (int r = 0; r < N; r++) {
            // the truncated distribution in float64
            double[] lp = Float64Reference.logSoftmax(logits, r * vt, v, 1.0);
            List<Integer> kept = new ArrayList<>();
            for (int j = 0; j < k; j++) {
                if (sparse.ids[r * k + j] < v) {
                    kept.add(sparse.ids[r * k + j]);
                }
            }
            dropped += k - kept.size();
            assertEquals(r == 0 ? k : k - (vt - v), kept.size(), "row " + r);
            for (int j = 0; j < kept.size(); j++) {
                assertEquals(kept.get(j), top.ids()[r * k + j], "row " + r + ": the kept entries keep their order");
                assertEquals(lp[kept.get(j)], top.logProbs()[r * k + j], 2e-6, "row " + r + ", entry " + j + ": renormalized");
            }
            for (int j = kept.size(); j < k; j++) {
                assertEquals(NINF, top.logProbs()[r * k + j], 0f, "row " + r + ": a dropped slot carries no mass");
                assertFalse(kept.contains(top.ids()[r * k + j]), "row " + r + ": a dropped slot takes a class outside the row");
            }
        }
        assertEquals((N - 1) * (vt - v), dropped);

        // RENORMALIZE: exactly topk-kd over the truncated distribution's known entries
        float[] s = Inputs.logits(rng, N, v, 2);
        for (double t : new double[]{1, 3}) {
            List<List<int[]>> buckets = new ArrayList<>();
            List<double[]> mass = new ArrayList<>();
            for (int r = 0; r < N; r++) {
                double[] lp = Float64Reference.logSoftmax(logits, r * vt, v, 1.0);
                List<int[]> bs = new ArrayList<>();
                List<Double> lm = new ArrayList<>();
                for (int j = 0; j < k; j++) {
                    int id = sparse.ids[r * k + j];
                    if (id < v) {
                        bs.add(new int[]{id});
                        lm.add(lp[id]);
                    }
                }
                buckets.add(bs);
                mass.add(lm.stream().mapToDouble(Double::doubleValue).toArray());
            }
            double[] want = new double[N * v];
            double ref = bucketKl(s, N, v, buckets, mass, t, -0.6, want);
            float[] g = new float[N * v];
            double got = topKKd(top, s, N, v, TopKKd.Tail.RENORMALIZE, t, -0.6f, g).value();
            Tolerances.assertValueClose(ref, got, "TRUNCATE, RENORMALIZE, T " + t + " value");
            Tolerances.assertGradClose(want, g, "TRUNCATE, RENORMALIZE, T " + t + " gradient");
        }
        // REST: the kept entries of the truncated distribution, its rest over the student's classes outside them (a dropped
        // entry's slot is absent: no class, so the rest is exactly the truncated distribution's)
        for (double t : new double[]{1, 3}) {
            List<List<int[]>> buckets = new ArrayList<>();
            List<double[]> mass = new ArrayList<>();
            for (int r = 0; r < N; r++) {
                double[] lp = Float64Reference.logSoftmax(logits, r * vt, v, 1.0);
                List<int[]> bs = new ArrayList<>();
                List<Double> lm = new ArrayList<>();
                boolean[] in = new boolean[v];
                double known = 0;
                for (int j = 0; j < k; j++) {
                    int id = top.ids()[r * k + j];
                    if (id == LogitBatch.ABSENT) {
                        continue;
                    }
                    in[id] = true;
                    if (top.logProbs()[r * k + j] != NINF) {
                        bs.add(new int[]{id});
                        lm.add(lp[id]);
                        known += Math.exp(lp[id]);
                    }
                }
                List<Integer> rest = new ArrayList<>();
                for (int c = 0; c < v; c++) {
                    if (!in[c]) {
                        rest.add(c);
                    }
                }
                bs.add(rest.stream().mapToInt(Integer::intValue).toArray());
                lm.add(Math.log1p(-known));
                buckets.add(bs);
                mass.add(lm.stream().mapToDouble(Double::doubleValue).toArray());
            }
            double[] want = new double[N * v];
            double ref = bucketKl(s, N, v, buckets, mass, t, 1.7, want);
            float[] g = new float[N * v];
            double got = topKKd(top, s, N, v, TopKKd.Tail.REST_BUCKET, t, 1.7f, g).value();
            // the entries are float32 log-probabilities renormalized in float64: their rest mass is known to float32 rounding
            assertEquals(ref, got, 1e-5 * Math.abs(ref), "TRUNCATE, REST, T " + t + " value");
            Tolerances.assertKernelGradClose(want, g, 1e-5, "TRUNCATE, REST, T " + t + " gradient");
        }
    }

    /** A student smaller than the teacher's top-k: the aligned rows have the student's size at most. */
    /**
     * A truncated top-k teacher truncated again (its dropped entries are absent slots, id -1 at -inf) is the teacher
     * truncated once to the smaller vocabulary: the same entries, and log-probabilities renormalized to the same mass.
     */
    @Test
    void aTruncatedTeacherTruncatedAgainIsTruncatedOnce() {
        Random rng = new Random(34);
        int vt = 37;
        int k = 7;
        float[] logits = Inputs.logits(rng, N, vt, 1.5);
        for (int r = 0; r < N; r++) {
            for (int c = 31; c < vt; c++) {
                logits[r * vt + c] += 4f; // classes 31..36 among each row's best: both truncations drop entries
            }
        }
        Entries sparse = topK(logits, N, vt, k);
        SparseTeacher twice = VocabularyAlignment.align(VocabularyAlignment.align(sparse, 34, VocabularyAlignment.Mode.TRUNCATE), 31,
                VocabularyAlignment.Mode.TRUNCATE);
        SparseTeacher once = VocabularyAlignment.align(sparse, 31, VocabularyAlignment.Mode.TRUNCATE);
        SparseTeacher.TopK a = twice.topK(batch(N));
        SparseTeacher.TopK b = once.topK(batch(N));
        assertArrayEquals(b.ids(), a.ids());
        int absent = 0;
        for (int i = 0; i < b.ids().length; i++) {
            absent += b.ids()[i] == LogitBatch.ABSENT ? 1 : 0;
            assertEquals(b.logProbs()[i], a.logProbs()[i], 2e-6, "entry " + i);
        }
        assertTrue(absent > 0, "the truncations dropped entries");
    }

    @Test
    void truncatingBelowKGivesRowsOfAtMostTheStudentsClasses() {
        Random rng = new Random(33);
        int vt = 12;
        int k = 9;
        float[] logits = Inputs.logits(rng, N, vt, 2);
        Entries sparse = topK(logits, N, vt, k);
        SparseTeacher st = (SparseTeacher) VocabularyAlignment.align(sparse, 5, VocabularyAlignment.Mode.TRUNCATE);
        assertEquals(5, st.k());
        SparseTeacher.TopK top = st.topK(batch(N));
        assertEquals(5, top.k());
        // what training checks: ids in the student's classes, none repeated, one entry of mass per row
        LogitBatch.ofTopK(N, 5, Inputs.logits(rng, N, 5, 1), top.ids(), top.logProbs(), top.k(), null);
    }

    /** A row whose entries all lie beyond the student's vocabulary has nothing left to distill: a clear error. */
    @Test
    void aRowWithNoEntryInTheStudentsVocabularyIsAClearError() {
        int[] ids = {0, 1, 2, 9, 8, 11};
        float[] lps = {-0.5f, -1.5f, -2f, -0.2f, -2f, -3f};
        Entries sparse = new Entries(ids, lps, 3, 12);
        SparseTeacher st = (SparseTeacher) VocabularyAlignment.align(sparse, 8, VocabularyAlignment.Mode.TRUNCATE);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> st.topK(batch(2)));
        assertTrue(e.getMessage().contains("row 1") && e.getMessage().contains("sample 0")
                && e.getMessage().contains("of a class >= 8 that TRUNCATE drops"), e.getMessage());
    }

    /**
     * The hint of topk-kd's error, TopKTeacher.of(teacher, k), works for a teacher that is already top-k: its best k
     * entries, without its dense outputs (which a top-k store does not have).
     */
    /** The best k of a row with absent slots keeps its entries of probability 0 before the absent slots. */
    @Test
    void topKOfARowWithAbsentSlotsKeepsEntriesFirst() {
        int a = LogitBatch.ABSENT;
        float ninf = Float.NEGATIVE_INFINITY;
        Entries sparse = new Entries(new int[]{a, 4, 7, a}, new float[]{ninf, -0.2f, ninf, ninf}, 4, 9);
        SparseTeacher.TopK top = TopKTeacher.of(sparse, 2).topK(batch(1));
        assertArrayEquals(new int[]{4, 7}, top.ids(), "the entry of probability 0 is an entry; an absent slot holds no class");
        assertArrayEquals(new float[]{-0.2f, ninf}, top.logProbs(), 0f);
    }

    @Test
    void topKOfATopKTeacherTakesItsBestEntries() {
        Random rng = new Random(34);
        int vt = 23;
        float[] logits = Inputs.logits(rng, N, vt, 2);
        Entries sparse = topK(logits, N, vt, 6);
        // shuffle each row's entries: the best are found by log-probability, not by position
        for (int r = 0; r < N; r++) {
            for (int j = 5; j > 0; j--) {
                int o = rng.nextInt(j + 1);
                int ti = sparse.ids[r * 6 + j];
                sparse.ids[r * 6 + j] = sparse.ids[r * 6 + o];
                sparse.ids[r * 6 + o] = ti;
                float tl = sparse.lps[r * 6 + j];
                sparse.lps[r * 6 + j] = sparse.lps[r * 6 + o];
                sparse.lps[r * 6 + o] = tl;
            }
        }
        TopKTeacher three = TopKTeacher.of(sparse, 3);
        SparseTeacher.TopK got = three.topK(batch(N));
        SparseTeacher.TopK want = TopKTeacher.of(new TeacherCombinatorsTest.Fixed(logits, vt, TeacherValues.LOGITS), 3).topK(batch(N));
        assertArrayEquals(want.ids(), got.ids());
        assertArrayEquals(want.logProbs(), got.logProbs(), 1e-6f);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TopKTeacher.of(sparse, 7));
        assertTrue(e.getMessage().contains("7") && e.getMessage().contains("only 6 entries per row"), e.getMessage());
        // and the user's case: a top-k teacher aligned, then wrapped as topk-kd's error suggests
        SparseTeacher.TopK padded = TopKTeacher.of(VocabularyAlignment.align(sparse, 30, VocabularyAlignment.Mode.PAD), 6).topK(batch(N));
        for (int r = 0; r < N; r++) {
            for (int j = 0; j < 3; j++) {
                assertEquals(want.ids()[r * 3 + j], padded.ids()[r * 6 + j]);
            }
        }
    }
}
