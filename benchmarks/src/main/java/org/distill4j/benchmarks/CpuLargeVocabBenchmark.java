package org.distill4j.benchmarks;

import org.distill4j.backend.CpuBackend;
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
 * Logit losses at language-model vocabularies (fp32 rows of 128k-256k logits) through the CPU backend, where a slice
 * of {@link CpuBackend#CHUNK_ELEMENTS} logits holds one or two rows, against the loss's own {@code compute} on the
 * calling thread ({@code threads = compute}). Inputs as {@link LogitLossBenchmark}'s (registry defaults: kd at T = 4,
 * alpha = 0.1; logit-std around that kd). One operation = one batch. Run with {@code -prof gc} for the bytes
 * allocated per batch ({@code gc.alloc.rate.norm}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 10, time = 1)
@Fork(value = 1, jvmArgsAppend = "-Xmx8g")
public class CpuLargeVocabBenchmark {
    /** Rows x classes. */
    @Param({"8x128256", "32x256000"})
    public String shape;

    @Param({"kd", "logit-std"})
    public String loss;

    @Param({"compute", "1", "2"})
    public String threads;

    private LossCall call;

    @Setup(Level.Trial)
    public void setup() {
        String[] rv = shape.split("x");
        call = new LossCall(loss, Integer.parseInt(rv[0]), Integer.parseInt(rv[1]), threads);
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
