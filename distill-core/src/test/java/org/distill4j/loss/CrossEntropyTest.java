package org.distill4j.loss;

import org.distill4j.testing.Float64Reference;
import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CrossEntropyTest {

    @ParameterizedTest(name = "V={0}")
    @ValueSource(ints = {1, 10, 1000, 32003})
    void matchesFloat64Reference(int v) {
        Random rng = new Random(v);
        int rows = v > 10000 ? 3 : 11;
        float[] s = Inputs.logits(rng, rows, v, 3.0);
        int[] y = Inputs.labels(rng, rows, v);
        double[] refGrad = new double[rows * v];
        double ref = Float64Reference.ce(s, y, rows, v, 0.6, refGrad);
        float[] grad = Inputs.poisoned(rows * v);
        LossResult r = new CrossEntropy().compute(LogitBatch.ofLabels(rows, v, s, y), grad, 0.6f);
        Tolerances.assertValueClose(ref, r.value(), "ce V=" + v);
        Tolerances.assertGradClose(refGrad, grad, "ce gradient V=" + v);
    }

    @Test
    void gradientMatchesFiniteDifferencesOfItsOwnValue() {
        Random rng = new Random(17);
        int rows = 3;
        int v = 10;
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        int[] y = Inputs.labels(rng, rows, v);
        CrossEntropy ce = new CrossEntropy();
        float[] grad = new float[rows * v];
        ce.compute(LogitBatch.ofLabels(rows, v, s, y), grad, 1f);
        for (int k = 0; k < rows * v; k++) {
            float[] plus = s.clone();
            float[] minus = s.clone();
            plus[k] += 1e-2f;
            minus[k] -= 1e-2f;
            double fd = (ce.compute(LogitBatch.ofLabels(rows, v, plus, y), new float[rows * v], 1f).value()
                    - ce.compute(LogitBatch.ofLabels(rows, v, minus, y), new float[rows * v], 1f).value())
                    / ((double) plus[k] - minus[k]);
            assertEquals(fd, grad[k], 2e-4 * Math.max(1, Math.abs(fd)), "element " + k);
        }
    }

    @Test
    void extremeLogitsStayFinite() {
        float[] s = {1e4f, -1e4f, 0f, -1e4f, 1e4f, 3f};
        float[] grad = new float[6];
        LossResult r = new CrossEntropy().compute(LogitBatch.ofLabels(2, 3, s, new int[]{1, 1}), grad, 1f);
        assertEquals(1e4, r.value(), 1e-3); // row 0: 2e4 nats, row 1: ~0
        for (float g : grad) {
            assertTrue(Float.isFinite(g));
        }
    }
}
