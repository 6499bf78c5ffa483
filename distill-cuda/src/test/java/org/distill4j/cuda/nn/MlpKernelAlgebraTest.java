package org.distill4j.cuda.nn;

import org.distill4j.cuda.HostHarness;

import org.distill4j.store.ValueCodec;
import org.distill4j.testing.Tolerances;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The GPU MLP engine's element-wise kernels ({@code mlp_math.cuh}, the {@code mlp_*} kernels of
 * distill_losses.cu) without a GPU: the host harness runs each kernel's element loop (the bias gradient in
 * the kernel's exact reduction order) and the results are compared with the float64 oracle,
 * {@link MlpSpec.Activation} and {@link MlpReference}: every activation on odd shapes with pre-activations
 * out to |z| = 80, the backward, the bias gradient's bits, several Adam and SGD steps, dropout masks, and
 * the bf16 copies the mixed-precision path feeds to its GEMMs.
 */
class MlpKernelAlgebraTest {
    /**
     * fp32 element-wise math (expf/tanhf of an fp32 pre-activation, an Adam step) lands within a few ulps
     * (~1e-6) of the float64 value of the same fp32 inputs; the kernels' stated relative tolerance, as for
     * the loss kernels' values.
     */
    static final double REL = Tolerances.KERNEL_F32_VALUE_REL;
    /**
     * Parameters after Adam's first step against the reference, relative to the distance they moved: from zero moments
     * nothing cancels, and fp32 rounding of the moments, the square root and the quotient is a few 1e-7 of the update; a
     * step size off by DL4J's fp32 betas (6.7e-6 too large when the host computed it from the float64 betas) is caught, as
     * REL (2e-5) did not. Later steps keep REL: a moment that cancels (a gradient changing sign) amplifies its rounding
     * relative to the update (2.1e-6 of the distance moved seen at lr 0.1).
     */
    static final double ADAM_FIRST_STEP_REL = 1e-6;
    /**
     * A derivative (at most ~1.13) is a sum of terms of order 1 that cancel where it crosses zero (GELU near
     * z = -0.75) and underflows in the float64 reference's own 1 - s far out: each backward element is also
     * allowed this times |dy| absolutely, as a kernel gradient element.
     */
    static final double DERIV_ABS = Tolerances.KERNEL_F32_GRAD;

    private static HostHarness harness;

    @BeforeAll
    static void compile() throws Exception {
        harness = HostHarness.compile("mlp_math_host_test");
    }

    private static Out harness(ByteBuffer in) throws Exception {
        byte[] bytes = Arrays.copyOf(in.array(), in.position());
        return new Out(ByteBuffer.wrap(harness.run(bytes)).order(ByteOrder.LITTLE_ENDIAN));
    }

