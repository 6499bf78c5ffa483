package org.distill4j.teacher;

import org.distill4j.loss.TeacherValues;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * TeacherRows.logProbabilities on logits at the edge of float32 (|z| near 3e38, where m + log z rounds to m): the
 * log-softmax depends only on the logits' differences, so two tied largest logits are each log(1/2), checked
 * against a float64 log-softmax that shifts by the maximum first; and an ordinary row beside them.
 */
class TeacherRowsTest {

    @Test
    void logitsNearTheFloatLimitGiveTheLogSoftmaxOfTheirDifferences() {
        float[] z = {3e38f, 3e38f, -1e38f, 2.9e38f, /**/ 0.3f, -1.7f, 2.2f, 0.9f, /**/ -3e38f, -3e38f, -3.3e38f, -3.3e38f};
        int v = 4;
        double[] out = new double[v];
        for (int r = 0; r < 3; r++) {
            TeacherRows.logProbabilities(z, TeacherValues.LOGITS, r, v, out);
            double m = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < v; i++) {
                m = Math.max(m, z[r * v + i]);
            }
            double s = 0;
            for (int i = 0; i < v; i++) {
                s += Math.exp(z[r * v + i] - m);
            }
            for (int i = 0; i < v; i++) {
                double expected = (z[r * v + i] - m) - Math.log(s);
                assertEquals(expected, out[i], 1e-12 * Math.max(1, Math.abs(expected)), "row " + r + ", class " + i);
            }
        }
        TeacherRows.logProbabilities(z, TeacherValues.LOGITS, 0, v, out);
        assertEquals(Math.log(0.5), out[0], 1e-15, "two tied largest logits: each half the mass");
    }
}
