package org.distill4j.benchmarks;

import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The CPU soft-target KD loss (value and gradient in one call, T = 4, alpha = 0.1) and plain
 * cross-entropy over N rows of V logits. One operation = one batch; divide N by the time for rows/s.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class KdLossBenchmark {
    @Param({"4096"})
    public int rows;

    @Param({"10", "1000", "32000"})
    public int vocab;

    private LogitBatch batch;
    private float[] grad;
    private final SoftTargetKd kd = new SoftTargetKd(4.0, 0.1);
    private final CrossEntropy ce = new CrossEntropy();

    @Setup(Level.Trial)
    public void setup() {
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
        batch = LogitBatch.of(rows, vocab, s, t, TeacherValues.LOGITS, y);
        grad = new float[rows * vocab];
    }

    /** Fused KD + CE: value and gradient. */
    @Benchmark
    public double kd() {
        return kd.compute(batch, grad, 1f).value();
    }

    /** Cross-entropy alone, for scale. */
    @Benchmark
    public double ce() {
        return ce.compute(batch, grad, 1f).value();
    }
}
