package org.distill4j.cuda.nn;

import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.SoftTargetKd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;
import java.util.Random;

import static org.distill4j.cuda.nn.MlpSpec.Activation.GELU_SIGMOID;
import static org.distill4j.cuda.nn.MlpSpec.Activation.IDENTITY;
import static org.distill4j.cuda.nn.MlpSpec.Activation.RELU;
import static org.distill4j.cuda.nn.MlpSpec.Activation.SIGMOID;
import static org.distill4j.cuda.nn.MlpSpec.Activation.TANH;
import static org.distill4j.testing.Tolerances.MLP_BF16_GRAD;
import static org.distill4j.testing.Tolerances.MLP_BF16_VALUE_REL;
import static org.distill4j.testing.Tolerances.MLP_F32_GRAD;
import static org.distill4j.testing.Tolerances.MLP_F32_PARAM;
import static org.distill4j.testing.Tolerances.assertKernelGradClose;
import static org.distill4j.testing.Tolerances.assertKernelValueClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The engine's step program run on the host ({@link HostMlpRunner}: cuBLAS column-major GEMM semantics
 * taken literally, the kernels' element rules) against the float64 reference step ({@link ReferenceStep}):
 * teacher and student logits, every parameter gradient and the parameters after the optimizer, over
 * several steps, with odd sizes, every activation, dropout, fp32 and bf16, with and without fused
 * epilogues. What this cannot check is cuBLASLt and the kernels themselves on a device: the GPU tests
 * (CudaMlpEngineGpuTest) run the same programs there.
 */
class MlpProgramTest {
    static final int ROWS = 9;
    static final int IN = 13;
    static final int CLASSES = 11;

    static MlpSpec student(MlpSpec.Activation a1, MlpSpec.Activation a2, double drop0, double drop1, MlpSpec.Optimizer opt) {
        return new MlpSpec(IN, List.of(new MlpSpec.Layer(IN, 7, a1, drop0), new MlpSpec.Layer(7, 17, a2, drop1),
                new MlpSpec.Layer(17, CLASSES, IDENTITY, 0)), opt);
    }

    static MlpSpec teacher() {
        return new MlpSpec(IN, List.of(new MlpSpec.Layer(IN, 10, GELU_SIGMOID, 0), new MlpSpec.Layer(10, 6, RELU, 0),
                new MlpSpec.Layer(6, CLASSES, IDENTITY, 0)), MlpSpec.Optimizer.sgd(0.1));
    }

    @ParameterizedTest(name = "{0}/{1}, dropout {2}/{3}, {4}, fused {5}, {6}")
    @CsvSource({
            "RELU, TANH, 0, 0, F32, false, ADAM",
            "RELU, TANH, 0, 0, F32, true, ADAM",
            "SIGMOID, GELU_SIGMOID, 0, 0, F32, false, ADAM",
            "IDENTITY, RELU, 0, 0, F32, true, SGD",
            "RELU, RELU, 0.2, 0.35, F32, false, ADAM",
            "RELU, RELU, 0.2, 0.35, F32, true, SGD",
            "TANH, GELU_SIGMOID, 0, 0.5, F32, false, SGD",
    })
    void fp32StepsEqualTheReference(MlpSpec.Activation a1, MlpSpec.Activation a2, double drop0, double drop1,
                                    MlpProgram.Precision precision, boolean fused, MlpSpec.Optimizer.Kind opt) {
        MlpSpec.Optimizer o = opt == MlpSpec.Optimizer.Kind.ADAM ? MlpSpec.Optimizer.adam(0.01) : MlpSpec.Optimizer.sgd(0.05);
        run(student(a1, a2, drop0, drop1, o), teacher(), precision, fused, new SoftTargetKd(2.5, 0.3), 4, 11);
    }

    @Test
    void crossEntropyWithoutTeacher() {
        run(student(TANH, RELU, 0, 0.25, MlpSpec.Optimizer.adam(0.02)), null, MlpProgram.Precision.F32, true, new CrossEntropy(), 3, 12);
    }

