package org.distill4j.loss;

import org.distill4j.testing.Inputs;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.Random;

/**
 * topk-kd with finite top-k log-probabilities far below any float32 softmax's range (-2e38: an API's floor, a masked
 * logit passed as a log-probability) and T below 1: the renormalized top-k distribution depends only on their
 * differences, so ties at -2e38 are each 1/2 however low they lie. The log-sum-exp must subtract the row's largest
 * value before adding log z: m + log z rounds to m at |m| ~ 4e38, which gave each tied entry probability 1 (the
 * loss about twice the true value). Checked against a float64 reference that shifts by the maximum first, value and
 * gradient, upstream 0.7, V = 7, k = 3, a normal row beside the extreme ones.
 */
class TopKExtremeLogProbsTest {

    @ParameterizedTest
    @ValueSource(doubles = {0.5, 1.0, 3.0})
    void hugeFiniteLogProbabilitiesRenormalizeByTheirDifferences(double t) {
        int rows = 3, v = 7, k = 3;
        Random rng = new Random(20261123L + (long) (t * 10));
        float[] s = Inputs.logits(rng, rows, v, 2.0);
        int[] ids = {4, 1, 6, /**/ 0, 2, 5, /**/ 3, 6, 1};
        float[] lps = {-2e38f, -2e38f, -3e38f, /**/ -1e38f, -1.5e38f, -1e38f, /**/ -0.4f, -1.9f, -2.6f};
        float up = 0.7f;
        float[] g = new float[rows * v];
        Arrays.fill(g, Float.NaN);
        double value = new TopKKd(t, TopKKd.Tail.RENORMALIZE).compute(LogitBatch.ofTopK(rows, v, s, ids, lps, k, null), g, up).value();

        double[] gRef = new double[rows * v];
        double total = 0;
        for (int r = 0; r < rows; r++) {
            double[] lq = new double[v];
            double ms = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < v; i++) {
                lq[i] = s[r * v + i] / t;
                ms = Math.max(ms, lq[i]);
            }
            double zs = 0;
            for (int i = 0; i < v; i++) {
                zs += Math.exp(lq[i] - ms);
            }
            for (int i = 0; i < v; i++) {
                lq[i] -= ms + Math.log(zs);
            }
            double mt = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < k; j++) {
                mt = Math.max(mt, lps[r * k + j] / t);
            }
            double zt = 0;
            for (int j = 0; j < k; j++) {
                zt += Math.exp(lps[r * k + j] / t - mt);
            }
            double[] p = new double[v];
            double row = 0;
            for (int j = 0; j < k; j++) {
                double lp = lps[r * k + j] / t - mt - Math.log(zt);
                p[ids[r * k + j]] = Math.exp(lp);
                if (p[ids[r * k + j]] > 0) {
                    row += Math.exp(lp) * (lp - lq[ids[r * k + j]]);
                }
            }
            total += t * t * row;
            for (int i = 0; i < v; i++) {
                // d/ds_i of T^2 KL(p~ || softmax(s/T)), the mean over rows, times upstream
                gRef[r * v + i] = up * t * (Math.exp(lq[i]) - p[i]) / rows;
            }
        }
        Tolerances.assertValueClose(total / rows, value, "topk-kd value at T = " + t);
        Tolerances.assertGradClose(gRef, g, "topk-kd gradient at T = " + t);
    }
}
