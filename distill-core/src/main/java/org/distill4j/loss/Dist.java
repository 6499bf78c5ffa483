package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * DIST: distillation by relations rather than exact probabilities (T. Huang, S. You, F. Wang, C. Qian, C. Xu,
 * "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022). Registered as {@code dist}.
 *
 * <pre>
 *   q = softmax(s/T), p = softmax(t/T)                      (rows of the batch's counted rows)
 *   rho(a, b) = &lt;a - mean(a), b - mean(b)&gt; / (|a - mean(a)| |b - mean(b)| + 1e-8)     (Pearson, as the authors' code)
 *   inter = 1 - mean over rows i of rho(q_i, p_i)           (how each sample ranks the classes)
 *   intra = 1 - mean over classes c of rho(q[:, c], p[:, c])  (how each class ranks the batch's samples)
 *   loss = T^2 * (beta * inter + gamma * intra)
 * </pre>
 * Matching correlations instead of KL leaves the student free in scale and shift, which the paper finds helps when the
 * teacher is much stronger; the defaults are its ImageNet settings (beta 1, gamma 1, T 1; its CIFAR-100 ones are beta 2,
 * gamma 2, T 4). Add the hard-label {@code ce} as its own term of a {@code WeightedSum}, as the paper does.
 *
 * <p><b>Not row-separable.</b> The intra-class term correlates each class over the batch's counted rows, so a row's
 * gradient depends on the other rows: the CPU backend computes it whole, and the inter-class mean follows the batch's
 * {@linkplain LogitBatch#withNormalizer normalizer} while each micro-batch of an accumulated step has its own intra-class
 * term (as in any batch-statistic loss; the paper's batches are whole). Only {@link Reduction#MEAN} is defined. Rows
 * that do not count take no part in either term and get a zero gradient; with fewer than two counted rows every class
 * is constant over the batch and the intra-class correlation is 0.
 *
 * <p><b>Flat students.</b> Where a student row is exactly uniform (equal logits, e.g. a zero-initialized last layer) or
 * a class's probability is the same in every counted row (identical student rows), only the 1e-8 is left in that
 * correlation's denominator, and its gradient there is the teacher's centred values over 1e-8 (all-equal student
 * logits, 4 rows of 10 classes, T 1: gradient elements up to 2.9e6). That is the exact gradient of the authors' formula
 * (autograd gives the same); initialize the last layer randomly, or start with a few steps of another loss, before DIST.
 *
 * <p>Memory: a few arrays of {@code classes} doubles and three doubles per row; the softmax of each row is computed
 * three times (column means, then correlations, then the gradient) rather than kept, so no {@code [N, V]} buffer is
 * allocated beyond the gradient.
 */
public final class Dist implements LogitLoss, TemperatureScaled {
    /** The registered name. */
    public static final String NAME = "dist";
    /** Added to the product of the norms in each correlation, as the authors' code does. */
    public static final double EPS = 1e-8;

    private final double beta;
    private final double gamma;
    private final double temperature;

    /** The paper's ImageNet settings: beta 1, gamma 1, T 1. */
    public Dist() {
        this(1, 1, 1);
    }

    /**
     * @param beta        weight of the inter-class (per-sample) relation, finite and {@code >= 0}
     * @param gamma       weight of the intra-class (per-class, over the batch) relation, finite and {@code >= 0}
     * @param temperature softmax temperature {@code T > 0} on both sides
     */
    public Dist(double beta, double gamma, double temperature) {
        this(beta, gamma, temperature, Reduction.MEAN);
    }

    /**
     * @throws IllegalArgumentException for a reduction other than MEAN (see the class comment)
     * @throws NullPointerException     if {@code reduction} is null
     */
    public Dist(double beta, double gamma, double temperature, Reduction reduction) {
        this.temperature = RowMath.requireTemperature(NAME, temperature);
        if (!(beta >= 0 && gamma >= 0) || Double.isInfinite(beta) || Double.isInfinite(gamma)) {
            throw new IllegalArgumentException("dist beta and gamma must be finite and >= 0, got " + beta + " and " + gamma);
        }
        Objects.requireNonNull(reduction, "reduction");
        if (reduction != Reduction.MEAN) {
            throw new IllegalArgumentException("dist reduction must be mean, got " + reduction.name().toLowerCase(java.util.Locale.ROOT)
                    + ": its intra-class term is a correlation over the batch's rows, which is not a sum of per-row terms");
        }
        this.beta = beta;
        this.gamma = gamma;
    }

    /** The weight of the inter-class (per-sample) relation term, finite and {@code >= 0}. */
    public double beta() {
        return beta;
    }

    /** The weight of the intra-class (per-class, over the batch) relation term, finite and {@code >= 0}. */
    public double gamma() {
        return gamma;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public double temperature() {
        return temperature;
    }

    @Override
    public Dist withTemperature(double t) {
        return new Dist(beta, gamma, t);
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("beta", beta);
        m.put("gamma", gamma);
        m.put("temperature", temperature);
        m.put("reduction", "mean");
        return m;
    }

    @Override
    public boolean needsTeacher() {
        return true;
    }

    @Override
    public boolean needsLabels() {
        return false;
    }

    @Override
    public Reduction reduction() {
        return Reduction.MEAN;
    }

    @Override
    public LossResult compute(LogitBatch batch, float[] gradOut, float upstream) {
        checkInputs(batch, gradOut, upstream);
        final int v = batch.classes();
        final int rows = batch.rows();
        final float[] s = batch.student();
        final float[] t = batch.teacher();
        final boolean probs = batch.teacherValues() == TeacherValues.PROBABILITIES;
        final double invT = 1.0 / temperature;
        final double w = batch.rowWeight(Reduction.MEAN); // 1 / counted rows, or the step's normalizer
        int n = 0;
        for (int r = 0; r < rows; r++) {
            if (RowMath.beginRow(batch, gradOut, r * v, r, true)) { // checks the rows; zero gradient for the others
                n++;
            }
        }
        Map<String, Double> terms = new LinkedHashMap<>();
        if (n == 0) {
            terms.put(NAME, 0.0);
            terms.put("inter", 0.0);
            terms.put("intra", 0.0);
            return new LossResult(0, 0, terms);
        }
        double[] meanQ = new double[v];
        double[] meanP = new double[v];
        double[] colQp = new double[v]; // sum over rows of (q - meanQ)(p - meanP), per class
        double[] colQq = new double[v];
        double[] colPp = new double[v];
        double[] rowQp = new double[rows]; // per row, over classes (q and p centred at 1/V)
        double[] rowQq = new double[rows];
        double[] rowPp = new double[rows];
        try (Scratch sc = Scratch.acquire()) {
            double[] logQ = sc.doubles(0, v);
            double[] q = sc.doubles(1, v);
            double[] logP = sc.doubles(2, v);
            double[] p = sc.doubles(3, v);
            double[] g = sc.doubles(4, v);
            // pass 1: the column means over the counted rows
            for (int r = 0; r < rows; r++) {
                if (batch.counts(r)) {
                    softmaxes(s, t, r * v, v, probs, invT, logQ, q, logP, p);
                    for (int c = 0; c < v; c++) {
                        meanQ[c] += q[c];
                        meanP[c] += p[c];
                    }
                }
            }
            for (int c = 0; c < v; c++) {
                meanQ[c] /= n;
                meanP[c] /= n;
            }
            // pass 2: the row and column (co)variances
            final double mean = 1.0 / v; // a softmax row's mean over its classes
            for (int r = 0; r < rows; r++) {
                if (!batch.counts(r)) {
                    continue;
                }
                softmaxes(s, t, r * v, v, probs, invT, logQ, q, logP, p);
                double qp = 0;
                double qq = 0;
                double pp = 0;
                for (int c = 0; c < v; c++) {
                    double a = q[c] - mean;
                    double b = p[c] - mean;
                    qp += a * b;
                    qq += a * a;
                    pp += b * b;
                    double ac = q[c] - meanQ[c];
                    double bc = p[c] - meanP[c];
                    colQp[c] += ac * bc;
                    colQq[c] += ac * ac;
                    colPp[c] += bc * bc;
                }
                rowQp[r] = qp;
                rowQq[r] = qq;
                rowPp[r] = pp;
            }
            double inter = 0;
            for (int r = 0; r < rows; r++) {
                if (batch.counts(r)) {
                    inter += w * (1 - pearson(rowQp[r], rowQq[r], rowPp[r]));
                }
            }
            double intra = 0;
            double[] colA = sc.doubles(5, v); // d rho_c / d (q_c - meanQ_c) = colA_c * (p - meanP)_c - colB_c * (q - meanQ)_c
            double[] colB = sc.doubles(6, v);
            for (int c = 0; c < v; c++) {
                intra += (1 - pearson(colQp[c], colQq[c], colPp[c])) / v;
                slopes(colQp[c], colQq[c], colPp[c], colA, colB, c);
            }
            // pass 3: dL/dq = -T^2 (beta w d rho_row / dq + gamma / V d rho_col / dq), through the softmax at T
            final double t2 = temperature * temperature;
            final double scale = upstream * t2 * invT; // T^2 * (1/T) from z = s / T
            double[] rowA = new double[1];
            double[] rowB = new double[1];
            for (int r = 0; r < rows; r++) {
                if (!batch.counts(r)) {
                    continue;
                }
                final int off = r * v;
                softmaxes(s, t, off, v, probs, invT, logQ, q, logP, p);
                slopes(rowQp[r], rowQq[r], rowPp[r], rowA, rowB, 0);
                final double ra = rowA[0];
                final double rb = rowB[0];
                double dot = 0;
                for (int c = 0; c < v; c++) {
                    double dRow = ra * (p[c] - mean) - rb * (q[c] - mean);
                    double dCol = colA[c] * (p[c] - meanP[c]) - colB[c] * (q[c] - meanQ[c]);
                    g[c] = -(beta * w * dRow + gamma / v * dCol);
                    dot += q[c] * g[c];
                }
                for (int c = 0; c < v; c++) {
                    gradOut[off + c] = (float) (scale * q[c] * (g[c] - dot));
                }
            }
            double value = t2 * (beta * inter + gamma * intra);
            terms.put(NAME, value);
            terms.put("inter", t2 * inter);
            terms.put("intra", t2 * intra);
            return new LossResult(value, n, terms);
        }
    }

    /** q = softmax(s/T) and p = softmax(t/T) (or of log t for probabilities) of the row at {@code off}. */
    private static void softmaxes(float[] s, float[] t, int off, int v, boolean probs, double invT, double[] logQ, double[] q,
                                  double[] logP, double[] p) {
        TemperedDivergence.tempered(s, off, v, false, invT, logQ, q);
        TemperedDivergence.tempered(t, off, v, probs, invT, logP, p);
    }

    /** {@code <a, b> / (|a| |b| + EPS)} from {@code <a, b>}, {@code |a|^2} and {@code |b|^2}. */
    static double pearson(double ab, double aa, double bb) {
        return ab / (Math.sqrt(aa) * Math.sqrt(bb) + EPS);
    }

    /**
     * The gradient of {@link #pearson} with respect to {@code a}: {@code A b - B a}, with {@code A = 1 / N} and
     * {@code B = <a, b> |b| / (|a| N^2)}, {@code N = |a| |b| + EPS}; {@code B = 0} where {@code |a| = 0} (then
     * {@code <a, b> = 0} too). Both vectors are centred, so the centring adds nothing to it.
     */
    private static void slopes(double ab, double aa, double bb, double[] coefA, double[] coefB, int at) {
        double na = Math.sqrt(aa);
        double nb = Math.sqrt(bb);
        double norm = na * nb + EPS;
        coefA[at] = 1 / norm;
        coefB[at] = na > 0 ? ab * nb / (na * norm * norm) : 0;
    }
}
