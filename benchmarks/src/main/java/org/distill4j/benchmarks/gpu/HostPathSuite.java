package org.distill4j.benchmarks.gpu;

import org.distill4j.backend.CpuBackend;
import org.distill4j.cuda.CudaBackend;
import org.distill4j.cuda.DeviceContext;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The loss step as a DL4J student on the CPU meets it: {@code kd} (T 2, alpha 0.1) over a host batch of float[] rows,
 * value and gradient back in float[], through {@link CudaBackend} (rows staged through pinned memory in chunks, the
 * fused kernel, the gradient back) and through {@link CpuBackend} on every core of the machine. Timed on the host
 * (the call is synchronous), median of {@code --iters} calls after {@code --warmup}. GB/s counts the 3 N V fp32 bytes
 * that cross between host and device (student and teacher up, gradient down); it is left empty for the CPU rows.
 *
 * <pre>java -cp ... org.distill4j.benchmarks.gpu.HostPathSuite --out host-path.csv [--rows 4096] [--vocab 32000,128256]
 *     [--iters 10] [--warmup 2] [--methods cuda-backend,cpu-backend]</pre>
 * CSV columns: method,rows,vocab,threads,ms_median,ms_min,ms_max,host_gb_per_s.
 */
public final class HostPathSuite {
    private HostPathSuite() {
    }

    static final List<String> METHODS = List.of("cuda-backend", "cpu-backend");

    public static void main(String[] args) throws IOException {
        int[] rows = {4096};
        int[] vocab = {32000, 128256};
        int iters = 10;
        int warmup = 2;
        List<String> methods = METHODS;
        Path out = null;
        for (int i = 0; i < args.length; i += 2) {
            String v = SuiteArgs.value(args, i);
            switch (args[i]) {
                case "--rows" -> rows = SuiteArgs.ints("--rows", v);
                case "--vocab" -> vocab = SuiteArgs.ints("--vocab", v);
                case "--iters" -> iters = SuiteArgs.count("--iters", v, 1);
                case "--warmup" -> warmup = SuiteArgs.count("--warmup", v, 0);
                case "--methods" -> methods = SuiteArgs.names("--methods", v, METHODS);
                case "--out" -> out = Path.of(v);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (out == null) {
            throw new IllegalArgumentException("--out FILE.csv is required");
        }
        List<String> lines = new ArrayList<>();
        lines.add("method,rows,vocab,threads,ms_median,ms_min,ms_max,host_gb_per_s");
        SoftTargetKd loss = new SoftTargetKd(2, 0.1);
        try (CudaBackend gpu = new CudaBackend(DeviceContext.open(0)); CpuBackend cpu = new CpuBackend()) {
            System.out.println(gpu.device() + "; CPU backend on " + cpu.threads() + " threads (" + cpu.device() + ")");
            for (int n : rows) {
                for (int v : vocab) {
                    long nv = (long) n * v;
                    if (nv > Integer.MAX_VALUE - 8) {
                        System.out.println("skipped " + n + " x " + v + ": more than a Java array holds");
                        continue;
                    }
                    LogitBatch batch = batch(n, v);
                    float[] grad = new float[(int) nv];
                    for (String method : methods) {
                        double[] ms = new double[iters];
                        for (int i = -warmup; i < iters; i++) {
                            long t0 = System.nanoTime();
                            if (method.equals("cuda-backend")) {
                                gpu.logitLoss(loss, batch, grad, 1f);
                            } else {
                                cpu.logitLoss(loss, batch, grad, 1f);
                            }
                            double t = (System.nanoTime() - t0) / 1e6;
                            if (i >= 0) {
                                ms[i] = t;
                            }
                        }
                        double[] stats = Timings.medianMinMax(ms);
                        double median = stats[0];
                        boolean device = method.equals("cuda-backend");
                        String gbps = device ? String.format(Locale.ROOT, "%.2f", 3.0 * nv * 4 / (median * 1e-3) / 1e9) : "";
                        int threads = device ? 1 : cpu.threads();
                        String line = String.format(Locale.ROOT, "%s,%d,%d,%d,%.3f,%.3f,%.3f,%s", method, n, v, threads, median, stats[1],
                                stats[2], gbps);
                        lines.add(line);
                        System.out.println(line);
                        org.distill4j.examples.AtomicFiles.writeString(out, String.join("\n", lines) + "\n");
                    }
                }
            }
        }
        org.distill4j.examples.AtomicFiles.writeString(out, String.join("\n", lines) + "\n");
    }

    /** Student and teacher logits N(0, 4) with labels: a million random values, tiled (the timings do not depend on them). */
    private static LogitBatch batch(int n, int v) {
        Random rng = new Random(7);
        float[] tile = new float[1 << 20];
        for (int i = 0; i < tile.length; i++) {
            tile[i] = (float) (2 * rng.nextGaussian());
        }
        int len = n * v;
        float[] s = new float[len];
        float[] t = new float[len];
        for (int i = 0; i < len; i++) {
            s[i] = tile[i & (tile.length - 1)];
            t[i] = tile[(i * 7 + 12345) & (tile.length - 1)]; // another walk through the tile: the teacher is not the student
        }
        int[] y = new int[n];
        for (int r = 0; r < n; r++) {
            y[r] = rng.nextInt(v);
        }
        return LogitBatch.of(n, v, s, t, TeacherValues.LOGITS, y);
    }
}
