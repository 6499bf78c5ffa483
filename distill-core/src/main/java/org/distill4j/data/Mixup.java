package org.distill4j.data;

import java.util.Locale;
import java.util.Random;
import org.distill4j.loss.LossMath;

/**
 * Mixup for distillation: row {@code r} of a batch becomes {@code lambda * x_r + (1 - lambda) * x_j}, with {@code j} the
 * row a random permutation of the batch puts in its place and {@code lambda ~ Beta(alpha, alpha)} drawn per row (Zhang et
 * al., ICLR 2018; as function matching uses it, Beyer et al., CVPR 2022). A mixed row has no class of its own: its label
 * becomes {@link Dataset#UNLABELED}, so it trains on the teacher's outputs for the mixed input alone (supervised mixup's
 * {@code lambda * CE(y_r) + (1 - lambda) * CE(y_j)} has no place in a loss of one label per row). A row the permutation
 * leaves in place, or one not drawn for mixing (probability below 1), keeps its input and label. It is meant for
 * distillation: in a run without a teacher term (the student alone on {@code ce}) a mixed row trains nothing.
 *
 * <p>Each row's features are computed in double and rounded once to float. The draws come from the {@code Random} given,
 * in a fixed order: the permutation (Fisher-Yates, as {@link Dataset#permutation}), then per row whether it is mixed and
 * its weight.
 */
public final class Mixup implements Augmentation {
    private final double alpha;
    private final double probability;

    /**
     * @param alpha       the Beta(alpha, alpha) distribution of the mixing weight, {@code > 0}: small alpha mixes little
     *                    (weights near 0 or 1), 1 is uniform, large alpha mixes evenly (weights near 1/2)
     * @param probability the chance that a row is mixed, in {@code (0, 1]}
     * @throws IllegalArgumentException naming the setting when either is out of range
     */
    public Mixup(double alpha, double probability) {
        if (!(alpha > 0) || Double.isInfinite(alpha)) {
            throw new IllegalArgumentException("mixup alpha (of the Beta(alpha, alpha) mixing weight) must be a finite number > 0, got "
                    + alpha);
        }
        if (!(probability > 0 && probability <= 1)) {
            throw new IllegalArgumentException("mixup probability (the chance a row is mixed) must be in (0, 1], got " + probability);
        }
        this.alpha = alpha;
        this.probability = probability;
    }

    /** The parameter of the Beta(alpha, alpha) distribution of the mixing weight: finite and {@code > 0}. */
    public double alpha() {
        return alpha;
    }

    /** The chance that a row is mixed, in {@code (0, 1]}. */
    public double probability() {
        return probability;
    }

    /** The draws for a batch of {@code n} rows: each row's partner (itself where it is not mixed) and its weight. */
    record Draws(int[] partner, double[] lambda) {
    }

    /** Draws a batch's partners and weights from {@code rng}, in the order the class comment gives. */
    Draws draw(int n, Random rng) {
        int[] partner = Dataset.permutation(n, rng);
        double[] lambda = new double[n];
        for (int r = 0; r < n; r++) {
            boolean mixed = probability >= 1 || rng.nextDouble() < probability;
            if (!mixed || partner[r] == r) {
                partner[r] = r;
                lambda[r] = 1;
                continue;
            }
            lambda[r] = beta(alpha, rng);
        }
        return new Draws(partner, lambda);
    }

    @Override
    public Batch apply(Batch batch, Random rng) {
        int n = batch.size();
        int d = batch.featureCount();
        Draws draws = draw(n, rng);
        float[] x = batch.features();
        float[] out = new float[x.length];
        int[] labels = batch.labels().clone();
        for (int r = 0; r < n; r++) {
            int j = draws.partner()[r];
            if (j == r) {
                System.arraycopy(x, r * d, out, r * d, d);
                continue;
            }
            double l = draws.lambda()[r];
            for (int i = 0; i < d; i++) {
                out[r * d + i] = (float) (l * x[r * d + i] + (1 - l) * x[j * d + i]);
            }
            if (labels[r] != Dataset.IGNORE_INDEX) {
                labels[r] = Dataset.UNLABELED;
            }
        }
        return new Batch(batch.indices().clone(), out, d, labels);
    }

    /** True: a mixed row has no label. */
    @Override
    public boolean removesLabels() {
        return true;
    }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "mixup(alpha=%s, probability=%s)", alpha, probability);
    }

    @Override
    public String toString() {
        return describe();
    }

    /**
     * A Beta(a, a) draw, {@code X / (X + Y)} of two Gamma(a) draws, taken in log space so that a small {@code a} (whose
     * draws underflow) still gives a weight in [0, 1].
     */
    static double beta(double a, Random rng) {
        double lx = logGamma(a, rng);
        double ly = logGamma(a, rng);
        return 1.0 / (1.0 + LossMath.exp(ly - lx));
    }

    /**
     * The log of a Gamma(a, 1) draw: Marsaglia and Tsang's method ("A simple method for generating gamma variables", ACM
     * TOMS 2000) for {@code a >= 1}; below 1, Gamma(a + 1) times {@code U^(1/a)}, added in log space.
     */
    static double logGamma(double a, Random rng) {
        if (a < 1) {
            double u = rng.nextDouble();
            while (u == 0) {
                u = rng.nextDouble();
            }
            return logGamma(a + 1, rng) + Math.log(u) / a;
        }
        double d = a - 1.0 / 3;
        double c = 1 / Math.sqrt(9 * d);
        while (true) {
            double z = rng.nextGaussian();
            double v = 1 + c * z;
            if (v <= 0) {
                continue;
            }
            v = v * v * v;
            double u = rng.nextDouble();
            if (u < 1 - 0.0331 * z * z * z * z || Math.log(u) < 0.5 * z * z + d * (1 - v + Math.log(v))) {
                return Math.log(d * v);
            }
        }
    }
}
