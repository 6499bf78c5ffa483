package org.distill4j.loss;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * FitNets hint (A. Romero, N. Ballas, S. E. Kahou, A. Chassang, C. Gatta, Y. Bengio, "FitNets: Hints for
 * Thin Deep Nets", ICLR 2015): the student feature {@code s} (any shape, flattened to {@code Ds})
 * passes through a learned linear regressor to the teacher feature's size {@code Dt}, and the loss is
 * the mean squared error, averaged over the teacher feature and the samples:
 * <pre>
 *   r = W s + b - t,     loss = mean_samples (1/Dt) |r|^2
 *   dloss/ds = (2/Dt) W^T r / N,   dloss/dW = (2/Dt) r s^T / N,   dloss/db = (2/Dt) r / N
 * </pre>
 * Registered as {@code hint}. The regressor (Xavier-initialized from a seed) is trained with the
 * student: {@link #step()} applies Adam (learning rate, beta1 0.9, beta2 0.999, eps 1e-8) to the
 * gradients of the last {@code compute}. Not thread-safe: one instance per training run. Its checkpoint
 * state is the regressor, Adam's moments and step count.
 */
public final class HintLoss implements FeatureLoss, FeatureLoss.Trainable, org.distill4j.checkpoint.Checkpointable {
    /** The registered name. */
    public static final String NAME = "hint";

    /** The longest Java array a VM reliably allocates (as {@code jdk.internal.util.ArraysSupport.SOFT_MAX_ARRAY_LENGTH}). */
    static final int MAX_ARRAY_LENGTH = Integer.MAX_VALUE - 8;

    private final int ds;
    private final int dt;
    private final double learningRate;
    private final long seed;
    private final double[] w;     // [dt][ds] row-major
    private final double[] b;     // [dt]
    private final double[] gw;
    private final double[] gb;
    private final double[] mw;
    private final double[] vw;
    private final double[] mb;
    private final double[] vb;
    private int steps;
    private boolean hasGradient;

    /**
     * @param studentSize  values per sample of the student feature
     * @param teacherSize  values per sample of the teacher feature
     * @param learningRate Adam learning rate of the regressor, finite and &gt; 0
     * @param seed         initialization seed
     * @throws IllegalArgumentException for sizes or a learning rate out of range, and when the regressor's
     *                                  {@code teacherSize x studentSize} weights do not fit a Java array, or the
     *                                  weights with their gradient and Adam moments (four arrays of doubles) do not
     *                                  fit the heap the JVM may use; the message gives the sizes and what is needed
     */
    public HintLoss(int studentSize, int teacherSize, double learningRate, long seed) {
        if (studentSize <= 0 || teacherSize <= 0) {
            throw new IllegalArgumentException("hint sizes must be > 0, got student " + studentSize + ", teacher " + teacherSize);
        }
        if (!(learningRate > 0) || Double.isInfinite(learningRate)) {
            throw new IllegalArgumentException("hint learning rate must be a finite number > 0, got " + learningRate);
        }
        long weights = (long) teacherSize * studentSize;
        String regressor = "the hint regressor from " + studentSize + " student values to " + teacherSize + " teacher values";
        if (weights > MAX_ARRAY_LENGTH) {
            throw new IllegalArgumentException(regressor + " would need " + teacherSize + " x " + studentSize + " = " + weights
                    + " weights, more than a Java array holds (" + MAX_ARRAY_LENGTH + "); use smaller features (pool the maps, "
                    + "or hint from an earlier layer)");
        }
        long bytes = 4 * Double.BYTES * (weights + teacherSize); // weights and bias, their gradient, Adam's two moments
        long heap = Runtime.getRuntime().maxMemory();
        if (heap != Long.MAX_VALUE && bytes > heap) {
            throw new IllegalArgumentException(regressor + " would need " + (bytes >> 20) + " MiB of heap (" + weights
                    + " weights with their gradient and Adam moments, in double), more than the JVM may use (" + (heap >> 20)
                    + " MiB, -Xmx); use smaller features or a larger heap");
        }
        this.ds = studentSize;
        this.dt = teacherSize;
        this.learningRate = learningRate;
        this.seed = seed;
        this.w = new double[dt * ds];
        this.b = new double[dt];
        this.gw = new double[w.length];
        this.gb = new double[dt];
        this.mw = new double[w.length];
        this.vw = new double[w.length];
        this.mb = new double[dt];
        this.vb = new double[dt];
        Random rng = new Random(seed);
        double scale = Math.sqrt(2.0 / (ds + dt));
        for (int i = 0; i < w.length; i++) {
            w[i] = rng.nextGaussian() * scale;
        }
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("studentSize", ds);
        m.put("teacherSize", dt);
        m.put("learningRate", learningRate);
        m.put("seed", seed); // the regressor's initialization: with the sizes it rebuilds the loss
        return m;
    }

    /** The regressor weights {@code [Dt, Ds]}, row-major (a copy). */
    public double[] weights() {
        return w.clone();
    }

    /** The regressor bias {@code [Dt]} (a copy). */
    public double[] bias() {
        return b.clone();
    }

    /** Sets the regressor (for tests and checkpoints). */
    public void setParameters(double[] weights, double[] bias) {
        if (weights.length != w.length || bias.length != b.length) {
            throw new IllegalArgumentException("hint parameters have " + weights.length + " weights and " + bias.length
                    + " biases, expected " + w.length + " and " + b.length);
        }
        System.arraycopy(weights, 0, w, 0, w.length);
        System.arraycopy(bias, 0, b, 0, b.length);
    }

    /** The parameter gradients of the last compute (copies): weights then bias. */
    public double[][] lastGradients() {
        return new double[][]{gw.clone(), gb.clone()};
    }

    @Override
    public long parameterCount() {
        return (long) w.length + b.length;
    }

    @Override
    public LossResult compute(FeatureBatch batch, float[] gradOut, float upstream) {
        final int n = batch.rows();
        if (batch.studentSize() != ds || batch.teacherSize() != dt) {
            throw new IllegalArgumentException("hint regressor maps " + ds + " student values to " + dt + " teacher values, "
                    + "but the batch has " + batch.studentSize() + " and " + batch.teacherSize() + " per sample");
        }
        checkGradient(batch, gradOut, upstream);
        final float[] s = batch.student();
        final float[] t = batch.teacher();
        java.util.Arrays.fill(gw, 0);
        java.util.Arrays.fill(gb, 0);
        final double k = 2.0 / (dt * (double) n);
        final double[] r = new double[dt];
        final double[] gs = new double[ds];
        double total = 0;
        for (int row = 0; row < n; row++) {
            final int so = row * ds;
            final int to = row * dt;
            double sq = 0;
            for (int o = 0; o < dt; o++) {
                double acc = b[o];
                int wo = o * ds;
                for (int i = 0; i < ds; i++) {
                    acc += w[wo + i] * s[so + i];
                }
                r[o] = acc - t[to + o];
                sq += r[o] * r[o];
            }
            total += sq / dt;
            java.util.Arrays.fill(gs, 0);
            for (int o = 0; o < dt; o++) {
                final double ro = k * r[o];
                final int wo = o * ds;
                gb[o] += ro;
                for (int i = 0; i < ds; i++) {
                    gs[i] += w[wo + i] * ro;
                    gw[wo + i] += ro * s[so + i];
                }
            }
            for (int i = 0; i < ds; i++) {
                gradOut[so + i] = (float) (upstream * gs[i]);
            }
        }
        for (int i = 0; i < gw.length; i++) {
            gw[i] *= upstream;
        }
        for (int i = 0; i < gb.length; i++) {
            gb[i] *= upstream;
        }
        hasGradient = true;
        double value = total / n;
        return new LossResult(value, n, Map.of(NAME, value));
    }

    @Override
    public void step() {
        if (!hasGradient) {
            throw new IllegalStateException("hint step() needs a preceding compute()");
        }
        steps++;
        adam(w, gw, mw, vw);
        adam(b, gb, mb, vb);
        hasGradient = false;
    }

    @Override
    public void writeState(java.io.DataOutputStream out) throws java.io.IOException {
        out.writeInt(ds);
        out.writeInt(dt);
        out.writeInt(steps);
        for (double[] a : new double[][]{w, b, mw, vw, mb, vb}) {
            for (double x : a) {
                out.writeDouble(x);
            }
        }
    }

    @Override
    public Restore readState(java.io.DataInputStream in) throws java.io.IOException {
        int sds = in.readInt();
        int sdt = in.readInt();
        if (sds != ds || sdt != dt) {
            throw new IllegalArgumentException("the saved hint regressor maps " + sds + " student values to " + sdt
                    + " teacher values; this one maps " + ds + " to " + dt);
        }
        int savedSteps = in.readInt();
        double[][] read = new double[6][];
        double[][] into = {w, b, mw, vw, mb, vb};
        for (int k = 0; k < into.length; k++) {
            read[k] = new double[into[k].length];
            for (int i = 0; i < read[k].length; i++) {
                read[k][i] = in.readDouble();
            }
        }
        return () -> {
            for (int k = 0; k < into.length; k++) {
                System.arraycopy(read[k], 0, into[k], 0, into[k].length);
            }
            steps = savedSteps;
            hasGradient = false;
        };
    }

    private void adam(double[] p, double[] g, double[] m, double[] v) {
        final double b1 = 0.9;
        final double b2 = 0.999;
        final double c1 = 1 - Math.pow(b1, steps);
        final double c2 = 1 - Math.pow(b2, steps);
        for (int i = 0; i < p.length; i++) {
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            p[i] -= learningRate * (m[i] / c1) / (Math.sqrt(v[i] / c2) + 1e-8);
        }
    }
}
