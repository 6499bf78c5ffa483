package org.distill4j.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Tolerances per dtype, stated once. The CPU losses read float32 inputs, accumulate in float64 and
 * write float32 gradients, so against the float64 reference:
 * <ul>
 *   <li>value: relative {@link #F32_VALUE_REL} (or absolute {@link #F32_VALUE_ABS} near zero);</li>
 *   <li>gradient: each element within {@link #F32_GRAD_REL} of the largest gradient magnitude of its
 *       row set plus {@link #F32_GRAD_ABS} (float32 rounding of the written value dominates).</li>
 * </ul>
 * Finite differences of a float64 function with step h have error O(h^2); {@link #FD_REL} covers it.
 *
 * <p>Foreign engines (ONNX Runtime, libtorch) run whole forward passes in float32 with their own
 * accumulation order and vectorized tanh/exp: each output element within {@link #ENGINE_F32} of the
 * float64 reference, relative to {@code max(1, |expected|)}.
 *
 * <p>The CUDA kernels accumulate in float32 (online log-sum-exp, tree merges across threads): the loss
 * value within {@link #KERNEL_F32_VALUE_REL} relative (or {@link #F32_VALUE_ABS} absolute near zero), each
 * gradient element within {@link #KERNEL_F32_GRAD} times the row set's largest gradient magnitude. Half
 * inputs are rounded before the kernel reads them, so their reference is taken on the rounded values and
 * only the accumulation differs: {@link #KERNEL_F16_VALUE_REL} / {@link #KERNEL_F16_GRAD} cover the
 * gradient written back in half precision.
 *
 * <p>The GPU MLP engine's step (distill-cuda) chains GEMMs and element-wise kernels over fp32
 * activations: each parameter gradient within {@link #MLP_F32_GRAD} of its layer's largest gradient
 * magnitude, and parameters after the optimizer step within {@link #MLP_F32_PARAM} (absolute, on weights
 * of order 0.1-1). With bf16 GEMM inputs every activation, weight and pre-activation gradient is rounded
 * to 8 significant bits (relative 2^-9) before it is multiplied, and the errors add over layers:
 * {@link #MLP_BF16_GRAD} of the layer's largest gradient, {@link #MLP_BF16_VALUE_REL} on the loss. Those
 * hold only where the sums over rows do not cancel much: at other sizes the first layer's bf16 gradients
 * land up to a quarter of their largest magnitude away from the unrounded step. So the GPU engine's bf16
 * step is checked against the same program run on the host (the same roundings, other fp32 summation
 * orders, which may move a rounding by one bf16 step, 2^-8): {@link #MLP_BF16_PROGRAM} of the largest
 * magnitude, and as a relative tolerance on the loss. A wrong transpose, stride or buffer gives O(1)
 * errors, far above all of these.
 */
public final class Tolerances {
    public static final double F32_VALUE_REL = 1e-6;
    public static final double F32_VALUE_ABS = 1e-7;
    public static final double F32_GRAD_REL = 1e-6;
    public static final double F32_GRAD_ABS = 1e-9;
    public static final double FD_REL = 1e-5;
    public static final double ENGINE_F32 = 2e-5;
    public static final double KERNEL_F32_VALUE_REL = 2e-5;
    public static final double KERNEL_F32_GRAD = 2e-5;
    public static final double KERNEL_F16_VALUE_REL = 2e-4;
    public static final double KERNEL_F16_GRAD = 1e-2;
    public static final double MLP_F32_GRAD = 1e-4;
    public static final double MLP_F32_PARAM = 1e-5;
    public static final double MLP_BF16_GRAD = 5e-2;
    public static final double MLP_BF16_VALUE_REL = 2e-2;
    public static final double MLP_BF16_PROGRAM = 1e-2;

    private Tolerances() {
    }

    public static void assertValueClose(double expected, double actual, String what) {
        double tol = Math.max(F32_VALUE_ABS, F32_VALUE_REL * Math.abs(expected));
        if (!(Math.abs(expected - actual) <= tol)) {
            fail(what + ": expected " + expected + " but was " + actual + " (|diff| " + Math.abs(expected - actual)
                    + " > tol " + tol + ")");
        }
    }

    /**
     * Log-probabilities of float32 rows (a teacher's rows computed in double and rounded once, then read back in double)
     * against float64 ones: each finite element within {@link #F32_VALUE_REL} * max(1, |expected|), {@code -Infinity}
     * (zero mass) exactly where the reference has it.
     */
    public static void assertLogProbsClose(double[] expected, double[] actual, String what) {
        assertTrue(expected.length == actual.length, what + ": length " + actual.length + ", expected " + expected.length);
        for (int i = 0; i < expected.length; i++) {
            if (expected[i] == Double.NEGATIVE_INFINITY) {
                if (actual[i] != Double.NEGATIVE_INFINITY) {
                    fail(what + ", class " + i + ": log-probability " + actual[i] + ", expected -Infinity (zero mass)");
                }
                continue;
            }
            double tol = F32_VALUE_REL * Math.max(1, Math.abs(expected[i]));
            if (!(Math.abs(expected[i] - actual[i]) <= tol)) {
                fail(what + ", class " + i + ": log-probability " + actual[i] + " (p " + Math.exp(actual[i]) + "), expected "
                        + expected[i] + " (p " + Math.exp(expected[i]) + ") within " + tol);
            }
        }
    }

    /** Each element within {@link #ENGINE_F32} * max(1, |expected|). */
    public static void assertEngineClose(double[] expected, float[] actual, String what) {
        assertTrue(expected.length == actual.length, what + ": length " + actual.length + ", expected " + expected.length);
        for (int i = 0; i < expected.length; i++) {
            double tol = ENGINE_F32 * Math.max(1, Math.abs(expected[i]));
            if (!(Math.abs(expected[i] - actual[i]) <= tol)) {
                fail(what + ": element " + i + " expected " + expected[i] + " but was " + actual[i] + " (tol " + tol + ")");
            }
        }
    }

    /** Kernel (float32 accumulation) value against a float64 reference. */
    public static void assertKernelValueClose(double expected, double actual, double rel, String what) {
        double tol = Math.max(F32_VALUE_ABS, rel * Math.abs(expected));
        if (!(Math.abs(expected - actual) <= tol)) {
            fail(what + ": expected " + expected + " but was " + actual + " (|diff| " + Math.abs(expected - actual) + " > tol " + tol + ")");
        }
    }

    /** Kernel gradient: each element within {@code rel} x the largest |expected|, plus float32 rounding. */
    public static void assertKernelGradClose(double[] expected, float[] actual, double rel, String what) {
        assertTrue(expected.length == actual.length, what + ": length");
        double max = 0;
        for (double e : expected) {
            max = Math.max(max, Math.abs(e));
        }
        double tol = rel * max + F32_GRAD_ABS;
        for (int i = 0; i < expected.length; i++) {
            if (!(Math.abs(expected[i] - actual[i]) <= tol)) {
                fail(what + ": element " + i + " expected " + expected[i] + " but was " + actual[i] + " (tol " + tol + ", max |g| "
                        + max + ")");
            }
        }
    }

    public static void assertGradClose(double[] expected, float[] actual, String what) {
        assertTrue(expected.length == actual.length, what + ": length");
        double max = 0;
        for (double e : expected) {
            max = Math.max(max, Math.abs(e));
        }
        double tol = F32_GRAD_REL * max + F32_GRAD_ABS;
        for (int i = 0; i < expected.length; i++) {
            if (!(Math.abs(expected[i] - actual[i]) <= tol + F32_GRAD_REL * Math.abs(expected[i]))) {
                fail(what + ": element " + i + " expected " + expected[i] + " but was " + actual[i] + " (tol " + tol + ")");
            }
        }
    }
}
