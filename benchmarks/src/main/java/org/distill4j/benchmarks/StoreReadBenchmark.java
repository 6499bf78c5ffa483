package org.distill4j.benchmarks;

import org.distill4j.store.SoftTargetStore;
import org.distill4j.store.StoreHeader;
import org.distill4j.store.StoreWriter;
import org.distill4j.store.ValueCodec;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Reading soft-target store rows from the page cache: random batches of 128 sample indices, as a
 * training loop reads them, decoded to floats (dense f16 rows of V = 32000, or top-k rows with k in
 * {8, 32, 64} of f16 values and 2-byte ids). Score: rows per second; multiply by the row size on disk
 * ({@code k * 4} bytes for top-k, {@code 2 V} for dense) for bytes per second. Checksums are verified
 * on first touch of each chunk, during warm-up.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class StoreReadBenchmark {
    static final int BATCH = 128;

    /** 0 for dense rows, else k. */
    @Param({"0", "8", "32", "64"})
    public int topK;

    private Path dir;
    private SoftTargetStore store;
    private int[][] batches;
    private int next;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        int vocab = 32000;
        int rows = topK == 0 ? 4096 : 65536;
        dir = Files.createTempDirectory("d4j-store-bench");
        Path p = dir.resolve("s.d4j");
        StoreHeader h = topK == 0
                ? new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F16, StoreHeader.ValueKind.LOGITS, vocab, 0, rows, 256, 1.0, "{}")
                : new StoreHeader(StoreHeader.Layout.TOP_K, ValueCodec.F16, StoreHeader.ValueKind.LOG_PROBS, vocab, topK, rows, 1024, 1.0, "{}");
        Random rng = new Random(1);
        try (StoreWriter w = StoreWriter.open(p, h)) {
            int step = 256;
            for (int from = 0; from < rows; from += step) {
                if (topK == 0) {
                    float[] v = new float[step * vocab];
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) rng.nextGaussian();
                    }
                    w.writeDense(v, step);
                } else {
                    int[] ids = new int[step * topK];
                    float[] lps = new float[step * topK];
                    for (int r = 0; r < step; r++) {
                        for (int j = 0; j < topK; j++) {
                            ids[r * topK + j] = (j * 7919 + r) % vocab;
                            lps[r * topK + j] = (float) (-Math.log(topK) - 0.1 * j); // a row's probabilities sum to at most 1
                        }
                    }
                    w.writeTopK(ids, lps, step);
                }
            }
            w.finish();
        }
        store = SoftTargetStore.open(p);
        batches = new int[64][BATCH];
        for (int[] b : batches) {
            for (int i = 0; i < BATCH; i++) {
                b[i] = rng.nextInt(rows);
            }
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        store.close();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public Object readBatch() {
        int[] idx = batches[next];
        next = (next + 1) & 63;
        return topK == 0 ? store.dense(idx) : store.topK(idx);
    }
}