    @Test
    void adamWithDecoupledWeightDecay() {
        MlpSpec.Optimizer adamW = new MlpSpec.Optimizer(MlpSpec.Optimizer.Kind.ADAM, 0.01, 0.9, 0.999, 1e-8, 0.05);
        run(student(RELU, SIGMOID, 0, 0, adamW), teacher(), MlpProgram.Precision.F32, false, new SoftTargetKd(4, 0.1), 3, 13);
    }

    /** Runs {@code steps} steps of the program on the host and of the reference, comparing as it goes. */
    /** The fallback for a cuBLASLt without the ReLU bit-mask epilogues: fused bias and ReLU, the ReLU kernel's backward. */
    @Test
    void fusedEpiloguesWithoutReluMasks() {
        MlpSpec s = student(RELU, RELU, 0, 0, MlpSpec.Optimizer.adam(0.01));
        MlpProgram p = MlpProgram.build(s, teacher(), ROWS, MlpProgram.Precision.F32, true, false);
        assertTrue(p.step().stream().noneMatch(o -> o instanceof MlpProgram.Gemm g && g.epilogue().usesAux()), p.toString());
        run(s, teacher(), MlpProgram.Precision.F32, true, false, new SoftTargetKd(2.5, 0.3), 3, 14);
    }

    private static void run(MlpSpec s, MlpSpec t, MlpProgram.Precision precision, boolean fused, LogitLoss loss, int steps, long seed) {
        run(s, t, precision, fused, fused, loss, steps, seed);
    }

    private static void run(MlpSpec s, MlpSpec t, MlpProgram.Precision precision, boolean fused, boolean reluMasks, LogitLoss loss,
                            int steps, long seed) {
        Random rng = new Random(seed);
        MlpWeights sw = ReferenceStep.randomWeights(s, rng);
        MlpWeights tw = t != null ? ReferenceStep.randomWeights(t, rng) : null;
        MlpProgram program = MlpProgram.build(s, t, ROWS, precision, fused, reluMasks);
        HostMlpRunner host = new HostMlpRunner(program, sw, tw, seed);
        ReferenceStep ref = new ReferenceStep(s, sw, t, tw);
        boolean bf16 = precision == MlpProgram.Precision.BF16;
        for (int step = 0; step < steps; step++) {
            float[] x = ReferenceStep.gaussian(rng, ROWS * IN, 1.0);
            int[] y = ReferenceStep.labels(rng, ROWS, CLASSES);
            boolean[][] masks = masks(s, seed, step);
            LossResult got = host.step(x, y, loss);
            ref.step(bf16 ? org.distill4j.cuda.DType.BF16.round(x) : x, ROWS, y, masks, loss);
            String at = program.precision() + (fused ? " fused" : "") + ", step " + step;
            double valueTol = bf16 ? MLP_BF16_VALUE_REL : MLP_F32_GRAD;
            assertKernelValueClose(ref.loss.value(), got.value(), valueTol, at + ": loss");
            double gradTol = bf16 ? MLP_BF16_GRAD : MLP_F32_GRAD;
            if (t != null) {
                assertKernelGradClose(ref.teacherLogits, host.get(program.teacherLogits()), gradTol, at + ": teacher logits");
            }
            assertKernelGradClose(ref.studentLogits, host.get(program.studentLogits()), gradTol, at + ": student logits");
            for (int l = 0; l < s.layers().size(); l++) {
                MlpProgram.Slice w = program.student().w().get(l);
                MlpProgram.Slice b = program.student().b().get(l);
                assertKernelGradClose(ref.grads[0][l], host.get(new MlpProgram.Slice(program.grads(), w.offset(), w.length())), gradTol,
                        at + ": dW" + l);
                assertKernelGradClose(ref.grads[1][l], host.get(new MlpProgram.Slice(program.grads(), b.offset(), b.length())), gradTol,
                        at + ": db" + l);
            }
            if (!bf16) {
                MlpWeights mine = host.studentWeights();
                MlpWeights theirs = ref.student.weights();
                for (int l = 0; l < s.layers().size(); l++) {
                    assertParams(theirs.w()[l], mine.w()[l], at + ": W" + l + " after the update");
                    assertParams(theirs.b()[l], mine.b()[l], at + ": b" + l + " after the update");
                }
            }
        }
    }

