package org.distill4j.benchmarks;

import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.Losses;
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

import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Every registered logit loss on the CPU, value and gradient in one call, over N rows of V logits
 * with the registry's default settings (kd: T = 4, alpha = 0.1; dkd: T = 4; the others T = 1;
 * logit-std wraps kd; topk-kd reads the teacher's top 64 classes, or all of them when V &lt; 64).
 * One operation = one batch.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class LogitLossBenchmark {
    @Param({"4096"})
    public int rows;

    @Param({"10", "1000", "32000"})
    public int vocab;

    @Param({"kd", "ce", "reverse-kl", "gjsd", "skew-kl", "skew-rkl", "akl", "abkd", "tvd", "mse", "dkd", "dist", "logit-std", "topk-kd"})
    public String loss;

    private LogitLoss impl;
    private LogitBatch batch;
    private float[] grad;

    @Setup(Level.Trial)
    public void setup() {
        impl = Losses.create(loss, Map.of());
        batch = LossInputs.batch(rows, vocab, impl);
        grad = new float[rows * vocab];
    }

    @Benchmark
    public double valueAndGradient() {
        return impl.compute(batch, grad, 1f).value();
    }
}
