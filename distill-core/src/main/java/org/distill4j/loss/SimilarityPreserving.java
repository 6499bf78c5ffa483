package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Similarity-preserving knowledge distillation (F. Tung, G. Mori, "Similarity-Preserving Knowledge Distillation",
 * ICCV 2019): samples that the teacher's feature makes similar should be similar in the student's, and dissimilar ones
 * dissimilar. Like {@link RelationalKd} it compares relations between the samples of a batch, so student and teacher
 * features may have any sizes and shapes. Registered as {@code sp}.
 *
 * <pre>
 *   G = Q Q^T                  (b x b; Q: the batch's features, one flattened row per sample)
 *   G~ = G, each row divided by its L2 norm
 *   loss = gamma / b^2 * || G~_teacher - G~_student ||_F^2
 * </pre>
 * with the paper's {@code gamma = 3000} (its CIFAR-10 setting). Scaling a whole feature (every sample's) by any c &gt; 0
 * scales G by c^2 and leaves G~ unchanged, so the loss ignores the overall scale of either feature (not each sample's:
 * a sample's own entry of its row scales by c^2, the others by c). A sample whose feature is all
 * zero (a dead ReLU layer), or so small against the batch's largest that its row of G is below {@link #ZERO_ROW} times
 * the largest row's norm, has its row of G~ taken as zero, and that row passes no gradient (the sample still gets one
 * through the other samples' rows). Normalizing such a row would give its sample a gradient that grows without bound as
 * the feature shrinks (the authors' code divides by the norm clamped at 1e-12: gradients of order 1e12). A batch of one
 * sample has nothing to relate: loss 0, gradient 0.
 *
 * <p>Computed in float64 from the float features, in O(b^2 (d_s + d_t)) time and O(b^2) memory.
 */
public final class SimilarityPreserving implements FeatureLoss {
    /** The registered name. */
    public static final String NAME = "sp";
    /** The paper's weight. */
    public static final double DEFAULT_GAMMA = 3000;
    /** A row of G whose norm is at most this times the largest row's norm counts as zero (see the class comment). */
    static final double ZERO_ROW = 1e-12;

    private final double gamma;

    /**
     * Similarity-preserving KD with the weight {@code gamma} ({@link #DEFAULT_GAMMA}, 3000, is the paper's); 0 turns the
     * loss off.
     *
     * @throws IllegalArgumentException if {@code gamma} is negative, infinite or NaN
     */
    public SimilarityPreserving(double gamma) {
        if (!(gamma >= 0) || Double.isInfinite(gamma)) {
            throw new IllegalArgumentException("sp weight gamma must be finite and >= 0, got " + gamma);
        }
        this.gamma = gamma;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("gamma", gamma);
        return m;
    }

    @Override
    public LossResult compute(FeatureBatch batch, float[] gradOut, float upstream) {
        checkGradient(batch, gradOut, upstream);
        final int b = batch.rows();
        FeatureBatch.requirePairwiseFits(NAME, b);
        if (b < 2) { // nothing to relate
            java.util.Arrays.fill(gradOut, 0f);
            Map<String, Double> terms = new LinkedHashMap<>();
            terms.put(NAME, 0.0);
            return new LossResult(0, b, terms);
        }
        final int ds = batch.studentSize();
        final float[] s = batch.student();
        final double[] norms = new double[b];
        final double[] gs = normalizedGram(s, b, ds, norms);
        final double[] gt = normalizedGram(batch.teacher(), b, batch.teacherSize(), new double[b]);
        final double c = gamma / ((double) b * b);
        double sum = 0;
        for (int k = 0; k < b * b; k++) {
            double e = gs[k] - gt[k];
            sum += e * e;
        }
        final double value = c * sum;
        // dL/dG~_s = 2 c (G~_s - G~_t) (times upstream); through the row normalization to dL/dG (in place, row by row)
        final double[] dg = new double[b * b];
        for (int i = 0; i < b; i++) {
            if (norms[i] == 0) {
                continue; // a zero row of G: its G~ row is zero and passes no gradient
            }
            int row = i * b;
            double dot = 0;
            for (int j = 0; j < b; j++) {
                double a = 2 * c * upstream * (gs[row + j] - gt[row + j]);
                dg[row + j] = a;
                dot += a * gs[row + j];
            }
            for (int j = 0; j < b; j++) {
                dg[row + j] = (dg[row + j] - gs[row + j] * dot) / norms[i];
            }
        }
        // G = Q Q^T: dL/dq_k = sum_j (dG_kj + dG_jk) q_j
        final double[] acc = new double[ds];
        for (int k = 0; k < b; k++) {
            java.util.Arrays.fill(acc, 0);
            for (int j = 0; j < b; j++) {
                double w = dg[k * b + j] + dg[j * b + k];
                if (w != 0) {
                    int off = j * ds;
                    for (int x = 0; x < ds; x++) {
                        acc[x] += w * s[off + x];
                    }
                }
            }
            int off = k * ds;
            for (int x = 0; x < ds; x++) {
                gradOut[off + x] = (float) acc[x];
            }
        }
        Map<String, Double> terms = new LinkedHashMap<>();
        terms.put(NAME, value);
        return new LossResult(value, b, terms);
    }

    /**
     * G = Q Q^T in float64, each row divided by its L2 norm (a row of norm at most {@link #ZERO_ROW} times the largest is
     * zero); row-major b x b. The norms of G's rows go to {@code norms}, 0 for the rows taken as zero.
     */
    static double[] normalizedGram(float[] q, int b, int d, double[] norms) {
        double[] g = gram(q, b, d);
        double largest = 0;
        for (int i = 0; i < b; i++) {
            double ss = 0;
            for (int j = 0; j < b; j++) {
                ss += g[i * b + j] * g[i * b + j];
            }
            norms[i] = Math.sqrt(ss);
            largest = Math.max(largest, norms[i]);
        }
        for (int i = 0; i < b; i++) {
            if (norms[i] <= ZERO_ROW * largest) { // zero (all rows zero included): its row of G~ is zero
                norms[i] = 0;
                java.util.Arrays.fill(g, i * b, (i + 1) * b, 0.0);
            } else {
                double inv = 1 / norms[i];
                for (int j = 0; j < b; j++) {
                    g[i * b + j] *= inv;
                }
            }
        }
        return g;
    }

    /** Q Q^T in float64, symmetric by construction (each pair's product is summed once). */
    private static double[] gram(float[] q, int b, int d) {
        double[] g = new double[b * b];
        for (int i = 0; i < b; i++) {
            int oi = i * d;
            for (int j = i; j < b; j++) {
                int oj = j * d;
                double dot = 0;
                for (int x = 0; x < d; x++) {
                    dot += (double) q[oi + x] * q[oj + x];
                }
                g[i * b + j] = dot;
                g[j * b + i] = dot;
            }
        }
        return g;
    }
}