    static boolean[][] masks(MlpSpec s, long seed, long step) {
        boolean[][] m = new boolean[s.layers().size()][];
        for (int l = 0; l < m.length; l++) {
            MlpSpec.Layer layer = s.layers().get(l);
            if (layer.dropout() > 0) {
                m[l] = MlpDropoutMask.mask(seed, step, l, (long) ROWS * layer.in(), (float) layer.dropout());
            }
        }
        return m;
    }

    static void assertParams(float[] expected, float[] actual, String what) {
        for (int i = 0; i < expected.length; i++) {
            if (!(Math.abs(expected[i] - actual[i]) <= MLP_F32_PARAM)) {
                fail(what + ": element " + i + " expected " + expected[i] + " but was " + actual[i]);
            }
        }
    }

    /**
     * Networks of more than 2^31 parameters (8 GiB in fp32, within an H100's memory): the weights' check
     * counts a layer's weights in long arithmetic (65536 x 65536 wrapped to 0 in int and took an empty W),
     * and the engine's host-device copies go in pieces whose offsets are longs, past 2^31 elements, each of
     * at most the chunk's bytes, covering a slice exactly.
     */
    @Test
    void parametersBeyond2GiBAreCountedAndCopiedWithLongOffsets() {
        MlpSpec wide = new MlpSpec(65536, List.of(new MlpSpec.Layer(65536, 65536, RELU, 0), new MlpSpec.Layer(65536, 7, IDENTITY, 0)),
                MlpSpec.Optimizer.sgd(0.1));
        MlpWeights empty = new MlpWeights(new float[][] {new float[0], new float[65536 * 7]}, new float[][] {new float[65536], new float[7]});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> empty.check(wide));
        assertTrue(e.getMessage().startsWith("layer 0 is 65536 x 65536 = 4294967296 weights, more than a Java array holds"), e.getMessage());
        MlpWeights wrongB = new MlpWeights(new float[][] {new float[7 * 5]}, new float[][] {new float[4]});
        e = assertThrows(IllegalArgumentException.class, () -> wrongB.check(new MlpSpec(7, List.of(new MlpSpec.Layer(7, 5, RELU, 0)),
                MlpSpec.Optimizer.sgd(0.1))));
        assertEquals("layer 0: W has 35 values and b 4, expected 7 x 5 and 5", e.getMessage());

