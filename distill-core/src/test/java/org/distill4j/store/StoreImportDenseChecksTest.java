package org.distill4j.store;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The check of dense import rows (StoreImport.checkDense) at the edges of each bound: the largest logit each dtype holds,
 * the log-probability bound and the f16 floor, the probability range, the sum tolerance; what it stores (probabilities as
 * their logs, against a float64 reference), and the source row each error names.
 */
class StoreImportDenseChecksTest {
    private static final Path FILE = Path.of("z.npy");

    private static float[] check(float[] v, int cols, StoreImport.Values values, ValueCodec codec) {
        float[] copy = v.clone();
        StoreImport.checkDense(FILE, 40, copy, cols, values, codec);
        return copy;
    }

    private static String refused(float[] v, int cols, StoreImport.Values values, ValueCodec codec) {
        return assertThrows(IllegalArgumentException.class, () -> StoreImport.checkDense(FILE, 40, v.clone(), cols, values, codec))
                .getMessage();
    }

    /** A logit is taken while the dtype holds it (rounded), and refused from where it rounds to infinity, naming the fix. */
    @Test
    void logitsUpToTheLargestOfEachDtype() {
        StoreImport.Values z = StoreImport.Values.LOGITS;
        float[] row = {0.5f, -2f, 65504f, -65504f, 65519.996f, Float.NEGATIVE_INFINITY};
        assertArrayEquals(row, check(row, 3, z, ValueCodec.F16), 0f, "logits are stored as they are");
        for (float bad : new float[]{65520f, -65520f}) {
            assertEquals("z.npy: row 41, class 1 is " + bad + ", beyond the range of f16; store f32 or bf16",
                    refused(new float[]{0, 1, 2, 3, bad, 5}, 3, z, ValueCodec.F16));
        }
        float bfMax = ValueCodec.fromBfloat16((short) 0x7f7f); // 3.3895e38, the largest bf16
        check(new float[]{bfMax, -bfMax, 3.38e38f}, 3, z, ValueCodec.BF16);
        assertEquals("z.npy: row 40, class 2 is " + Float.MAX_VALUE + ", beyond the range of bf16; store f32",
                refused(new float[]{0, 1, Float.MAX_VALUE}, 3, z, ValueCodec.BF16));
        assertEquals("z.npy: row 40, class 0 is " + -Float.MAX_VALUE + ", beyond the range of bf16; store f32",
                refused(new float[]{-Float.MAX_VALUE, 1, 2}, 3, z, ValueCodec.BF16));
        check(new float[]{Float.MAX_VALUE, -Float.MAX_VALUE, 70000f}, 3, z, ValueCodec.F32);
        for (float bad : new float[]{Float.POSITIVE_INFINITY, Float.NaN}) {
            for (ValueCodec c : ValueCodec.values()) {
                assertEquals("z.npy: row 41, class 0 is " + bad + "; logits must be finite, or -inf for a class of zero probability",
                        refused(new float[]{1, 2, 3, 4, bad, 6, 7, 8}, 4, z, c));
            }
        }
        assertEquals("z.npy: row 41: every logit is -inf; a row needs at least one class of non-zero probability",
                refused(new float[]{1, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY}, 2, z, ValueCodec.F32));
    }

    /**
     * Log-probabilities up to 1e-4 (rounding), -inf for zero probability; below -65504 (which f16 cannot hold) they are
     * -inf in f16 and bf16 (zero in every precision) and kept as they are in f32.
     */
    @Test
    void logProbabilitiesTheirBoundAndTheF16Floor() {
        StoreImport.Values lp = StoreImport.Values.LOG_PROBS;
        float max = StoreWriter.MAX_LOG_PROB;
        float[] row = {max, Float.NEGATIVE_INFINITY, -65504f, -65505f, -1e30f};
        float[] f16 = check(row, 5, lp, ValueCodec.F16);
        assertArrayEquals(new float[]{max, Float.NEGATIVE_INFINITY, -65504f, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY}, f16, 0f);
        assertArrayEquals(f16, check(row, 5, lp, ValueCodec.BF16), 0f);
        assertArrayEquals(row, check(row, 5, lp, ValueCodec.F32), 0f);
        float over = Math.nextUp(max);
        assertEquals("z.npy: row 41, class 1 is " + over + "; log-probabilities must be <= 0 or -inf (are these logits? import them as "
                + "logits)", refused(new float[]{0, -50, -50, over}, 2, lp, ValueCodec.F32));
        assertEquals("z.npy: row 40, class 0 is NaN; log-probabilities must be <= 0 or -inf (are these logits? import them as logits)",
                refused(new float[]{Float.NaN, 0}, 2, lp, ValueCodec.F32));
    }

