package org.distill4j.benchmarks;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.TeacherValues;

import java.util.Random;

/** The inputs of the logit-loss benchmarks, the same for each: seeded Gaussian logits and labels. */
final class LossInputs {
    private LossInputs() {
    }

    /**
     * {@code rows x vocab} student and teacher logits (N(0, 4), seed 1234) with labels; for a loss that reads a
     * top-k teacher, the teacher's top 64 classes (all of them when V &lt; 64) as distinct ids with log-probabilities
     * instead of dense teacher logits.
     */
    static LogitBatch batch(int rows, int vocab, LogitLoss loss) {
        Random rng = new Random(1234);
        float[] s = new float[rows * vocab];
        float[] t = new float[rows * vocab];
        for (int i = 0; i < s.length; i++) {
            s[i] = (float) (2 * rng.nextGaussian());
            t[i] = (float) (2 * rng.nextGaussian());
        }
        int[] y = new int[rows];
        for (int r = 0; r < rows; r++) {
            y[r] = rng.nextInt(vocab);
        }
        if (!loss.needsTopK()) {
            return LogitBatch.of(rows, vocab, s, t, TeacherValues.LOGITS, y);
        }
        int k = Math.min(64, vocab);
        int[] ids = new int[rows * k];
        float[] lps = new float[rows * k];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < k; j++) {
                ids[r * k + j] = (int) ((j * 7919L + r) % vocab); // distinct: 7919 is prime and > k
                lps[r * k + j] = (float) (-Math.log(k) - 0.01 * j);
            }
        }
        return LogitBatch.ofTopK(rows, vocab, s, ids, lps, k, y);
    }
}
