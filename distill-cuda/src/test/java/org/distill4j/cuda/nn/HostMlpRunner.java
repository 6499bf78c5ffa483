package org.distill4j.cuda.nn;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.TeacherValues;
import org.distill4j.store.ValueCodec;

import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * Runs an {@link MlpProgram} on the host, taking each operation as the device does: GEMMs with cuBLAS's
 * column-major semantics literally (element {@code (i, j)} at {@code i + j * ld}, {@code op} transposing),
 * bf16 buffers holding bf16-rounded values, the kernels' element rules ({@link MlpSpec.Activation}, the
 * Adam element of {@code mlp_math.cuh}, {@link MlpDropoutMask}), and the loss through its CPU
 * implementation. Every buffer starts as NaN, so an operation that reads what nothing wrote shows up.
 */
final class HostMlpRunner {
    private final MlpProgram program;
    private final Map<MlpProgram.Buffer, float[]> memory = new IdentityHashMap<>();
    private final long seed;
    private long steps;

    HostMlpRunner(MlpProgram program, MlpWeights student, MlpWeights teacher, long seed) {
        this.program = program;
        this.seed = seed;
        for (MlpProgram.Buffer b : program.buffers().values()) {
            float[] f = new float[Math.toIntExact(b.elements())];
            Arrays.fill(f, Float.NaN);
            memory.put(b, f);
        }
        load(program.student(), student);
        if (program.teacher() != null) {
            load(program.teacher(), teacher);
        }
        if (program.adamM() != null) {
            Arrays.fill(memory.get(program.adamM()), 0f);
            Arrays.fill(memory.get(program.adamV()), 0f);
        }
        for (MlpProgram.Op op : program.init()) {
            run(op, null);
        }
    }

    private void load(MlpProgram.Net net, MlpWeights w) {
        w.check(net.spec());
        for (int l = 0; l < w.w().length; l++) {
            put(net.w().get(l), w.w()[l]);
            put(net.b().get(l), w.b()[l]);
        }
    }

    private void put(MlpProgram.Slice s, float[] values) {
        System.arraycopy(values, 0, memory.get(s.buffer()), (int) s.offset(), values.length);
    }

    /** A copy of a slice's values. */
    float[] get(MlpProgram.Slice s) {
        return Arrays.copyOfRange(memory.get(s.buffer()), (int) s.offset(), (int) (s.offset() + s.length()));
    }

    float[] get(MlpProgram.Buffer b) {
        return get(b.all());
    }

    /** The student's parameters now. */
    MlpWeights studentWeights() {
        return weights(program.student());
    }

    /** The program this runner runs. */
    MlpProgram program() {
        return program;
    }

    /**
     * A runner of {@code other}, the same models at another batch size, that goes on from this one's
     * parameters, Adam moments and step count, as the GPU engine's full- and short-batch programs share them.
     */
    HostMlpRunner continueAs(MlpProgram other) {
        HostMlpRunner r = new HostMlpRunner(other, studentWeights(), program.teacher() != null ? weights(program.teacher()) : null, seed);
        if (program.adamM() != null) {
            copy(memory.get(program.adamM()), r.memory.get(other.adamM()));
            copy(memory.get(program.adamV()), r.memory.get(other.adamV()));
        }
        r.steps = steps;
        return r;
    }

    private static void copy(float[] from, float[] to) {
        if (from.length != to.length) {
            throw new IllegalArgumentException("the programs lay out the optimizer state differently: " + from.length + " vs " + to.length);
        }
        System.arraycopy(from, 0, to, 0, from.length);
    }

    private MlpWeights weights(MlpProgram.Net net) {
        int n = net.w().size();
        float[][] w = new float[n][];
        float[][] b = new float[n][];
        for (int l = 0; l < n; l++) {
            w[l] = get(net.w().get(l));
            b[l] = get(net.b().get(l));
        }
        return new MlpWeights(w, b);
    }

    private LossResult lastLoss;

    /** One step on {@code features} (row-major) and {@code labels} with {@code loss}. */
    LossResult step(float[] features, int[] labels, LogitLoss loss) {
        put(program.features().all(), features);
        float[] y = memory.get(program.labels());
        for (int r = 0; r < labels.length; r++) {
            y[r] = labels[r];
        }
        lastLoss = null;
        for (MlpProgram.Op op : program.step()) {
            run(op, loss);
        }
        steps++;
        return lastLoss;
    }

