package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Probabilistic knowledge transfer (N. Passalis, A. Tefas, "Learning Deep Representations with Probabilistic Knowledge
 * Transfer", ECCV 2018): each sample's feature defines, through a cosine kernel, a probability of every sample of the
 * batch being its neighbour; the student learns the teacher's neighbour distributions. Like {@link SimilarityPreserving}
 * it compares relations between the samples of a batch, so student and teacher features may have any sizes and shapes
 * (flattened per sample). Registered as {@code pkt}.
 *
 * <pre>
 *   u_i = f_i / ||f_i||                     (each sample's flattened feature, unit length)
 *   K_ij = (1 + u_i . u_j) / 2              (b x b, in [0, 1]; K_ii = 1)
 *   p_ij = K_ij / sum_k K_ik                (teacher: p(j|i), each row sums to 1; student: q_ij the same way)
 *   loss = beta / b^2 * sum_i sum_j p_ij * log((p_ij + eps) / (q_ij + eps)),   eps = 1e-7
 * </pre>
 * Conventions, chosen to equal the authors' code ({@code cosine_similarity_loss} in passalis/probabilistic_kt) and the
 * libraries that took it over (RepDistiller, torchdistill's {@code PKTLoss}, mdistiller), whose recipes all weigh it
 * with 30000, the default {@code beta} here:
 * <ul>
 *   <li>the sums run over all j, the sample itself included (K_ii = 1, the largest entry of its row), as in the code,
 *   with which the recipes' weight was tuned;</li>
 *   <li>the mean is over the b^2 pairs (the code's {@code torch.mean} of the b x b matrix), that is 1/b times the mean
 *   over samples of each sample's KL divergence KL(p_i || q_i). This keeps the recipes' weight: beta = 30000 here is
 *   their 30000 at any batch size;</li>
 *   <li>eps = 1e-7 inside the logarithm, as in the code: a pair the teacher finds exactly opposite (p_ij = 0) costs
 *   nothing, and one the student finds exactly opposite (q_ij = 0) a finite amount with a finite gradient. It also
 *   moves the minimum slightly: where q = p the loss is 0 but its gradient is of order beta * eps / b, not 0.</li>
 * </ul>
 * Where it differs from the code: the features are normalized exactly, where the code divides by the norm plus 1e-7;
 * so the loss ignores the scale of each sample's feature at any magnitude (the code's cosines shrink toward 0 for
 * features of norm near 1e-7 or less), and the cosines agree with the code's to about 1e-7 for features of norm about
 * 1. A sample whose feature is all zero (a dead ReLU layer), or whose norm is at most {@link #ZERO_NORM} times the
 * largest norm of its side in the batch, has no direction: its u is taken as zero (as the code's division by the norm
 * plus 1e-7 makes it for an all-zero feature), so its cosines with every sample, itself included, are 0, its row of K is 1/2 throughout and its
 * conditional distribution uniform. Such a student sample gets gradient 0 (normalizing it would give a gradient growing
 * without bound as the feature shrinks); the other samples' gradients are exact with its u held at zero. The gradient
 * of any other sample is proportional to 1/||f_i||: a whole student feature scaled by c &gt; 0 gives the same loss and
 * the gradient divided by c. A batch of one sample has only itself as neighbour (p = q = 1): loss 0, gradient 0.
 *
 * <p>Only the student gets a gradient; the teacher's feature is a constant. Computed in float64 from the float features,
 * in O(b^2 (d_s + d_t)) time and two b x b arrays of doubles.
 */
public final class ProbabilisticTransfer implements FeatureLoss {
    /** The registered name. */
    public static final String NAME = "pkt";
    /** The weight of the reference recipes (RepDistiller's {@code -b 30000}, torchdistill's and mdistiller's 30000). */
    public static final double DEFAULT_BETA = 30000;
    /** Added to both probabilities inside the logarithm, as in the authors' code. */
    static final double EPS = 1e-7;
    /** A feature whose norm is at most this times the largest of its side in the batch has no direction (see above). */
    static final double ZERO_NORM = 1e-12;

    private final double beta;

    /**
     * Probabilistic knowledge transfer with the weight {@code beta} on the mean over pairs ({@link #DEFAULT_BETA}, 30000,
     * is the reference recipes' weight); 0 turns the loss off.
     *
     * @throws IllegalArgumentException if {@code beta} is negative, infinite or NaN
     */
    public ProbabilisticTransfer(double beta) {
        if (!(beta >= 0) || Double.isInfinite(beta)) {
            throw new IllegalArgumentException("pkt weight beta must be finite and >= 0, got " + beta);
        }
        this.beta = beta;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("beta", beta);
        return m;
    }

    @Override
    public LossResult compute(FeatureBatch batch, float[] gradOut, float upstream) {
        checkGradient(batch, gradOut, upstream);
        final int b = batch.rows();
        FeatureBatch.requirePairwiseFits(NAME, b);
        final int ds = batch.studentSize();
        final float[] s = batch.student();
        final double[] norms = new double[b];
        final double[] cs = cosines(s, b, ds, norms); // becomes dL/dc_s, row by row
        final double[] ct = cosines(batch.teacher(), b, batch.teacherSize(), new double[b]);
        final double c = beta / ((double) b * b);
        final double cg = c * upstream;
        final double[] p = new double[b];
        final double[] q = new double[b];
        double sum = 0;
        for (int i = 0; i < b; i++) {
            final int row = i * b;
            double sp = 0;
            double sq = 0;
            for (int j = 0; j < b; j++) {
                p[j] = (1 + ct[row + j]) * 0.5;
                q[j] = (1 + cs[row + j]) * 0.5;
                sp += p[j];
                sq += q[j];
            }
            // sp, sq >= b/2: u_i . u_i is 1 (0 for a sample without direction, whose row is then 1/2 throughout)
            double dot = 0;
            for (int j = 0; j < b; j++) {
                p[j] /= sp;
                q[j] /= sq;
                if (p[j] != 0) {
                    sum += p[j] * Math.log((p[j] + EPS) / (q[j] + EPS));
                }
                double a = -cg * p[j] / (q[j] + EPS); // dL/dq_ij
                cs[row + j] = a;
                dot += a * q[j];
            }
            // through q_ij = K_ij / sum_k K_ik to dL/dK_ij, then K = (1 + c) / 2 to dL/dc_ij; K_ii is constant
            for (int j = 0; j < b; j++) {
                cs[row + j] = j == i || norms[i] == 0 ? 0 : (cs[row + j] - dot) / sq * 0.5;
            }
        }
        final double value = c * sum;
        // c_ij = u_i . u_j: dL/du_i = sum_j (dc_ij + dc_ji) u_j; u_i = f_i / |f_i|: dL/df_i = (v - (v . u_i) u_i) / |f_i|
        final double[] acc = new double[ds];
        for (int i = 0; i < b; i++) {
            final int off = i * ds;
            if (norms[i] == 0) {
                java.util.Arrays.fill(gradOut, off, off + ds, 0f); // no direction: no gradient
                continue;
            }
            java.util.Arrays.fill(acc, 0);
            for (int j = 0; j < b; j++) {
                if (j == i || norms[j] == 0) {
                    continue; // u_j taken as zero
                }
                double w = (cs[i * b + j] + cs[j * b + i]) / norms[j];
                if (w != 0) {
                    int oj = j * ds;
                    for (int x = 0; x < ds; x++) {
                        acc[x] += w * s[oj + x];
                    }
                }
            }
            final double inv = 1 / norms[i];
            double radial = 0;
            for (int x = 0; x < ds; x++) {
                radial += acc[x] * (s[off + x] * inv);
            }
            for (int x = 0; x < ds; x++) {
                gradOut[off + x] = (float) ((acc[x] - radial * (s[off + x] * inv)) * inv);
            }
        }
        Map<String, Double> terms = new LinkedHashMap<>();
        terms.put(NAME, value);
        return new LossResult(value, b, terms);
    }

    /**
     * The cosines u_i . u_j of the b samples' features in float64, row-major b x b: 1 on the diagonal, 0 in the row and
     * column of a sample without direction (norm at most {@link #ZERO_NORM} times the largest, all-zero batches included).
     * The norms go to {@code norms}, 0 for the samples without direction.
     */
    static double[] cosines(float[] f, int b, int d, double[] norms) {
        double[] g = new double[b * b];
        for (int i = 0; i < b; i++) { // the Gram matrix: products of floats are exact in double, at any float magnitude
            int oi = i * d;
            for (int j = i; j < b; j++) {
                int oj = j * d;
                double dot = 0;
                for (int x = 0; x < d; x++) {
                    dot += (double) f[oi + x] * f[oj + x];
                }
                g[i * b + j] = dot;
                g[j * b + i] = dot;
            }
        }
        double largest = 0;
        for (int i = 0; i < b; i++) {
            norms[i] = Math.sqrt(g[i * b + i]);
            largest = Math.max(largest, norms[i]);
        }
        for (int i = 0; i < b; i++) {
            if (norms[i] <= ZERO_NORM * largest) {
                norms[i] = 0;
            }
        }
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < b; j++) {
                int k = i * b + j;
                if (norms[i] == 0 || norms[j] == 0) {
                    g[k] = 0;
                } else {
                    g[k] = i == j ? 1 : g[k] / norms[i] / norms[j];
                }
            }
        }
        return g;
    }
}
