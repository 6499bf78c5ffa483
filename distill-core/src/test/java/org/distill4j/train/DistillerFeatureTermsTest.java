package org.distill4j.train;

import org.distill4j.backend.CpuBackend;
import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.data.Feature;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.FeatureBatch;
import org.distill4j.loss.FeatureLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.TeacherValues;
import org.distill4j.student.Student;
import org.distill4j.teacher.Teacher;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Feature terms on the DL4J path, with stubs whose values are known: each batch's loss (what listeners see) adds every
 * weighted feature loss to the logit loss, a non-finite one stops the run naming the batch, every trainable feature loss
 * steps once per batch, and two terms on the same student feature add their gradients there.
 */
class DistillerFeatureTermsTest {
    private static final int K = 4;
    private static final int D = 3;
    private static final int WIDTH = 2;

    /** Zero logits (the ce of each row is ln K) and a feature of WIDTH values per row; records the feature gradients. */
    static final class FeatureStudent implements Student {
        final List<Map<String, float[]>> featureGrads = new ArrayList<>();
        private int rows;

        @Override
        public int classes() {
            return K;
        }

        @Override
        public float[] forward(Batch batch, boolean training) {
            rows = batch.size();
            return new float[batch.size() * K];
        }

        @Override
        public Feature feature(String name) {
            return new Feature(new float[rows * WIDTH], rows, new int[]{WIDTH});
        }

        @Override
        public void backward(float[] dLogits) {
            throw new AssertionError("a run with feature terms passes their gradients");
        }

        @Override
        public void backward(float[] dLogits, Map<String, float[]> dFeatures) {
            featureGrads.add(Map.copyOf(dFeatures));
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
            return "feature student";
        }
    }

    /** Zero logits and a zero feature of WIDTH values per row. */
    static final class FeatureTeacher implements Teacher {
        @Override
        public int classes() {
            return K;
        }

        @Override
        public TeacherValues values() {
            return TeacherValues.LOGITS;
        }

        @Override
        public float[] outputs(Batch batch) {
            return new float[batch.size() * K];
        }

        @Override
        public Feature feature(Batch batch, String name) {
            return new Feature(new float[batch.size() * WIDTH], batch.size(), new int[]{WIDTH});
        }

        @Override
        public String describe() {
            return "feature teacher";
        }
    }

    /** A trainable feature loss of a fixed value whose gradient is {@code upstream} at every value; counts its steps. */
    static final class Fixed implements FeatureLoss, FeatureLoss.Trainable {
        final double value;
        int steps;

        Fixed(double value) {
            this.value = value;
        }

        @Override
        public String name() {
            return "fixed";
        }

        @Override
        public Map<String, Object> settings() {
            return Map.of();
        }

        @Override
        public LossResult compute(FeatureBatch batch, float[] gradOut, float upstream) {
            java.util.Arrays.fill(gradOut, upstream);
            return new LossResult(value, batch.rows(), Map.of("fixed", value));
        }

        @Override
        public void step() {
            steps++;
        }

        @Override
        public long parameterCount() {
            return 0;
        }
    }

    private static Distiller.Builder run(FeatureStudent student, List<Double> batchLosses) {
        return run(student, batchLosses, new ArrayList<>());
    }

    private static Distiller.Builder run(FeatureStudent student, List<Double> batchLosses, List<Long> batchNanos) {
        return Distiller.builder().teacher(new FeatureTeacher()).student(student).loss(new CrossEntropy())
                .trainData(DistillerValidationTest.data("train", 10, D, K)).epochs(2).batchSize(4).seed(3)
                .backend(new CpuBackend()).stepEngines(List.of())
                .listener(new TrainingListener() {
                    @Override
                    public void batchFinished(int epoch, int batch, int batches, long samples, long elapsedNanos, double loss) {
                        batchLosses.add(loss);
                        batchNanos.add(elapsedNanos);
                    }
                });
    }

    @Test
    void eachBatchsLossAddsTheWeightedFeatureLossesAndEveryTrainableOneSteps() {
        List<Double> losses = new ArrayList<>();
        List<Long> nanos = new ArrayList<>();
        Fixed a = new Fixed(2);
        Fixed b = new Fixed(4);
        long t0 = System.nanoTime();
        DistillResult r = run(new FeatureStudent(), losses, nanos).featureLoss(0.5, a, "s", "t").featureLoss(0.25, b, "s", "t")
                .build().run();
        long wall = System.nanoTime() - t0;
        for (long t : nanos) {
            assertTrue(t >= 0 && t <= wall, "a batch's time since its epoch began, " + t + " ns, within the run's " + wall);
        }
        assertEquals(6, losses.size(), "3 batches (4, 4, 2 samples) in each of 2 epochs");
        for (double l : losses) {
            assertEquals(Math.log(K) + 0.5 * 2 + 0.25 * 4, l, 1e-6, "ce of zero logits + 0.5 * 2 + 0.25 * 4");
        }
        assertEquals(Math.log(K) + 2, r.epochs().get(1).loss(), 1e-6, "the epoch's mean adds them as the batches do");
        assertEquals(6, a.steps, "one step per batch");
        assertEquals(6, b.steps, "one step per batch");
    }

    @Test
    void twoTermsOnOneStudentFeatureAddTheirGradientsThere() {
        FeatureStudent student = new FeatureStudent();
        run(student, new ArrayList<>()).featureLoss(0.5, new Fixed(1), "s", "t").featureLoss(0.25, new Fixed(1), "s", "t2")
                .featureLoss(2, new Fixed(1), "other", "t").build().run();
        assertEquals(6, student.featureGrads.size());
        for (Map<String, float[]> g : student.featureGrads) {
            assertEquals(java.util.Set.of("s", "other"), g.keySet());
            float[] s = g.get("s");
            float[] expected = new float[s.length];
            java.util.Arrays.fill(expected, 0.75f);
            assertArrayEquals(expected, s, "0.5 + 0.25 at every value of s");
            java.util.Arrays.fill(expected, 2f);
            assertArrayEquals(expected, g.get("other"));
        }
    }

    @Test
    void aNonFiniteFeatureLossStopsTheRunNamingTheBatch() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> run(new FeatureStudent(), new ArrayList<>()).featureLoss(1, new Fixed(Double.NaN), "s", "t").build().run());
        assertEquals("loss became NaN at epoch 1, batch 1; lower the learning rate or check the inputs", e.getMessage());
    }
}
