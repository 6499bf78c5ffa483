package org.distill4j.cuda.nn;

/**
 * The GPU MLP engine's arithmetic on the host, in float64: forward, backward from dLoss/dLogits, and the
 * optimizer step as DL4J applies it. It is the oracle the engine's GPU tests compare with, and it is
 * itself checked against DL4J's own step (same weights, same batch, same gradient). Dropout is applied only
 * with masks given to {@link #forward(float[], int, boolean[][])} (a test passes the masks the engine drew).
 */
public final class MlpReference {
    private final MlpSpec spec;
    private final double[][] w;
    private final double[][] b;
    private final double[][] m;
    private final double[][] v;
    private final double[][] mb;
    private final double[][] vb;
    private int iteration;
    // the last forward: inputs of each layer and its pre-activations
    private double[][] inputs;
    private double[][] pre;
    private int rows;
    private boolean[][] masks;
    private double[] scales;

    /**
     * The network of {@code spec} with a float64 copy of {@code weights}, as at the start of training: Adam's moments zero
     * and no step taken.
     *
     * @throws IllegalArgumentException when {@code weights} do not have the spec's layers and sizes, naming the layer
     */
    public MlpReference(MlpSpec spec, MlpWeights weights) {
        weights.check(spec);
        this.spec = spec;
        int n = spec.layers().size();
        w = new double[n][];
        b = new double[n][];
        m = new double[n][];
        v = new double[n][];
        mb = new double[n][];
        vb = new double[n][];
        for (int i = 0; i < n; i++) {
            w[i] = widen(weights.w()[i]);
            b[i] = widen(weights.b()[i]);
            m[i] = new double[w[i].length];
            v[i] = new double[w[i].length];
            mb[i] = new double[b[i].length];
            vb[i] = new double[b[i].length];
        }
    }

    private static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    /** Logits {@code [rows, outputs]} of {@code x} ({@code [rows, inputs]}), remembering what backward needs. */
    public double[] forward(float[] x, int rows) {
        return forward(x, rows, null);
    }

    /**
     * The same with inverted dropout on layer inputs: {@code keep[l]} (null, or null for a layer, for none)
     * marks the kept units of layer {@code l}'s input, which are scaled by {@link MlpDropoutMask#scale}.
     */
    public double[] forward(float[] x, int rows, boolean[][] keep) {
        if (x.length != rows * spec.inputs()) {
            throw new IllegalArgumentException("x has " + x.length + " values, expected " + rows + " x " + spec.inputs());
        }
        this.rows = rows;
        int n = spec.layers().size();
        inputs = new double[n][];
        pre = new double[n][];
        masks = new boolean[n][];
        scales = new double[n];
        double[] a = widen(x);
        for (int li = 0; li < n; li++) {
            MlpSpec.Layer l = spec.layers().get(li);
            if (keep != null && keep[li] != null) {
                if (keep[li].length != a.length) {
                    throw new IllegalArgumentException("the mask of layer " + li + " has " + keep[li].length + " entries, its input "
                            + a.length);
                }
                masks[li] = keep[li];
                scales[li] = MlpDropoutMask.scale((float) l.dropout());
                double[] dropped = new double[a.length];
                for (int k = 0; k < a.length; k++) {
                    dropped[k] = keep[li][k] ? a[k] * scales[li] : 0;
                }
                a = dropped;
            }
            inputs[li] = a;
            double[] z = new double[rows * l.out()];
            for (int r = 0; r < rows; r++) {
                for (int o = 0; o < l.out(); o++) {
                    double s = b[li][o];
                    for (int i = 0; i < l.in(); i++) {
                        s += a[r * l.in() + i] * w[li][i * l.out() + o];
                    }
                    z[r * l.out() + o] = s;
                }
            }
            pre[li] = z;
            double[] y = new double[z.length];
            for (int k = 0; k < z.length; k++) {
                y[k] = l.activation().apply(z[k]);
            }
            a = y;
        }
        return a;
    }

