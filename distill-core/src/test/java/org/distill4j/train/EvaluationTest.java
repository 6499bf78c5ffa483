package org.distill4j.train;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.student.Student;
import org.distill4j.testing.Float64Reference;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Evaluation over inference batches of {@link Evaluation#EVAL_BATCH} rows: predictions and the KL to the teacher over a
 * dataset whose last batch is partial equal a float64 reference taken row by row.
 */
class EvaluationTest {
    private static final int D = 7;
    private static final int K = 11; // not a power of two

    /** A linear student whose logits of a row depend on that row alone, so batching cannot change them. */
    static final class LinearStudent implements Student {
        final float[] w;

        LinearStudent(Random rng, double scale) {
            w = new float[K * D];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) (rng.nextGaussian() * scale);
            }
        }

        float[] logits(float[] x, int rows) {
            float[] out = new float[rows * K];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < K; c++) {
                    float s = 0;
                    for (int j = 0; j < D; j++) {
                        s += w[c * D + j] * x[r * D + j];
                    }
                    out[r * K + c] = s;
                }
            }
            return out;
        }

        @Override
        public int classes() {
            return K;
        }

        @Override
        public float[] forward(Batch batch, boolean training) {
            return logits(batch.features(), batch.size());
        }

        @Override
        public void backward(float[] dLogits) {
            throw new UnsupportedOperationException("evaluation only");
        }

        @Override
        public void endEpoch() {
        }

        @Override
        public long parameterCount() {
            return w.length;
        }

        @Override
        public String describe() {
            return "linear test student";
        }
    }

    static Dataset data(int n, long seed) {
        Random rng = new Random(seed);
        float[] x = new float[n * D];
        int[] y = new int[n];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        for (int i = 0; i < n; i++) {
            y[i] = rng.nextInt(K);
        }
        return new Dataset("random/" + n, x, D, y, K);
    }

    @Test
    void predictionsAndKlOverBatchesWithAPartialLastOneMatchAFloat64Reference() {
        Random rng = new Random(31);
        int n = 2 * Evaluation.EVAL_BATCH + 345; // two full inference batches and a partial one
        Dataset data = data(n, 5);
        for (double scale : new double[]{0.7, 40}) { // ordinary and extreme logits
            LinearStudent student = new LinearStudent(rng, scale);
            float[] teacherLogits = new float[n * K];
            for (int i = 0; i < teacherLogits.length; i++) {
                teacherLogits[i] = (float) (rng.nextGaussian() * 3 * scale);
            }
            float[] teacherLogProbs = new float[n * K];
            for (int r = 0; r < n; r++) {
                double[] lt = Float64Reference.logSoftmax(teacherLogits, r * K, K, 1);
                for (int c = 0; c < K; c++) {
                    teacherLogProbs[r * K + c] = (float) lt[c];
                }
            }
            float[] all = student.logits(data.features(), n);
            int[] expected = new int[n];
            double kl = 0;
            int correct = 0;
            for (int r = 0; r < n; r++) {
                int best = 0;
                for (int c = 1; c < K; c++) {
                    if (all[r * K + c] > all[r * K + best]) {
                        best = c;
                    }
                }
                expected[r] = best;
                correct += best == data.labels()[r] ? 1 : 0;
                double[] ls = Float64Reference.logSoftmax(all, r * K, K, 1);
                for (int c = 0; c < K; c++) {
                    double lt = teacherLogProbs[r * K + c];
                    kl += Math.exp(lt) * (lt - ls[c]);
                }
            }
            kl /= n;

            Evaluation.StudentEval ev = Evaluation.evaluate(student, data, teacherLogProbs);
            assertArrayEquals(expected, ev.predictions(), "scale " + scale);
            assertArrayEquals(expected, Evaluation.predict(student, data), "scale " + scale);
            assertEquals(kl, ev.teacherKl(), 1e-12 * Math.abs(kl), "scale " + scale);
            assertEquals(correct / (double) n, Evaluation.accuracy(ev.predictions(), data), 0.0);
            assertTrue(Double.isNaN(Evaluation.evaluate(student, data, null).teacherKl()));
        }
    }

    /**
     * Samples labeled IGNORE_INDEX get predictions but no part in accuracy, agreement or KL: each equals a float64 reference
     * over the labeled samples alone, on data of several inference batches with ignored samples in each.
     */
    @Test
    void accuracyAgreementAndKlCountOnlyLabeledSamples() {
        Random rng = new Random(47);
        int n = Evaluation.EVAL_BATCH + 678;
        Dataset full = data(n, 9);
        int[] y = full.labels().clone();
        for (int i = 0; i < n; i++) {
            if (rng.nextInt(4) == 0) {
                y[i] = Dataset.IGNORE_INDEX;
            }
        }
        Dataset data = new Dataset("padded", full.features(), D, y, K);
        LinearStudent student = new LinearStudent(rng, 1.3);
        float[] teacherLogProbs = new float[n * K];
        int[] teacherPred = new int[n];
        for (int r = 0; r < n; r++) {
            double[] t = new double[K];
            for (int c = 0; c < K; c++) {
                t[c] = rng.nextGaussian() * 2;
            }
            float[] tf = new float[K];
            for (int c = 0; c < K; c++) {
                tf[c] = (float) t[c];
            }
            double[] lt = Float64Reference.logSoftmax(tf, 0, K, 1);
            for (int c = 0; c < K; c++) {
                teacherLogProbs[r * K + c] = (float) lt[c];
                if (lt[c] > lt[teacherPred[r]]) {
                    teacherPred[r] = c;
                }
            }
        }
        float[] all = student.logits(data.features(), n);
        int labeled = 0;
        int correct = 0;
        int same = 0;
        double kl = 0;
        for (int r = 0; r < n; r++) {
            if (y[r] == Dataset.IGNORE_INDEX) {
                continue;
            }
            labeled++;
            int best = 0;
            for (int c = 1; c < K; c++) {
                if (all[r * K + c] > all[r * K + best]) {
                    best = c;
                }
            }
            correct += best == y[r] ? 1 : 0;
            same += best == teacherPred[r] ? 1 : 0;
            double[] ls = Float64Reference.logSoftmax(all, r * K, K, 1);
            for (int c = 0; c < K; c++) {
                double lt = teacherLogProbs[r * K + c];
                kl += Math.exp(lt) * (lt - ls[c]);
            }
        }
        assertTrue(labeled > n / 2 && labeled < n - 100, labeled + " labeled of " + n);
        Evaluation.StudentEval ev = Evaluation.evaluate(student, data, teacherLogProbs);
        assertEquals(n, ev.predictions().length, "every sample has a prediction");
        assertEquals(correct / (double) labeled, Evaluation.accuracy(ev.predictions(), data), 0.0);
        assertEquals(same / (double) labeled, Evaluation.agreement(ev.predictions(), teacherPred, data), 0.0);
        assertEquals(kl / labeled, ev.teacherKl(), 1e-12 * Math.abs(kl / labeled));
        // the plain agreement still compares every position
        int sameAll = 0;
        for (int r = 0; r < n; r++) {
            sameAll += ev.predictions()[r] == teacherPred[r] ? 1 : 0;
        }
        assertEquals(sameAll / (double) n, Evaluation.agreement(ev.predictions(), teacherPred), 0.0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Evaluation.agreement(new int[n], new int[n - 1], data));
        assertTrue(e.getMessage().contains(n + " predictions with " + (n - 1) + " over the " + n + " samples of padded"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Evaluation.accuracy(new int[n + 1], data));
        assertTrue(e.getMessage().contains("samples of padded"), e.getMessage());
    }

    /**
     * A NaN output has no top-1 class (argmax would silently answer class 0, or skip it): a student whose parameters the last
     * step made NaN failed no check and was reported with the accuracy of always predicting class 0. Evaluation refuses it,
     * naming the sample; a NaN output of a sample labeled IGNORE_INDEX, which is not evaluated, is no error.
     */
    @Test
    void aNanOutputIsAnErrorNamingTheSampleUnlessTheSampleIsIgnored() {
        Dataset data = data(1500, 12);
        LinearStudent broken = new LinearStudent(new Random(3), 1);
        broken.w[2 * D + 1] = Float.NaN; // class 2 of every sample
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Evaluation.evaluate(broken, data, null));
        assertTrue(e.getMessage().contains("linear test student gives NaN for sample 0 of random/1500"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> Evaluation.predict(broken, data));
        assertTrue(e.getMessage().contains("gives NaN for sample 0 of random/1500"), e.getMessage());

        float[] x = data.features().clone();
        int[] y = data.labels().clone();
        x[1234 * D + 3] = Float.NaN; // sample 1234's logits are all NaN, in the second inference batch
        Dataset nanRow = new Dataset("nan-row", x, D, y, K);
        LinearStudent student = new LinearStudent(new Random(4), 1);
        e = assertThrows(IllegalStateException.class, () -> Evaluation.evaluate(student, nanRow, null));
        assertTrue(e.getMessage().contains("gives NaN for sample 1234 of nan-row"), e.getMessage());
        y[1234] = Dataset.IGNORE_INDEX;
        Dataset ignored = new Dataset("nan-row-ignored", x, D, y, K);
        int[] pred = Evaluation.evaluate(student, ignored, null).predictions();
        int[] clean = Evaluation.predict(student, data);
        int correct = 0;
        for (int r = 0; r < data.size(); r++) {
            if (r != 1234) {
                assertEquals(clean[r], pred[r]);
                correct += clean[r] == y[r] ? 1 : 0;
            }
        }
        assertEquals(correct / 1499.0, Evaluation.accuracy(pred, ignored), 0.0);
    }

    /**
     * A top-k teacher's NaN log-probability has no top-1 class either: the best entry was kept whenever it came first (a NaN
     * compares less than nothing), so a row of NaN entries was reported as the teacher predicting its first id. Refused,
     * naming the sample, as a dense teacher's NaN is.
     */
    @Test
    void aTopKTeachersNanEntryIsAnErrorNamingTheSample() {
        Dataset data = data(1500, 13);
        org.distill4j.teacher.SparseTeacher sparse = new org.distill4j.teacher.SparseTeacher() {
            @Override
            public int k() {
                return 3;
            }

            @Override
            public TopK topK(Batch batch) {
                int[] ids = new int[batch.size() * 3];
                float[] lps = new float[batch.size() * 3];
                for (int r = 0; r < batch.size(); r++) {
                    int i = batch.indices()[r];
                    for (int j = 0; j < 3; j++) {
                        ids[r * 3 + j] = (i + 4 * j) % K;
                        lps[r * 3 + j] = i == 1100 && j == 0 ? Float.NaN : -0.3f - j;
                    }
                }
                return new TopK(ids, lps, 3);
            }

            @Override
            public int classes() {
                return K;
            }

            @Override
            public org.distill4j.loss.TeacherValues values() {
                return org.distill4j.loss.TeacherValues.LOGITS;
            }

            @Override
            public float[] outputs(Batch batch) {
                throw new UnsupportedOperationException("entries only");
            }

            @Override
            public String describe() {
                return "nan top-k teacher";
            }
        };
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Evaluation.predict(sparse, data));
        assertTrue(e.getMessage().contains("nan top-k teacher gives NaN for sample 1100 of random/1500"), e.getMessage());
        int[] y = data.labels().clone();
        y[1100] = Dataset.IGNORE_INDEX;
        int[] pred = Evaluation.predict(sparse, new Dataset("ignored", data.features(), D, y, K));
        for (int i = 0; i < data.size(); i++) {
            assertEquals(i == 1100 ? Dataset.IGNORE_INDEX : i % K, pred[i], "sample " + i);
        }
    }

    /**
     * A labeled test sample where the teacher gives no class any mass (every logit -inf: a TRUNCATE alignment that drops
     * all of a row's mass) has no KL to the student: it was left out of the mean without a word, which understated it.
     * It is an error naming the sample, and IGNORE_INDEX leaves it out.
     */
    @Test
    void aTeacherRowWithoutMassIsAnErrorNamingTheSample() {
        Dataset data = data(1300, 17);
        org.distill4j.teacher.Teacher masked = new org.distill4j.teacher.Teacher() {
            @Override
            public int classes() {
                return K;
            }

            @Override
            public org.distill4j.loss.TeacherValues values() {
                return org.distill4j.loss.TeacherValues.LOGITS;
            }

            @Override
            public float[] outputs(Batch batch) {
                float[] v = new float[batch.size() * K];
                for (int r = 0; r < batch.size(); r++) {
                    for (int c = 0; c < K; c++) {
                        v[r * K + c] = batch.indices()[r] == 1042 ? Float.NEGATIVE_INFINITY : 0.1f * c - 0.05f * r;
                    }
                }
                return v;
            }

            @Override
            public String describe() {
                return "masked teacher";
            }
        };
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Evaluation.logProbabilities(masked, data));
        assertTrue(e.getMessage().startsWith("masked teacher gives sample 1042 of random/1300 no class of positive probability"),
                e.getMessage());
        int[] y = data.labels().clone();
        y[1042] = Dataset.IGNORE_INDEX;
        float[] lp = Evaluation.logProbabilities(masked, new Dataset("ignored", data.features(), D, y, K));
        assertTrue(Float.isNaN(lp[1042 * K]) && Float.isFinite(lp[1041 * K]), "only the ignored sample is left without values");
    }

    @Test
    void agreementCountsEqualPositionsAndRefusesOtherLengths() {
        assertEquals(0.6, Evaluation.agreement(new int[]{1, 2, 3, 4, 5}, new int[]{1, 0, 3, 0, 5}), 0.0);
        assertTrue(Double.isNaN(Evaluation.agreement(new int[0], new int[0])));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Evaluation.agreement(new int[3], new int[4]));
        assertTrue(e.getMessage().contains("3 predictions with 4"), e.getMessage());
    }

    /** Teacher log-probabilities of another dataset (or another vocabulary) are refused, not read out of step. */
    @Test
    void teacherLogProbabilitiesOfAnotherShapeAreRefused() {
        Dataset data = data(1234, 8);
        LinearStudent student = new LinearStudent(new Random(2), 1);
        for (int len : new int[]{1234 * K - 1, 1235 * K, 1234 * (K + 1)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Evaluation.evaluate(student, data, new float[len]));
            assertTrue(e.getMessage().contains(len + " teacher log-probabilities") && e.getMessage().contains("1234 x " + K),
                    e.getMessage());
        }
    }
}