    private void run(MlpProgram.Op op, LogitLoss loss) {
        if (op instanceof MlpProgram.Gemm g) {
            gemm(g);
        } else if (op instanceof MlpProgram.BiasAct o) {
            float[] z = memory.get(o.z().buffer());
            long n = (long) o.rows() * o.cols();
            for (long i = 0; i < n; i++) {
                float pre = z[at(o.z(), i)] + (o.bias() != null ? memory.get(o.bias().buffer())[at(o.bias(), i % o.cols())] : 0f);
                if (o.pre() != null) {
                    memory.get(o.pre().buffer())[at(o.pre(), i)] = pre;
                }
                float y = (float) o.act().apply(pre);
                if (o.yBf16() != null) {
                    memory.get(o.yBf16().buffer())[at(o.yBf16(), i)] = bf16(y);
                } else {
                    z[at(o.z(), i)] = y;
                }
            }
        } else if (op instanceof MlpProgram.ActBackward o) {
            float[] dy = memory.get(o.dy().buffer());
            float[] pre = memory.get(o.pre().buffer());
            long n = (long) o.rows() * o.cols();
            for (long i = 0; i < n; i++) {
                float dz = dy[at(o.dy(), i)] * (float) o.act().derivative(pre[at(o.pre(), i)]);
                dy[at(o.dy(), i)] = dz;
                if (o.dzBf16() != null) {
                    memory.get(o.dzBf16().buffer())[at(o.dzBf16(), i)] = bf16(dz);
                }
            }
        } else if (op instanceof MlpProgram.ToBf16 o) {
            for (long i = 0; i < o.n(); i++) {
                memory.get(o.dst().buffer())[at(o.dst(), i)] = bf16(memory.get(o.src().buffer())[at(o.src(), i)]);
            }
        } else if (op instanceof MlpProgram.BiasGrad o) {
            float[] dz = memory.get(o.dz().buffer());
            for (int c = 0; c < o.cols(); c++) {
                double s = 0;
                for (int r = 0; r < o.rows(); r++) {
                    s += dz[at(o.dz(), (long) r * o.cols() + c)];
                }
                memory.get(o.db().buffer())[at(o.db(), c)] = (float) s;
            }
        } else if (op instanceof MlpProgram.Dropout o) {
            float p = (float) o.dropProb();
            float scale = MlpDropoutMask.scale(p);
            long s = MlpDropoutMask.stepSeed(seed, steps);
            long off = MlpDropoutMask.layerOffset(o.stream());
            float[] x = memory.get(o.x().buffer());
            float[] mask = memory.get(o.mask().buffer());
            boolean bf = o.x().elem() == MlpProgram.Elem.BF16;
            for (long i = 0; i < o.n(); i++) {
                boolean keep = MlpDropoutMask.keep(s, off, i, p);
                mask[at(o.mask(), i)] = keep ? 1 : 0;
                float v = keep ? x[at(o.x(), i)] * scale : 0f;
                x[at(o.x(), i)] = bf ? bf16(v) : v;
            }
        } else if (op instanceof MlpProgram.DropoutBackward o) {
            float scale = MlpDropoutMask.scale((float) o.dropProb());
            float[] dx = memory.get(o.dx().buffer());
            float[] mask = memory.get(o.mask().buffer());
            for (long i = 0; i < o.n(); i++) {
                dx[at(o.dx(), i)] = mask[at(o.mask(), i)] != 0 ? dx[at(o.dx(), i)] * scale : 0f;
            }
        } else if (op instanceof MlpProgram.Loss o) {
            float[] s = get(o.studentLogits());
            float[] yf = get(o.labels());
            int[] y = new int[yf.length];
            for (int r = 0; r < y.length; r++) {
                y[r] = (int) yf[r];
            }
            LogitBatch b = o.teacherLogits() == null ? LogitBatch.ofLabels(o.rows(), o.classes(), s, y)
                    : LogitBatch.of(o.rows(), o.classes(), s, get(o.teacherLogits()), TeacherValues.LOGITS, y);
            float[] grad = new float[s.length];
            lastLoss = loss.compute(b, grad, 1f);
            put(o.grad(), grad);
            Arrays.fill(memory.get(o.rowOut().buffer()), 0f);
        } else if (op instanceof MlpProgram.Update o) {
            update(o);
        } else {
            throw new IllegalStateException("no host rule for " + op);
        }
    }

