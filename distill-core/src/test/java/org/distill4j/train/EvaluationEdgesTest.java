package org.distill4j.train;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.TeacherValues;
import org.distill4j.student.Student;
import org.distill4j.teacher.SparseTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.testing.Float64Reference;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Evaluation at its edges: ties (the first class wins), a top-k teacher whose entries are not best first, a dense
 * teacher's NaN, teacher classes of zero mass in the KL (float64 reference), data of exactly whole inference batches
 * (no empty batch is asked for), and empty data.
 */
class EvaluationEdgesTest {

    @Test
    void argmaxTakesTheFirstOfTiedLargestValues() {
        float[] v = {1, 3, 3, 0, /**/ -2, -2, -2, -2, /**/ 0, 5, 1, 5};
        assertArrayEquals(new int[]{1, 0, 1}, Evaluation.argmax(v, 3, 4));
    }

    /** Entries of a top-k teacher in any order: its top-1 is the entry of largest log-probability, the first of tied ones. */
    @Test
    void aTopKTeachersTop1IsItsLargestEntryWhereverItIs() {
        int n = 4;
        int[][] ids = {{3, 7, 1}, {2, 0, 9}, {5, 6, 4}, {8, 1, 2}};
        float[][] lps = {{-2f, -0.5f, -1f}, {-1f, -3f, -0.25f}, {-0.7f, -0.7f, -2f}, {-0.1f, -1f, -2f}};
        SparseTeacher t = new org.distill4j.testing.EntriesTeacher("unsorted top-k", 10, 3, batch -> {
            int[] i = new int[batch.size() * 3];
            float[] l = new float[batch.size() * 3];
            for (int r = 0; r < batch.size(); r++) {
                System.arraycopy(ids[batch.indices()[r]], 0, i, r * 3, 3);
                System.arraycopy(lps[batch.indices()[r]], 0, l, r * 3, 3);
            }
            return new SparseTeacher.TopK(i, l, 3);
        });
        Dataset data = new Dataset("four", new float[n], 1, new int[]{0, 1, 2, 3}, 10);
        assertArrayEquals(new int[]{7, 9, 5, 8}, Evaluation.predict(t, data));
        lps[2][1] = Float.NaN;
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Evaluation.predict(t, data));
        assertEquals("unsorted top-k gives NaN for sample 2 of four (top-k entry 1, class 6), which has no top-1 class", e.getMessage());
    }

    @Test
    void aDenseTeachersNanIsAnErrorNamingTheSample() {
        Teacher t = new Teacher() {
            @Override
            public int classes() {
                return 3;
            }

            @Override
            public TeacherValues values() {
                return TeacherValues.LOGITS;
            }

            @Override
            public float[] outputs(Batch batch) {
                float[] v = new float[batch.size() * 3];
                for (int r = 0; r < batch.size(); r++) {
                    v[r * 3 + 1] = batch.indices()[r] == 5 ? Float.NaN : 1;
                }
                return v;
            }

            @Override
            public String describe() {
                return "nan teacher";
            }
        };
        Dataset data = new Dataset("eight", new float[8], 1, new int[8], 3);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Evaluation.predict(t, data));
        assertTrue(e.getMessage().startsWith("nan teacher gives NaN for sample 5 of eight (class 1), which has no top-1 class"),
                e.getMessage());
    }

    /**
     * Teacher classes of zero mass (log-probability -inf, e.g. a padded class) add nothing to the KL, where 0 x -inf would be
     * NaN: the KL against a float64 reference over the other classes, on data of exactly two inference batches, by a
     * student that refuses an empty batch.
     */
    @Test
    void zeroMassTeacherClassesAddNothingToTheKlOverWholeBatches() {
        Random rng = new Random(91);
        int n = 2 * Evaluation.EVAL_BATCH;
        Dataset data = EvaluationTest.data(n, 92);
        EvaluationTest.LinearStudent inner = new EvaluationTest.LinearStudent(rng, 1.5);
        int K = inner.classes();
        int d = data.featureCount();
        Student student = new Student() {
            @Override
            public int classes() {
                return inner.classes();
            }

            @Override
            public float[] forward(Batch batch, boolean training) {
                if (batch.size() == 0) {
                    throw new AssertionError("asked for an empty batch");
                }
                return inner.forward(batch, training);
            }

            @Override
            public void backward(float[] dLogits) {
            }

            @Override
            public void endEpoch() {
            }

            @Override
            public long parameterCount() {
                return 0;
            }

            @Override
            public String describe() {
                return "no empty batches";
            }
        };
        float[] teacher = new float[n * K];
        double expected = 0;
        for (int i = 0; i < n; i++) {
            double[] t = new double[K];
            for (int c = 0; c < K; c++) {
                t[c] = c % 4 == 1 ? Double.NEGATIVE_INFINITY : 3 * rng.nextGaussian();
            }
            double[] lt = Float64Reference.logSoftmax(t, 0, K, 1.0);
            double[] ls = Float64Reference.logSoftmax(inner.logits(java.util.Arrays.copyOfRange(data.features(), i * d,
                    (i + 1) * d), 1), 0, K, 1.0);
            for (int c = 0; c < K; c++) {
                teacher[i * K + c] = (float) lt[c];
                if (lt[c] != Double.NEGATIVE_INFINITY) {
                    expected += Math.exp((float) lt[c]) * ((float) lt[c] - ls[c]);
                }
            }
        }
        expected /= n;
        Evaluation.StudentEval ev = Evaluation.evaluate(student, data, teacher);
        assertTrue(Double.isFinite(ev.teacherKl()), "KL " + ev.teacherKl());
        assertEquals(expected, ev.teacherKl(), 1e-6 * Math.abs(expected));
        assertArrayEquals(Evaluation.predict(inner, data), ev.predictions());
        assertArrayEquals(ev.predictions(), Evaluation.predict(student, data), "predict asks no empty batch either");
    }

    @Test
    void emptyDataHasNoAccuracyOrAgreement() {
        Dataset none = new Dataset("none", new float[0], 3, new int[0], 4);
        assertTrue(Double.isNaN(Evaluation.accuracy(new int[0], none)));
        assertTrue(Double.isNaN(Evaluation.agreement(new int[0], new int[0], none)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Evaluation.accuracy(new int[1], none));
        assertEquals("cannot compare 1 predictions with 0 over the 0 samples of none", e.getMessage());
    }
}
