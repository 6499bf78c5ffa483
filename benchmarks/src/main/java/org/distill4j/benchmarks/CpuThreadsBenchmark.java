package org.distill4j.benchmarks;

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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * A logit loss through the CPU backend on 1, 2, ... threads, against the loss's own {@code compute} on the
 * calling thread ({@code threads = compute}), on the inputs of {@link LogitLossBenchmark}: N rows of V logits,
 * the registry's default settings. One operation = one batch. {@code compute} and {@code 1} differ by the cost of
 * cutting the batch into slices (since 627059d the slices read their rows in place; before, each copied its rows
 * and its gradient).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class CpuThreadsBenchmark {
    @Param({"4096"})
    public int rows;

    @Param({"32000"})
    public int vocab;

    @Param({"kd", "gjsd"})
    public String loss;

    @Param({"compute", "1", "2"})
    public String threads;

    private LossCall call;

    @Setup(Level.Trial)
    public void setup() {
        call = new LossCall(loss, rows, vocab, threads);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        call.close();
    }

    @Benchmark
    public double valueAndGradient() {
        return call.valueAndGradient();
    }
}