    private void update(MlpProgram.Update o) {
        MlpSpec.Optimizer opt = program.student().spec().optimizer();
        float[] p = memory.get(o.params().buffer());
        float[] g = memory.get(o.grads().buffer());
        long t = steps + 1;
        if (opt.kind() == MlpSpec.Optimizer.Kind.SGD) {
            float lr = (float) opt.learningRate();
            for (long i = 0; i < o.n(); i++) {
                p[at(o.params(), i)] -= lr * g[at(o.grads(), i)];
            }
        } else {
            float[] m = memory.get(o.m().buffer());
            float[] v = memory.get(o.v().buffer());
            float b1 = (float) opt.beta1();
            float b2 = (float) opt.beta2();
            float eps = (float) opt.epsilon();
            float lrWd = (float) opt.learningRate() * (float) opt.weightDecay();
            float alphaT = DeviceMlpRunner.adamAlphaT(opt, t);
            for (long i = 0; i < o.n(); i++) {
                int pi = at(o.params(), i);
                float gi = g[at(o.grads(), i)];
                float mm = b1 * m[at(o.m(), i)] + (1f - b1) * gi;
                float vv = b2 * v[at(o.v(), i)] + (1f - b2) * gi * gi;
                m[at(o.m(), i)] = mm;
                v[at(o.v(), i)] = vv;
                p[pi] = p[pi] - (alphaT * mm / ((float) Math.sqrt(vv) + eps) + lrWd * p[pi]);
            }
        }
        if (o.paramsBf16() != null) {
            for (long i = 0; i < o.n(); i++) {
                memory.get(o.paramsBf16().buffer())[at(o.paramsBf16(), i)] = bf16(p[at(o.params(), i)]);
            }
        }
    }

    /**
     * D = op(A) op(B) in column-major terms, summed in double; then the epilogue. The ReLU bit-mask is kept
     * as cuBLASLt describes it (bit {@code i + j * auxLd}, a byte per element of the U8 buffer); a column's
     * bytes are cleared before its bits are set, and reading a byte nothing wrote fails.
     */
    private void gemm(MlpProgram.Gemm g) {
        float[] a = memory.get(g.a().buffer());
        float[] b = memory.get(g.b().buffer());
        float[] d = memory.get(g.d().buffer());
        float[] bias = g.bias() != null ? memory.get(g.bias().buffer()) : null;
        float[] aux = g.aux() != null ? memory.get(g.aux().buffer()) : null;
        if (g.epilogue() == MlpProgram.Epilogue.RELU_AUX_BIAS) {
            for (int j = 0; j < g.n(); j++) {
                for (long byteAt = (long) j * g.auxLd() / 8; byteAt < ((long) j * g.auxLd() + g.m() + 7) / 8; byteAt++) {
                    aux[at(g.aux(), byteAt)] = 0;
                }
            }
        }
        for (int i = 0; i < g.m(); i++) {
            double biasGrad = 0;
            for (int j = 0; j < g.n(); j++) {
                double s = 0;
                for (int p = 0; p < g.k(); p++) {
                    s += (double) opA(g, a, i, p) * opB(g, b, p, j);
                }
                float v = (float) s;
                long bit = i + (long) j * g.auxLd();
                switch (g.epilogue()) {
                    case BIAS -> v += bias[at(g.bias(), i)];
                    case RELU_BIAS -> v = Math.max(0f, v + bias[at(g.bias(), i)]);
                    case RELU_AUX_BIAS -> {
                        v = Math.max(0f, v + bias[at(g.bias(), i)]);
                        if (v > 0) {
                            int byteAt = at(g.aux(), bit / 8);
                            aux[byteAt] = (float) ((int) aux[byteAt] | (1 << (bit % 8)));
                        }
                    }
                    case DRELU_BGRAD -> {
                        float byteValue = aux[at(g.aux(), bit / 8)];
                        if (Float.isNaN(byteValue)) {
                            throw new IllegalStateException("the ReLU bit-mask " + g.aux() + " is read where nothing wrote it, bit " + bit);
                        }
                        v = (((int) byteValue >> (bit % 8)) & 1) != 0 ? v : 0f;
                        biasGrad += v;
                    }
                    default -> {
                    }
                }
                d[at(g.d(), i + (long) j * g.ldd())] = v;
            }
            if (g.epilogue() == MlpProgram.Epilogue.BGRADA) {
                for (int p = 0; p < g.k(); p++) {
                    biasGrad += opA(g, a, i, p);
                }
            }
            if (g.epilogue() == MlpProgram.Epilogue.BGRADA || g.epilogue() == MlpProgram.Epilogue.DRELU_BGRAD) {
                bias[at(g.bias(), i)] = (float) biasGrad;
            }
        }
    }

    private static float opA(MlpProgram.Gemm g, float[] a, int i, int p) {
        return a[at(g.a(), g.transA() ? p + (long) i * g.lda() : i + (long) p * g.lda())];
    }

    private static float opB(MlpProgram.Gemm g, float[] b, int p, int j) {
        return b[at(g.b(), g.transB() ? j + (long) p * g.ldb() : p + (long) j * g.ldb())];
    }

    /** The index of element {@code i} of a slice, checked against the slice. */
    private static int at(MlpProgram.Slice s, long i) {
        if (i < 0 || i >= s.length()) {
            throw new IndexOutOfBoundsException("element " + i + " of " + s);
        }
        return (int) (s.offset() + i);
    }

    private static float bf16(float x) {
        return ValueCodec.fromBfloat16(ValueCodec.toBfloat16(x));
    }
}