    /** Probabilities in [0, 1 + 1e-4] are stored as their logs (0 as -inf), against a float64 reference on random rows. */
    @Test
    void probabilitiesAreStoredAsTheirLogs() {
        StoreImport.Values p = StoreImport.Values.PROBABILITIES;
        Random rng = new Random(77);
        int cols = 13;
        int rows = 9;
        float[] v = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            double[] e = new double[cols];
            double sum = 0;
            for (int c = 0; c < cols; c++) {
                e[c] = c % 5 == r % 5 ? 0 : Math.exp(rng.nextGaussian() * 4);
                sum += e[c];
            }
            for (int c = 0; c < cols; c++) {
                v[r * cols + c] = (float) (e[c] / sum);
            }
        }
        float[] stored = check(v, cols, p, ValueCodec.F32);
        for (int i = 0; i < v.length; i++) {
            assertEquals((float) Math.log((double) v[i]), stored[i], 0f, "value " + i);
        }
        float top = 1 + StoreWriter.MAX_LOG_PROB;
        assertArrayEquals(new float[]{(float) Math.log(top), Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY},
                check(new float[]{top, 0f, -0f}, 3, p, ValueCodec.F32), 0f);
        for (float bad : new float[]{Math.nextUp(top), -Float.MIN_VALUE, Float.NaN, Float.POSITIVE_INFINITY}) {
            assertEquals("z.npy: row 41, class 2 is " + bad + "; probabilities must be in [0, 1]",
                    refused(new float[]{0.5f, 0.5f, 0f, 0.5f, 0.5f, bad}, 3, p, ValueCodec.F32));
        }
    }

    /** A dense row of (log-)probabilities sums to 1 within 0.01 either way; beyond, the sum and the row are named. */
    @Test
    void aRowMustSumToOneWithinTheTolerance() {
        for (StoreImport.Values values : new StoreImport.Values[]{StoreImport.Values.PROBABILITIES, StoreImport.Values.LOG_PROBS}) {
            boolean logs = values == StoreImport.Values.LOG_PROBS;
            for (double sum : new double[]{0.9901, 1.0099}) {
                check(row(sum, logs), 2, values, ValueCodec.F32);
            }
            String kind = logs ? "log-probabilities" : "probabilities";
            for (double sum : new double[]{0.9899, 1.0101, 0.5}) {
                float[] good = row(1, logs);
                float[] bad = row(sum, logs);
                float[] two = {good[0], good[1], bad[0], bad[1]};
                assertEquals(String.format(java.util.Locale.ROOT, "z.npy: row 41: the probabilities sum to %.4f, expected 1 (within 0.01): these "
                        + "are not %s of one distribution (logits? import them as logits)", sum, kind), refused(two, 2, values, ValueCodec.F32));
            }
        }
        check(new float[]{5, 7, 9}, 3, StoreImport.Values.LOGITS, ValueCodec.F32); // logits need not sum to anything
    }

    /** Two classes whose probabilities sum to {@code sum}: 0.25 and sum - 0.25, as probabilities or their logs. */
    private static float[] row(double sum, boolean logs) {
        double a = 0.25;
        double b = sum - a;
        return logs ? new float[]{(float) Math.log(a), (float) Math.log(b)} : new float[]{(float) a, (float) b};
    }
}
