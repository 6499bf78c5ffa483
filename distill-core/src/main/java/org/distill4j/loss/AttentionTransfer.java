package org.distill4j.loss;

import java.util.Arrays;
import java.util.Map;

/**
 * Activation-based attention transfer (S. Zagoruyko, N. Komodakis, "Paying More Attention to
 * Attention", ICLR 2017). Registered as {@code at}.
 *
 * <p>For an activation map {@code A} of shape {@code {C, H, W}}, the spatial attention map is the
 * channel mean of squares, L2-normalized over the {@code H*W} positions:
 * {@code m_k = (1/C) sum_c A_{c,k}^2}, {@code a = m / |m|}. The loss (as in the authors' code) is
 * <pre>
 *   loss = beta/2 * mean_samples (1/HW) sum_k (a^s_k - a^t_k)^2
 * </pre>
 * with {@code beta} = 1000 by default (the paper's setting). Student and teacher may have different
 * channel counts but must share {@code H} and {@code W}. Gradient: with {@code g = dloss/da^s},
 * {@code dloss/dm_j = (g_j - a_j (g . a)) / |m|} and {@code dloss/dA_{c,j} = dloss/dm_j * 2 A_{c,j} / C}.
 * An all-zero map has no attention and contributes a zero gradient (norm floored at 1e-12, as
 * {@code F.normalize}; below the floor the norm is a constant and {@code dloss/dm_j = g_j / 1e-12}).
 */
public final class AttentionTransfer implements FeatureLoss {
    /** The registered name. */
    public static final String NAME = "at";
    static final double NORM_FLOOR = 1e-12;

    private final double beta;

    /**
     * Attention transfer with the weight {@code beta} on the squared attention-map difference (the paper uses 1000,
     * which is also what the {@code at} entry of {@link FeatureLosses} takes when no beta is given).
     *
     * @throws IllegalArgumentException if {@code beta} is not a finite number {@code > 0}
     */
    public AttentionTransfer(double beta) {
        if (!(beta > 0) || Double.isInfinite(beta)) {
            throw new IllegalArgumentException("at beta must be a finite number > 0, got " + beta);
        }
        this.beta = beta;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, Object> settings() {
        return Map.of("beta", beta);
    }

    @Override
    public LossResult compute(FeatureBatch batch, float[] gradOut, float upstream) {
        int[] ss = batch.studentShape();
        int[] ts = batch.teacherShape();
        if (ss.length != 3 || ts.length != 3) {
            throw new IllegalArgumentException("at needs activation maps {C, H, W}; got student " + Arrays.toString(ss)
                    + " and teacher " + Arrays.toString(ts));
        }
        if (ss[1] != ts[1] || ss[2] != ts[2]) {
            throw new IllegalArgumentException("at needs the same spatial size; student maps are " + ss[1] + "x" + ss[2]
                    + ", teacher maps " + ts[1] + "x" + ts[2]);
        }
        checkGradient(batch, gradOut, upstream);
        final int n = batch.rows();
        final int cs = ss[0];
        final int ct = ts[0];
        final int hw = ss[1] * ss[2];
        final double[] ms = new double[hw];
        final double[] at = new double[hw];
        final double[] g = new double[hw];
        double total = 0;
        for (int r = 0; r < n; r++) {
            final double normS = attention(batch.student(), r * cs * hw, cs, hw, ms);
            final double normT = attention(batch.teacher(), r * ct * hw, ct, hw, at);
            double dot = 0;
            double sum = 0;
            for (int k = 0; k < hw; k++) {
                final double as = ms[k] / normS;
                final double d = as - at[k] / normT;
                sum += d * d;
                g[k] = beta * d / (hw * (double) n); // d loss / d a^s_k
                dot += g[k] * as;
            }
            total += sum / hw;
            final int so = r * cs * hw;
            // below the floor the norm is a constant: no gradient flows through it (as F.normalize's clamp)
            final boolean floored = normS == NORM_FLOOR;
            for (int k = 0; k < hw; k++) {
                final double dm = floored ? g[k] / normS : (g[k] - (ms[k] / normS) * dot) / normS;
                final double f = upstream * dm * 2.0 / cs;
                for (int c = 0; c < cs; c++) {
                    int i = so + c * hw + k;
                    gradOut[i] = (float) (f * batch.student()[i]);
                }
            }
        }
        double value = beta / 2 * total / n;
        return new LossResult(value, n, Map.of(NAME, value));
    }

    /** Writes the channel mean of squares into {@code m} and returns its L2 norm, floored. */
    private static double attention(float[] x, int off, int channels, int hw, double[] m) {
        Arrays.fill(m, 0);
        for (int c = 0; c < channels; c++) {
            int co = off + c * hw;
            for (int k = 0; k < hw; k++) {
                double v = x[co + k];
                m[k] += v * v;
            }
        }
        double ss = 0;
        for (int k = 0; k < hw; k++) {
            m[k] /= channels;
            ss += m[k] * m[k];
        }
        return Math.max(Math.sqrt(ss), NORM_FLOOR);
    }
}
