package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Relational knowledge distillation (W. Park, D. Kim, Y. Lu, M. Cho, "Relational Knowledge
 * Distillation", CVPR 2019): the student matches the teacher's relations between the samples of a
 * batch, not the samples themselves, so feature sizes may differ. Registered as {@code rkd}.
 *
 * <pre>
 *   distance: psi_D(i, j) = |x_i - x_j| / mu,  mu = mean over pairs i != j of |x_i - x_j|
 *   angle:    psi_A(i, j, k) = &lt;e_ij, e_ik&gt;,  e_ij = (x_j - x_i) / |x_j - x_i|
 *   loss = wD * mean_{i != j} huber(psi_D^s - psi_D^t) + wA * mean_{j != i, k != i} huber(psi_A^s - psi_A^t)
 * </pre>
 * with the Huber (smooth L1) loss at delta 1 and the paper's weights {@code wD = 25}, {@code wA = 50}.
 * The means run over ordered pairs with {@code i != j} and over triplets with {@code j, k != i} (the
 * authors' code averages over the full N x N and N x N x N tensors, whose extra entries are zero on
 * both sides; the scale differs by (N-1)/N and ((N-1)/N)^2). Coincident samples (zero distance) add no
 * gradient. A batch too small for a term (the distance term relates 2 samples, the angle term 3), as the last batch of a
 * training set can be, has no relations to compare: that term is 0 and passes no gradient.
 */
public final class RelationalKd implements FeatureLoss {
    /** The registered name. */
    public static final String NAME = "rkd";

    private final double distanceWeight;
    private final double angleWeight;

    /**
     * Relational KD with the weights {@code wD} of the distance term and {@code wA} of the angle term (the paper's are 25
     * and 50); a weight of 0 leaves its term out.
     *
     * @throws IllegalArgumentException if a weight is negative, infinite or NaN
     */
    public RelationalKd(double distanceWeight, double angleWeight) {
        if (!(distanceWeight >= 0) || !(angleWeight >= 0) || Double.isInfinite(distanceWeight) || Double.isInfinite(angleWeight)) {
            throw new IllegalArgumentException("rkd weights must be finite and >= 0, got " + distanceWeight + " and " + angleWeight);
        }
        this.distanceWeight = distanceWeight;
        this.angleWeight = angleWeight;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("distance", distanceWeight);
        m.put("angle", angleWeight);
        return m;
    }

    static double huber(double x) {
        double a = Math.abs(x);
        return a < 1 ? 0.5 * x * x : a - 0.5;
    }

    static double huberGrad(double x) {
        return Math.abs(x) < 1 ? x : Math.signum(x);
    }

    @Override
    public LossResult compute(FeatureBatch batch, float[] gradOut, float upstream) {
        final int n = batch.rows();
        final int ds = batch.studentSize();
        final int dt = batch.teacherSize();
        checkGradient(batch, gradOut, upstream);
        final double[] s = widen(batch.student());
        final double[] t = widen(batch.teacher());
        final double[] grad = new double[s.length];
        double dist = 0;
        double angle = 0;
        if (distanceWeight > 0 && n >= 2) { // fewer samples have no pair: the term is 0
            dist = distance(s, t, n, ds, dt, grad, upstream * distanceWeight);
        }
        if (angleWeight > 0 && n >= 3) { // nor a triplet
            angle = angle(s, t, n, ds, dt, grad, upstream * angleWeight);
        }
        for (int i = 0; i < grad.length; i++) {
            gradOut[i] = (float) grad[i];
        }
        double value = distanceWeight * dist + angleWeight * angle;
        Map<String, Double> terms = new LinkedHashMap<>();
        terms.put(NAME, value);
        terms.put("rkd-distance", dist);
        terms.put("rkd-angle", angle);
        return new LossResult(value, n, terms);
    }

    private static double[] widen(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    /** Pairwise distances of the rows of x, [n][n]. */
    private static double[][] distances(double[] x, int n, int d) {
        double[][] out = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                double ss = 0;
                for (int c = 0; c < d; c++) {
                    double e = x[i * d + c] - x[j * d + c];
                    ss += e * e;
                }
                out[i][j] = out[j][i] = Math.sqrt(ss);
            }
        }
        return out;
    }

    private static double meanOffDiagonal(double[][] m, int n) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (i != j) {
                    sum += m[i][j];
                }
            }
        }
        return sum / (n * (double) (n - 1));
    }

    /** Distance term; adds {@code scale * d/ds} into grad. */
    private static double distance(double[] s, double[] t, int n, int ds, int dt, double[] grad, double scale) {
        double[][] dS = distances(s, n, ds);
        double[][] dT = distances(t, n, dt);
        double muS = meanOffDiagonal(dS, n);
        double muT = meanOffDiagonal(dT, n);
        if (!(muS > 0) || !(muT > 0)) {
            return 0; // all samples coincide: no relation to match
        }
        final double pairs = n * (double) (n - 1);
        double loss = 0;
        double c = 0; // sum over ordered pairs of h'(delta) * d^s
        double[][] hp = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (i == j) {
                    continue;
                }
                double delta = dS[i][j] / muS - dT[i][j] / muT;
                loss += huber(delta);
                hp[i][j] = huberGrad(delta);
                c += hp[i][j] * dS[i][j];
            }
        }
        // dL/dd_ij for each ordered pair (as an independent variable, mu included):
        // (1/P) [h'_ij / mu - (sum_kl h'_kl d_kl / mu^2) / P]
        final double cTerm = c / (muS * muS * pairs);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (i == j || dS[i][j] == 0) {
                    continue;
                }
                double g = scale * (hp[i][j] / muS - cTerm) / pairs;
                for (int k = 0; k < ds; k++) {
                    double dir = (s[i * ds + k] - s[j * ds + k]) / dS[i][j];
                    grad[i * ds + k] += g * dir;
                    grad[j * ds + k] -= g * dir;
                }
            }
        }
        return loss / pairs;
    }

    /** Unit vectors e_ij = (x_j - x_i)/|x_j - x_i| from sample i, [n][d] (zero when coincident), and the norms. */
    private static double[][] units(double[] x, int n, int d, int i, double[] norms) {
        double[][] e = new double[n][d];
        for (int j = 0; j < n; j++) {
            double ss = 0;
            for (int c = 0; c < d; c++) {
                double v = x[j * d + c] - x[i * d + c];
                e[j][c] = v;
                ss += v * v;
            }
            double nrm = Math.sqrt(ss);
            norms[j] = nrm;
            if (nrm > 0) {
                for (int c = 0; c < d; c++) {
                    e[j][c] /= nrm;
                }
            }
        }
        return e;
    }

    /** Angle term; adds {@code scale * d/ds} into grad. */
    private static double angle(double[] s, double[] t, int n, int ds, int dt, double[] grad, double scale) {
        final double triplets = n * (double) (n - 1) * (n - 1);
        double loss = 0;
        double[] normS = new double[n];
        double[] normT = new double[n];
        double[][] h = new double[n][n];
        double[] u = new double[ds];
        for (int i = 0; i < n; i++) {
            double[][] eS = units(s, n, ds, i, normS);
            double[][] eT = units(t, n, dt, i, normT);
            for (int j = 0; j < n; j++) {
                if (j == i) {
                    continue;
                }
                for (int k = j; k < n; k++) {
                    if (k == i) {
                        continue;
                    }
                    double as = dot(eS[j], eS[k]);
                    double aT = dot(eT[j], eT[k]);
                    double delta = as - aT;
                    double hv = huber(delta);
                    double hg = huberGrad(delta);
                    loss += k == j ? hv : 2 * hv;
                    h[j][k] = hg;
                    h[k][j] = hg;
                }
            }
            // dL/de_ij = (1/T) sum_k (h_jk + h_kj) e_ik = (2/T) sum_k h_jk e_ik ; then through the normalization
            for (int j = 0; j < n; j++) {
                if (j == i || normS[j] == 0) {
                    continue;
                }
                java.util.Arrays.fill(u, 0);
                for (int k = 0; k < n; k++) {
                    if (k == i) {
                        continue;
                    }
                    double w = 2 * h[j][k];
                    for (int c = 0; c < ds; c++) {
                        u[c] += w * eS[k][c];
                    }
                }
                double ue = dot(u, eS[j]);
                double f = scale / (triplets * normS[j]);
                for (int c = 0; c < ds; c++) {
                    double dv = f * (u[c] - ue * eS[j][c]);
                    grad[j * ds + c] += dv;
                    grad[i * ds + c] -= dv;
                }
            }
        }
        return loss / triplets;
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }
}