    /** Gradients of the last forward's parameters for {@code dLogits}: {dW per layer, db per layer}. */
    public double[][][] backward(float[] dLogits) {
        if (pre == null) {
            throw new IllegalStateException("backward needs a forward first");
        }
        if (dLogits.length != (long) rows * spec.outputs()) {
            throw new IllegalArgumentException("dLogits has " + dLogits.length + " values, expected " + rows + " x " + spec.outputs()
                    + " for the last forward");
        }
        int n = spec.layers().size();
        double[][] dw = new double[n][];
        double[][] db = new double[n][];
        double[] d = widen(dLogits);
        for (int li = n - 1; li >= 0; li--) {
            MlpSpec.Layer l = spec.layers().get(li);
            double[] dz = new double[d.length];
            for (int k = 0; k < d.length; k++) {
                dz[k] = d[k] * l.activation().derivative(pre[li][k]);
            }
            dw[li] = new double[l.in() * l.out()];
            db[li] = new double[l.out()];
            double[] a = inputs[li];
            for (int r = 0; r < rows; r++) {
                for (int o = 0; o < l.out(); o++) {
                    double g = dz[r * l.out() + o];
                    db[li][o] += g;
                    for (int i = 0; i < l.in(); i++) {
                        dw[li][i * l.out() + o] += a[r * l.in() + i] * g;
                    }
                }
            }
            if (li > 0) {
                double[] dx = new double[rows * l.in()];
                for (int r = 0; r < rows; r++) {
                    for (int i = 0; i < l.in(); i++) {
                        double s = 0;
                        for (int o = 0; o < l.out(); o++) {
                            s += dz[r * l.out() + o] * w[li][i * l.out() + o];
                        }
                        dx[r * l.in() + i] = s;
                    }
                }
                if (masks[li] != null) {
                    for (int k = 0; k < dx.length; k++) {
                        dx[k] = masks[li][k] ? dx[k] * scales[li] : 0;
                    }
                }
                d = dx;
            }
        }
        return new double[][][] {dw, db};
    }

    /** One optimizer step with {@code grads} from {@link #backward}. */
    public void step(double[][][] grads) {
        MlpSpec.Optimizer o = spec.optimizer();
        iteration++;
        for (int li = 0; li < w.length; li++) {
            update(w[li], grads[0][li], m[li], v[li], o);
            update(b[li], grads[1][li], mb[li], vb[li], o);
        }
    }

    private void update(double[] p, double[] g, double[] mm, double[] vv, MlpSpec.Optimizer o) {
        if (o.kind() == MlpSpec.Optimizer.Kind.SGD) {
            for (int i = 0; i < p.length; i++) {
                p[i] -= o.learningRate() * g[i];
            }
            return;
        }
        // DL4J's Adam: the bias correction folded into the step size, epsilon added to sqrt(v); its native updater takes the
        // learning rate, betas and epsilon as fp32 (0.999 is 0.99900001287...), so the float64 step does too
        double lr = (float) o.learningRate();
        double beta1 = (float) o.beta1();
        double beta2 = (float) o.beta2();
        double eps = (float) o.epsilon();
        double alpha = lr * Math.sqrt(1 - Math.pow(beta2, iteration)) / (1 - Math.pow(beta1, iteration));
        for (int i = 0; i < p.length; i++) {
            mm[i] = beta1 * mm[i] + (1 - beta1) * g[i];
            vv[i] = beta2 * vv[i] + (1 - beta2) * g[i] * g[i];
            p[i] -= alpha * mm[i] / (Math.sqrt(vv[i]) + eps) + o.learningRate() * o.weightDecay() * p[i];
        }
    }

    /** Goes on from {@code state} (its step count and, for Adam, its moments; none means zeros). */
    public void resume(MlpOptimizerState state) {
        if (state.m() != null) {
            state.m().check(spec);
            state.v().check(spec);
        }
        iteration = state.steps();
        for (int i = 0; i < w.length; i++) {
            m[i] = state.m() != null ? widen(state.m().w()[i]) : new double[w[i].length];
            mb[i] = state.m() != null ? widen(state.m().b()[i]) : new double[b[i].length];
            v[i] = state.v() != null ? widen(state.v().w()[i]) : new double[w[i].length];
            vb[i] = state.v() != null ? widen(state.v().b()[i]) : new double[b[i].length];
        }
    }

    /** Optimizer steps taken so far. */
    public int steps() {
        return iteration;
    }

    /** Adam's moments now, rounded to float, in {@link MlpWeights}' layout: {m, v}. */
    public MlpWeights[] moments() {
        float[][] mw = new float[w.length][];
        float[][] mbf = new float[w.length][];
        float[][] vw = new float[w.length][];
        float[][] vbf = new float[w.length][];
        for (int i = 0; i < w.length; i++) {
            mw[i] = narrow(m[i]);
            mbf[i] = narrow(mb[i]);
            vw[i] = narrow(v[i]);
            vbf[i] = narrow(vb[i]);
        }
        return new MlpWeights[] {new MlpWeights(mw, mbf), new MlpWeights(vw, vbf)};
    }

    /** The current parameters, rounded to float. */
    public MlpWeights weights() {
        float[][] wf = new float[w.length][];
        float[][] bf = new float[b.length][];
        for (int i = 0; i < w.length; i++) {
            wf[i] = narrow(w[i]);
            bf[i] = narrow(b[i]);
        }
        return new MlpWeights(wf, bf);
    }

    private static float[] narrow(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }
}