        // 46000 x 46000 = 2,116,000,000 weights (an array holds them), then layers whose slices start past 2^31 elements
        MlpSpec big = new MlpSpec(46000, List.of(new MlpSpec.Layer(46000, 46000, RELU, 0), new MlpSpec.Layer(46000, 9000, RELU, 0),
                new MlpSpec.Layer(9000, 11, IDENTITY, 0)), MlpSpec.Optimizer.adam(1e-3));
        MlpProgram p = MlpProgram.build(big, null, 3, MlpProgram.Precision.F32, true);
        MlpProgram.Slice b2 = p.student().b().get(2);
        assertTrue(b2.offset() > Integer.MAX_VALUE, "the last bias starts at element " + b2.offset());
        long chunk = 64L << 20;
        for (MlpProgram.Slice s : List.of(p.student().w().get(0), p.student().w().get(1), p.student().b().get(1), p.student().w().get(2), b2)) {
            List<MlpProgram.Slice> pieces = CudaMlpEngine.pieces(s, chunk);
            long at = s.offset();
            for (MlpProgram.Slice piece : pieces) {
                assertEquals(s.buffer(), piece.buffer());
                assertEquals(at, piece.offset(), s + ": pieces follow each other");
                assertTrue(piece.length() * 4 <= chunk, s + ": a piece of " + piece.length() + " elements");
                at += piece.length();
            }
            assertEquals(s.offset() + s.length(), at, s + ": the pieces cover the slice");
            assertEquals((s.length() * 4 + chunk - 1) / chunk, pieces.size(), s + ": pieces of the whole chunk but the last");
        }
        // odd chunk sizes round down to whole elements, and a chunk smaller than an element still moves one
        assertEquals(List.of(new MlpProgram.Slice(b2.buffer(), b2.offset(), 2), new MlpProgram.Slice(b2.buffer(), b2.offset() + 2, 2),
                new MlpProgram.Slice(b2.buffer(), b2.offset() + 4, 2), new MlpProgram.Slice(b2.buffer(), b2.offset() + 6, 2),
                new MlpProgram.Slice(b2.buffer(), b2.offset() + 8, 2), new MlpProgram.Slice(b2.buffer(), b2.offset() + 10, 1)),
                CudaMlpEngine.pieces(b2, 11));
        assertEquals(11, CudaMlpEngine.pieces(b2, 3).size());
    }

    @ParameterizedTest(name = "bf16, {0}/{1}, dropout {2}")
    @CsvSource({"RELU, TANH, 0", "GELU_SIGMOID, SIGMOID, 0.3", "IDENTITY, RELU, 0.1"})
    void bf16StepsStayWithinBf16OfTheReference(MlpSpec.Activation a1, MlpSpec.Activation a2, double drop) {
        run(student(a1, a2, drop, drop, MlpSpec.Optimizer.sgd(0.05)), teacher(), MlpProgram.Precision.BF16, false,
                new SoftTargetKd(2, 0.5), 3, 21);
    }

    @Test
    void dropoutDrawsNewMasksEachStepAndLayer() {
        boolean[] a = MlpDropoutMask.mask(5, 0, 1, 4000, 0.5f);
        boolean[] b = MlpDropoutMask.mask(5, 1, 1, 4000, 0.5f);
        boolean[] c = MlpDropoutMask.mask(5, 0, 2, 4000, 0.5f);
        int ab = 0;
        int ac = 0;
        int kept = 0;
        for (int i = 0; i < a.length; i++) {
            ab += a[i] == b[i] ? 1 : 0;
            ac += a[i] == c[i] ? 1 : 0;
            kept += a[i] ? 1 : 0;
        }
        // independent fair masks agree on about half the units (5 standard deviations: 158)
        assertTrue(Math.abs(ab - 2000) < 158 && Math.abs(ac - 2000) < 158 && Math.abs(kept - 2000) < 158, ab + " " + ac + " " + kept);
    }

    @Test
    void theProgramIsWhatTheDesignSays() {
        MlpSpec s = student(RELU, TANH, 0.2, 0, MlpSpec.Optimizer.adam(0.01));
        MlpProgram f32 = MlpProgram.build(s, teacher(), ROWS, MlpProgram.Precision.F32, true);
        List<MlpProgram.Op> ops = f32.step();
        long gemms = ops.stream().filter(o -> o instanceof MlpProgram.Gemm).count();
        // teacher 3 + student 3 forward, 3 weight gradients, 2 input gradients
        assertEquals(11, gemms, f32.toString());
        assertEquals(1, ops.stream().filter(o -> o instanceof MlpProgram.Update).count(), "one optimizer launch for all parameters");
        assertEquals(1, ops.stream().filter(o -> o instanceof MlpProgram.Dropout).count());
        assertEquals(0, ops.stream().filter(o -> o instanceof MlpProgram.BiasGrad).count(), "fused: bias gradients from BGRADA");
        // the ReLU layer 0 feeds layer 1 without dropout: its mask comes from the forward GEMM, its relu' and bias
        // gradient from layer 1's input-gradient GEMM, and no kernel touches its backward
        assertEquals(List.of(MlpProgram.Epilogue.RELU_AUX_BIAS, MlpProgram.Epilogue.DRELU_BGRAD), ops.stream()
                .filter(o -> o instanceof MlpProgram.Gemm g && g.epilogue().usesAux()).map(o -> ((MlpProgram.Gemm) o).epilogue()).toList());
        assertEquals(1, ops.stream().filter(o -> o instanceof MlpProgram.ActBackward).count(), "only layer 1's tanh'");
        assertEquals(2, ops.stream().filter(o -> o instanceof MlpProgram.Gemm g && g.epilogue() == MlpProgram.Epilogue.BGRADA).count(),
                "layers 1 and 2 take their bias gradients with their weight gradients");
        assertTrue(f32.init().isEmpty(), "fp32 has no weight copies to make");
        for (MlpProgram.Net net : List.of(f32.student(), f32.teacher())) {
            for (int l = 0; l < net.w().size(); l++) {
                assertEquals(0, net.w().get(l).offset() % MlpProgram.PARAM_ALIGN, "W" + l + " aligned");
                assertEquals(0, net.b().get(l).offset() % MlpProgram.PARAM_ALIGN, "b" + l + " aligned (epilogues read it wide)");
            }
        }
        assertEquals(f32.student().params().elements(), f32.grads().elements(), "gradients laid out as the parameters");
        assertEquals(f32.student().params().elements(), f32.adamM().elements(), "moments laid out as the parameters");
        MlpProgram bf = MlpProgram.build(s, teacher(), ROWS, MlpProgram.Precision.BF16, false);
        assertEquals(2, bf.init().size(), "bf16 copies of both networks' weights");
        for (MlpProgram.Op op : bf.step()) {
            if (op instanceof MlpProgram.Gemm g) {
                assertEquals(MlpProgram.Elem.BF16, g.a().elem(), g.toString());
                assertEquals(MlpProgram.Elem.F32, g.d().elem(), g.toString());
            }
        }
        assertEquals(3, bf.step().stream().filter(o -> o instanceof MlpProgram.BiasGrad).count());
    }

    @Test
    void badSetupsAreRefusedWithTheReason() {
        MlpSpec s = student(RELU, TANH, 0, 0, MlpSpec.Optimizer.adam(0.01));
        MlpSpec wide = new MlpSpec(IN, List.of(new MlpSpec.Layer(IN, 12, IDENTITY, 0)), MlpSpec.Optimizer.sgd(1));
        MlpSpec otherInputs = new MlpSpec(IN + 1, List.of(new MlpSpec.Layer(IN + 1, CLASSES, IDENTITY, 0)), MlpSpec.Optimizer.sgd(1));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> MlpProgram.build(s, wide, ROWS, MlpProgram.Precision.F32, false))
                .getMessage().contains("teacher gives 12 logits, the student 11"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> MlpProgram.build(s, otherInputs, ROWS, MlpProgram.Precision.F32, false))
                .getMessage().contains("teacher takes 14 features, the student 13"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> MlpProgram.build(s, null, ROWS, MlpProgram.Precision.BF16, true))
                .getMessage().contains("fused GEMM epilogues are used with fp32"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> MlpProgram.build(s, null, 0, MlpProgram.Precision.F32, false))
                .getMessage().contains("at least one row"));
        MlpProgram.Buffer small = new MlpProgram.Buffer("w", MlpProgram.Elem.F32, 20);
        MlpProgram.Buffer big = new MlpProgram.Buffer("x", MlpProgram.Elem.F32, 100);
        String msg = assertThrows(IllegalArgumentException.class, () -> new MlpProgram.Gemm(false, false, 5, 4, 5, small.all(), 5,
                big.all(), 5, big.all(), 5, MlpProgram.Epilogue.NONE, null)).getMessage();
        assertTrue(msg.contains("A (w) is too small for a column-major 5 x 5 matrix"), msg);
        MlpProgram.Buffer mask = new MlpProgram.Buffer("mask", MlpProgram.Elem.U8, 60);
        MlpProgram.Buffer bias = new MlpProgram.Buffer("b", MlpProgram.Elem.F32, 5);
        msg = assertThrows(IllegalArgumentException.class, () -> new MlpProgram.Gemm(false, false, 5, 4, 5, big.all(), 5, big.all(), 5,
                big.all(), 5, MlpProgram.Epilogue.RELU_AUX_BIAS, bias.all(), mask.all(), 5)).getMessage();
        assertTrue(msg.contains("multiple of 128"), msg);
        msg = assertThrows(IllegalArgumentException.class, () -> new MlpProgram.Gemm(false, false, 5, 4, 5, big.all(), 5, big.all(), 5,
                big.all(), 5, MlpProgram.Epilogue.RELU_AUX_BIAS, bias.all(), mask.all(), 128)).getMessage();
        assertTrue(msg.contains("(ld / 8) * 4 bytes"), msg);
        msg = assertThrows(IllegalArgumentException.class, () -> new MlpProgram.Gemm(false, false, 5, 4, 5, big.all(), 5, big.all(), 5,
                big.all(), 5, MlpProgram.Epilogue.DRELU_BGRAD, bias.all())).getMessage();
        assertTrue(msg.contains("epilogue DRELU_BGRAD needs ReLU bit-mask"), msg);
    }
}