    private static ByteBuffer input(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Reads the harness's output in order. */
    private record Out(ByteBuffer b) {
        float[] floats(int n) {
            float[] f = new float[n];
            for (int i = 0; i < n; i++) {
                f[i] = b.getFloat();
            }
            return f;
        }

        short[] shorts(int n) {
            short[] s = new short[n];
            for (int i = 0; i < n; i++) {
                s[i] = b.getShort();
            }
            return s;
        }

        byte[] bytes(int n) {
            byte[] s = new byte[n];
            b.get(s);
            return s;
        }

        void end() {
            assertEquals(0, b.remaining(), "the harness wrote more than expected");
        }
    }

    static Stream<Arguments> shapesAndActivations() {
        List<Arguments> a = new ArrayList<>();
        int[][] shapes = {{1, 10}, {37, 400}, {129, 1201}, {37, 10}, {1, 1201}};
        for (int[] s : shapes) {
            for (MlpSpec.Activation act : MlpSpec.Activation.values()) {
                a.add(Arguments.of(s[0], s[1], act));
            }
        }
        return a.stream();
    }

    /** Pre-activations: mostly N(0, 3^2), plus tails out to |z| = 80 and the region of GELU's minimum; never 0. */
    static float[] preActivations(Random rng, int n) {
        float[] z = new float[n];
        for (int i = 0; i < n; i++) {
            z[i] = switch (i % 10) {
                case 0 -> (float) ((rng.nextBoolean() ? 80 : -80) * (0.5 + 0.5 * rng.nextDouble()));
                case 1 -> (float) ((rng.nextDouble() * 2 - 1) * 80);
                case 2 -> (float) (-0.75 + 0.05 * rng.nextGaussian());
                default -> (float) (3 * rng.nextGaussian());
            };
            if (z[i] == 0) {
                z[i] = 1e-3f;
            }
        }
        z[0] = 80f;
        if (n > 1) {
            z[1] = -80f;
        }
        return z;
    }

    static float[] gaussian(Random rng, int n, double sd) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            do {
                x[i] = (float) (sd * rng.nextGaussian());
            } while (x[i] == 0);
        }
        return x;
    }

    private static void assertRelClose(double expected, float actual, String what) {
        // below the normal range an fp32 result is only absolutely accurate
        double tol = REL * Math.abs(expected) + Float.MIN_NORMAL;
        if (!(Float.isFinite(actual) && Math.abs(expected - actual) <= tol)) {
            fail(what + ": expected " + expected + " but was " + actual + " (tol " + tol + ")");
        }
    }

    // ---- forward: bias + activation, fp32 and bf16 out ----

    record BiasAct(float[] y, float[] pre, short[] yBf16, float[] pre2) {
    }

    static BiasAct biasAct(float[] z, float[] bias, int rows, int cols, MlpSpec.Activation act) throws Exception {
        int n = rows * cols;
        ByteBuffer in = input(24 + 4 * n + 4 * cols);
        in.putInt(0).putInt(act.ordinal()).putLong(rows).putInt(cols).putInt(bias != null ? 1 : 0);
        for (float f : z) {
            in.putFloat(f);
        }
        if (bias != null) {
            for (float f : bias) {
                in.putFloat(f);
            }
        }
        Out o = harness(in);
        BiasAct r = new BiasAct(o.floats(n), o.floats(n), o.shorts(n), o.floats(n));
        o.end();
        return r;
    }

    @ParameterizedTest(name = "[{0}, {1}] {2}")
    @MethodSource("shapesAndActivations")
    void biasAndActivationMatchTheFloat64Activation(int rows, int cols, MlpSpec.Activation act) throws Exception {
        Random rng = new Random(31L * rows + 7L * cols + act.ordinal());
        int n = rows * cols;
        float[] z = preActivations(rng, n);
        float[] bias = gaussian(rng, cols, 0.5);
        BiasAct got = biasAct(z, bias, rows, cols, act);
        for (int i = 0; i < n; i++) {
            float pre = z[i] + bias[i % cols]; // one fp32 addition, as the kernel does
            String at = act + " element " + i + " (pre " + pre + ")";
            assertEquals(Float.floatToRawIntBits(pre), Float.floatToRawIntBits(got.pre()[i]), at + ": pre-activation");
            assertEquals(Float.floatToRawIntBits(pre), Float.floatToRawIntBits(got.pre2()[i]), at + ": bf16out's pre-activation");
            assertRelClose(act.apply(pre), got.y()[i], at);
            // the bf16 output is the fp32 activation rounded to nearest even
            assertEquals(ValueCodec.toBfloat16(got.y()[i]), got.yBf16()[i], at + ": bf16 of " + got.y()[i]);
        }
    }

    @Test
    void aNullBiasLeavesThePreActivationAsItIs() throws Exception {
        float[] z = preActivations(new Random(5), 37 * 10);
        BiasAct got = biasAct(z, null, 37, 10, MlpSpec.Activation.GELU_SIGMOID);
        for (int i = 0; i < z.length; i++) {
            assertEquals(Float.floatToRawIntBits(z[i]), Float.floatToRawIntBits(got.pre()[i]));
            assertRelClose(MlpSpec.Activation.GELU_SIGMOID.apply(z[i]), got.y()[i], "element " + i);
        }
    }

    @Test
    void bf16OutputRoundsToNearestEven() throws Exception {
        // identity activations exactly halfway between two bf16 values (and just off halfway) pin the rounding
        float[] z = new float[8];
        int[] bits = {0x3f808000, 0x3f818000, 0x3f808001, 0x3f817fff, 0xbf808000, 0xbf818000, 0x7f7fffff, 0x00000001};
        for (int i = 0; i < z.length; i++) {
            z[i] = Float.intBitsToFloat(bits[i]);
        }
        short[] got = biasAct(z, null, 1, z.length, MlpSpec.Activation.IDENTITY).yBf16();
        short[] want = {0x3f80, 0x3f82, 0x3f81, 0x3f81, (short) 0xbf80, (short) 0xbf82, 0x7f80, 0x0000};
        assertArrayEquals(want, got);
        for (int i = 0; i < z.length; i++) {
            assertEquals(ValueCodec.toBfloat16(z[i]), got[i], "element " + i);
        }
    }

    // ---- backward ----

    static float[] actBackward(float[] dy, float[] pre, int rows, int cols, MlpSpec.Activation act) throws Exception {
        int n = rows * cols;
        ByteBuffer in = input(20 + 8 * n);
        in.putInt(1).putInt(act.ordinal()).putLong(rows).putInt(cols);
        for (float f : dy) {
            in.putFloat(f);
        }
        for (float f : pre) {
            in.putFloat(f);
        }
        Out o = harness(in);
        float[] dz = o.floats(n);
        o.end();
        return dz;
    }

    @ParameterizedTest(name = "[{0}, {1}] {2}")
    @MethodSource("shapesAndActivations")
    void activationBackwardMatchesTheFloat64Derivative(int rows, int cols, MlpSpec.Activation act) throws Exception {
        Random rng = new Random(17L * rows + 3L * cols + act.ordinal());
        int n = rows * cols;
        float[] pre = preActivations(rng, n);
        float[] dy = gaussian(rng, n, 1);
        float[] got = actBackward(dy, pre, rows, cols, act);
        for (int i = 0; i < n; i++) {
            double want = dy[i] * act.derivative(pre[i]);
            double tol = REL * Math.abs(want) + DERIV_ABS * Math.abs(dy[i]);
            if (!(Float.isFinite(got[i]) && Math.abs(want - got[i]) <= tol)) {
                fail(act + " element " + i + " (pre " + pre[i] + ", dy " + dy[i] + "): expected " + want + " but was " + got[i] + " (tol "
                        + tol + ")");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(floats = {-80, -40, -20, -5, 5, 20, 40, 80})
    void derivativesKeepTheirRelativeAccuracyInTheTails(float z) throws Exception {
        // float64 references that are themselves accurate there: s'(z) = s'(-|z|), tanh'(z) = 1 / cosh^2 z
        double sigmoid = MlpSpec.Activation.SIGMOID.derivative(-Math.abs(z));
        double tanh = 1 / (Math.cosh(z) * Math.cosh(z));
        double gelu = MlpSpec.Activation.GELU_SIGMOID.derivative(z);
        MlpSpec.Activation[] acts = {MlpSpec.Activation.SIGMOID, MlpSpec.Activation.TANH, MlpSpec.Activation.GELU_SIGMOID};
        double[] want = {sigmoid, tanh, gelu};
        for (int k = 0; k < acts.length; k++) {
            float got = actBackward(new float[] {1f}, new float[] {z}, 1, 1, acts[k])[0];
            assertRelClose(want[k], got, acts[k] + "'(" + z + ")");
            if (want[k] > 4 * Float.MIN_NORMAL) {
                assertTrue(got > 0, acts[k] + "'(" + z + ") = " + want[k] + " does not underflow to " + got);
            }
        }
    }

    // ---- bias gradient ----

    static float[] biasGrad(float[] dz, int rows, int cols) throws Exception {
        ByteBuffer in = input(16 + 4 * dz.length);
        in.putInt(2).putLong(rows).putInt(cols);
        for (float f : dz) {
            in.putFloat(f);
        }
        Out o = harness(in);
        float[] db = o.floats(cols);
        o.end();
        return db;
    }

    /** The kernel's order, in Java floats: 32 lanes per column summing rows lane, lane + 32, ...; then the tree. */
    static float[] biasGradInKernelOrder(float[] dz, int rows, int cols) {
        float[] db = new float[cols];
        for (int c = 0; c < cols; c++) {
            float[] part = new float[32];
            for (int lane = 0; lane < 32; lane++) {
                float a = 0;
                for (int r = lane; r < rows; r += 32) {
                    a += dz[r * cols + c];
                }
                part[lane] = a;
            }
            for (int h = 16; h > 0; h >>= 1) {
                for (int l = 0; l < h; l++) {
                    part[l] += part[l + h];
                }
            }
            db[c] = part[0];
        }
        return db;
    }

    @ParameterizedTest(name = "[{0}, {1}]")
    @MethodSource("biasGradShapes")
    void biasGradientIsDeterministicAndMatchesFloat64Sums(int rows, int cols) throws Exception {
        Random rng = new Random(rows * 7919L + cols);
        float[] dz = gaussian(rng, rows * cols, 1);
        for (int i = 0; i < dz.length; i += 13) {
            dz[i] *= 1000; // some large terms, so the summation order shows in the low bits
        }
        float[] first = biasGrad(dz, rows, cols);
        float[] second = biasGrad(dz, rows, cols);
        float[] ordered = biasGradInKernelOrder(dz, rows, cols);
        for (int c = 0; c < cols; c++) {
            assertEquals(Float.floatToRawIntBits(first[c]), Float.floatToRawIntBits(second[c]), "column " + c + ": same inputs, same bits");
            assertEquals(Float.floatToRawIntBits(ordered[c]), Float.floatToRawIntBits(first[c]), "column " + c + ": the kernel's order");
            double sum = 0;
            double abs = 0;
            for (int r = 0; r < rows; r++) {
                sum += dz[r * cols + c];
                abs += Math.abs(dz[r * cols + c]);
            }
            // a float sum is accurate relative to the sum of magnitudes (its condition)
            assertTrue(Math.abs(sum - first[c]) <= REL * abs, "column " + c + ": expected " + sum + " but was " + first[c]);
        }
    }

    static Stream<Arguments> biasGradShapes() {
        List<Arguments> a = new ArrayList<>();
        for (int rows : new int[] {1, 37, 129, 4099}) {
            for (int cols : new int[] {10, 400, 1201}) {
                a.add(Arguments.of(rows, cols));
            }
        }
        return a.stream();
    }

    // ---- optimizer steps against MlpReference ----

    record Steps(float[][] p, short[][] pBf16, float[] m, float[] v) {
    }

    static Steps adam(float[] p0, float[][] g, MlpSpec.Optimizer o) throws Exception {
        int n = p0.length;
        int steps = g.length;
        ByteBuffer in = input(36 + 4 * steps + 4 * n * (steps + 1));
        in.putInt(3).putLong(n).putInt(steps).putFloat((float) o.learningRate()).putFloat((float) o.beta1()).putFloat((float) o.beta2())
                .putFloat((float) o.epsilon()).putFloat((float) o.weightDecay());
        for (int t = 1; t <= steps; t++) {
            in.putFloat(DeviceMlpRunner.adamAlphaT(o, t)); // the host's step size, DL4J's (from the fp32 betas)
        }
        putAll(in, p0, g);
        Out out = harness(in);
        Steps s = readSteps(out, n, steps, true);
        out.end();
        return s;
    }

    static Steps sgd(float[] p0, float[][] g, double lr) throws Exception {
        int n = p0.length;
        ByteBuffer in = input(20 + 4 * n * (g.length + 1));
        in.putInt(4).putLong(n).putInt(g.length).putFloat((float) lr);
        putAll(in, p0, g);
        Out out = harness(in);
        Steps s = readSteps(out, n, g.length, false);
        out.end();
        return s;
    }

    private static void putAll(ByteBuffer in, float[] p0, float[][] g) {
        for (float f : p0) {
            in.putFloat(f);
        }
        for (float[] gt : g) {
            for (float f : gt) {
                in.putFloat(f);
            }
        }
    }

    private static Steps readSteps(Out out, int n, int steps, boolean moments) {
        float[][] p = new float[steps][];
        short[][] pb = new short[steps][];
        for (int t = 0; t < steps; t++) {
            p[t] = out.floats(n);
            pb[t] = out.shorts(n);
        }
        return moments ? new Steps(p, pb, out.floats(n), out.floats(n)) : new Steps(p, pb, null, null);
    }

    /** Gradients over decades (1e-6 .. 3, either sign, never 0), so epsilon and sqrt(v) both matter somewhere. */
    static float[] gradient(Random rng, int n) {
        float[] g = new float[n];
        for (int i = 0; i < n; i++) {
            g[i] = (float) ((rng.nextBoolean() ? 1 : -1) * Math.pow(10, -6 + 6.5 * rng.nextDouble()));
        }
        return g;
    }

    private static float[] flat(MlpWeights w) {
        float[] f = Arrays.copyOf(w.w()[0], w.w()[0].length + w.b()[0].length);
        System.arraycopy(w.b()[0], 0, f, w.w()[0].length, w.b()[0].length);
        return f;
    }

    /** One dense layer [in, out]: MlpReference updates W then b with the same rule, so the flat vector is W ++ b. */
    private static void stepsMatchMlpReference(MlpSpec.Optimizer opt, int steps, long seed) throws Exception {
        int in = 37;
        int out = 29;
        MlpSpec spec = new MlpSpec(in, List.of(new MlpSpec.Layer(in, out, MlpSpec.Activation.IDENTITY, 0)), opt);
        Random rng = new Random(seed);
        MlpWeights w0 = new MlpWeights(new float[][] {gaussian(rng, in * out, 0.5)}, new float[][] {gaussian(rng, out, 0.5)});
        MlpReference ref = new MlpReference(spec, w0);
        int n = in * out + out;
        float[][] g = new float[steps][];
        for (int t = 0; t < steps; t++) {
            g[t] = gradient(rng, n);
        }
        float[] p0 = flat(w0);
        Steps got = opt.kind() == MlpSpec.Optimizer.Kind.ADAM ? adam(p0, g, opt) : sgd(p0, g, opt.learningRate());
        float[] prev = p0;
        double[] moved = new double[n]; // sum over steps of |update|, the scale of the accumulated fp32 error
        double[] m = new double[n];
        double[] mScale = new double[n];
        double[] v = new double[n];
        for (int t = 0; t < steps; t++) {
            double[] gw = new double[in * out];
            double[] gb = new double[out];
            for (int i = 0; i < n; i++) {
                if (i < gw.length) {
                    gw[i] = g[t][i];
                } else {
                    gb[i - gw.length] = g[t][i];
                }
                m[i] = opt.beta1() * m[i] + (1 - opt.beta1()) * g[t][i];
                mScale[i] = opt.beta1() * mScale[i] + (1 - opt.beta1()) * Math.abs(g[t][i]);
                v[i] = opt.beta2() * v[i] + (1 - opt.beta2()) * g[t][i] * (double) g[t][i];
            }
            ref.step(new double[][][] {{gw}, {gb}});
            float[] want = flat(ref.weights());
            for (int i = 0; i < n; i++) {
                moved[i] += Math.abs((double) want[i] - prev[i]);
                // relative to the distance moved, plus half an ulp of p per fp32 step and the reference's rounding
                double rel = opt.kind() == MlpSpec.Optimizer.Kind.ADAM && t == 0 ? ADAM_FIRST_STEP_REL : REL;
                double tol = rel * moved[i] + (t + 2) * Math.ulp(want[i]);
                float p = got.p()[t][i];
                if (!(Math.abs(want[i] - p) <= tol)) {
                    fail(opt.kind() + " step " + (t + 1) + ", parameter " + i + " (g " + g[t][i] + "): expected " + want[i] + " but was " + p
                            + " (tol " + tol + ", moved " + moved[i] + ")");
                }
                assertEquals(ValueCodec.toBfloat16(p), got.pBf16()[t][i], "step " + (t + 1) + ", parameter " + i + ": the bf16 copy");
            }
            prev = want;
        }
        if (got.m() != null) {
            for (int i = 0; i < n; i++) {
                assertTrue(Math.abs(m[i] - got.m()[i]) <= REL * mScale[i], "m of parameter " + i + ": " + m[i] + " vs " + got.m()[i]);
                assertTrue(Math.abs(v[i] - got.v()[i]) <= REL * v[i], "v of parameter " + i + ": " + v[i] + " vs " + got.v()[i]);
            }
        }
    }

    @ParameterizedTest(name = "lr {0}, weight decay {1}")
    @MethodSource("adamSettings")
    void adamStepsMatchMlpReference(double lr, double weightDecay) throws Exception {
        MlpSpec.Optimizer opt = new MlpSpec.Optimizer(MlpSpec.Optimizer.Kind.ADAM, lr, 0.9, 0.999, 1e-8, weightDecay);
        stepsMatchMlpReference(opt, 5, Double.doubleToLongBits(lr) ^ Double.doubleToLongBits(weightDecay));
    }

    static Stream<Arguments> adamSettings() {
        return Stream.of(Arguments.of(0.01, 0.0), Arguments.of(0.01, 0.01), Arguments.of(1e-3, 0.0), Arguments.of(0.1, 0.01));
    }

    @Test
    void sgdStepsMatchMlpReference() throws Exception {
        stepsMatchMlpReference(MlpSpec.Optimizer.sgd(0.05), 4, 99);
    }

    // ---- dropout ----

    record Dropped(float[] x, short[] xBf16, byte[] mask, float[] dx) {
    }

    static Dropped dropout(float[] x, short[] xBf16, float[] dx, float dropProb, long seed, long offset) throws Exception {
        int n = dx.length;
        ByteBuffer in = input(36 + 8 * n);
        in.putInt(5).putLong(n).putFloat(dropProb).putLong(seed).putLong(offset).putInt(xBf16 != null ? 1 : 0);
        if (xBf16 != null) {
            for (short s : xBf16) {
                in.putShort(s);
            }
        } else {
            for (float f : x) {
                in.putFloat(f);
            }
        }
        for (float f : dx) {
            in.putFloat(f);
        }
        Out o = harness(in);
        Dropped d = xBf16 != null ? new Dropped(null, o.shorts(n), o.bytes(n), o.floats(n)) : new Dropped(o.floats(n), null, o.bytes(n), o.floats(n));
        o.end();
        return d;
    }

    static final int DROP_N = 100003;

    @ParameterizedTest
    @ValueSource(floats = {0.1f, 0.5f, 0.75f})
    void dropoutKeepsItsFractionAndScalesExactly(float dropProb) throws Exception {
        Random rng = new Random(Float.floatToIntBits(dropProb));
        float[] x = gaussian(rng, DROP_N, 2);
        float[] dy = gaussian(rng, DROP_N, 1);
        Dropped got = dropout(x, null, dy, dropProb, 42, 1000);
        float scale = 1f / (1f - dropProb); // the kernel's fp32 scale
        int kept = 0;
        for (int i = 0; i < DROP_N; i++) {
            byte k = got.mask()[i];
            assertTrue(k == 0 || k == 1, "mask " + i + " is 0 or 1");
            kept += k;
            float want = k == 1 ? x[i] * scale : 0f;
            assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got.x()[i]), "element " + i);
            float wantDx = k == 1 ? dy[i] * scale : 0f;
            assertEquals(Float.floatToRawIntBits(wantDx), Float.floatToRawIntBits(got.dx()[i]), "the backward of element " + i);
        }
        assertBinomial(kept, DROP_N, 1 - dropProb, "kept units");
    }

    /** |count - n p| within 5 standard deviations of a binomial (a false alarm ~ 6e-7). */
    private static void assertBinomial(long count, long n, double p, String what) {
        double sd = Math.sqrt(n * p * (1 - p));
        assertTrue(Math.abs(count - n * p) <= 5 * sd, what + ": " + count + " of " + n + ", expected " + n * p + " +- 5 x " + sd);
    }

    /** mlp_math.cuh's keep rule, in Java (the engine's own mirror, which tests use to know the device's masks). */
    static boolean keep(long seed, long offset, long i, float dropProb) {
        return MlpDropoutMask.keep(seed, offset, i, dropProb);
    }

    @ParameterizedTest
    @ValueSource(floats = {0.05f, 0.5f, 0.9f})
    void theMaskIsTheDocumentedCounterHash(float dropProb) throws Exception {
        Random rng = new Random(Float.floatToIntBits(dropProb));
        int n = 4099;
        long seed = rng.nextLong();
        long offset = Long.MAX_VALUE - 1000; // the counter wraps modulo 2^64, as in C
        byte[] mask = dropout(gaussian(rng, n, 1), null, gaussian(rng, n, 1), dropProb, seed, offset).mask();
        for (int i = 0; i < n; i++) {
            assertEquals(keep(seed, offset, i, dropProb) ? 1 : 0, mask[i], "element " + i);
        }
    }

    @Test
    void theMaskDependsOnlyOnTheSeedAndTheCounter() throws Exception {
        float p = 0.3f;
        Random rng = new Random(3);
        float[] x = gaussian(rng, DROP_N, 1);
        float[] dy = gaussian(rng, DROP_N, 1);
        byte[] a = dropout(x, null, dy, p, 7, 0).mask();
        assertArrayEquals(a, dropout(x, null, dy, p, 7, 0).mask(), "same seed and offset, same mask");
        int shift = 12345;
        byte[] shifted = dropout(x, null, dy, p, 7, shift).mask();
        assertFalse(Arrays.equals(a, shifted), "another offset, another mask");
        for (int i = 0; i + shift < DROP_N; i++) {
            assertEquals(a[i + shift], shifted[i], "element i of offset k is element k + i of offset 0");
        }
        byte[] otherSeed = dropout(x, null, dy, p, 8, 0).mask();
        // independent masks agree with probability p^2 + (1-p)^2; so do neighbours within a mask
        double agree = (double) p * p + (1 - p) * (1 - p);
        long sameSeed = 0;
        long neighbours = 0;
        for (int i = 0; i < DROP_N; i++) {
            sameSeed += a[i] == otherSeed[i] ? 1 : 0;
            neighbours += i > 0 && a[i] == a[i - 1] ? 1 : 0;
        }
        assertBinomial(sameSeed, DROP_N, agree, "elements where seeds 7 and 8 agree");
        assertBinomial(neighbours, DROP_N - 1, agree, "neighbours that agree");
    }

    @Test
    void bf16DropoutDrawsTheSameMaskAndRoundsTheScaledValue() throws Exception {
        float p = 0.25f;
        Random rng = new Random(11);
        float[] x = gaussian(rng, DROP_N, 3);
        short[] xb = new short[DROP_N];
        for (int i = 0; i < DROP_N; i++) {
            xb[i] = ValueCodec.toBfloat16(x[i]);
        }
        float[] dy = gaussian(rng, DROP_N, 1);
        Dropped f32 = dropout(x, null, dy, p, 5, 77);
        Dropped bf = dropout(null, xb, dy, p, 5, 77);
        assertArrayEquals(f32.mask(), bf.mask());
        float scale = 1f / (1f - p);
        for (int i = 0; i < DROP_N; i++) {
            short want = bf.mask()[i] == 1 ? ValueCodec.toBfloat16(ValueCodec.fromBfloat16(xb[i]) * scale) : 0;
            assertEquals(want, bf.xBf16()[i], "element " + i);
        }
    }

    @ParameterizedTest
    @EnumSource(MlpSpec.Activation.class)
    void everyActivationStaysFiniteAtTheExtremes(MlpSpec.Activation act) throws Exception {
        float[] z = {80f, -80f, 88.8f, -88.8f, 200f, -200f, Float.MAX_VALUE, -Float.MAX_VALUE, 1e-30f, -1e-30f};
        BiasAct fwd = biasAct(z, null, 1, z.length, act);
        float[] ones = new float[z.length];
        Arrays.fill(ones, 1f);
        float[] back = actBackward(ones, z, 1, z.length, act);
        for (int i = 0; i < z.length; i++) {
            assertTrue(Float.isFinite(fwd.y()[i]), act + "(" + z[i] + ") = " + fwd.y()[i]);
            assertTrue(Float.isFinite(back[i]), act + "'(" + z[i] + ") = " + back[i]);
            if (Math.abs(z[i]) <= 88.8f) {
                assertRelClose(act.apply(z[i]), fwd.y()[i], act + "(" + z[i] + ")");
            }
        }
    }
}
