package org.distill4j.benchmarks.gpu;

import org.distill4j.backend.CpuBackend;
import org.distill4j.cuda.CudaBackend;
import org.distill4j.cuda.DeviceContext;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;

import org.distill4j.examples.AtomicFiles;

import java.io.IOException;
import java.io.PrintStream;
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
 * A method that fails at a shape (out of memory, a launch error) is recorded in its row, {@code status}
 * {@code failed: <reason>} with the times empty, and the run goes on (on a fresh context where the failure spoiled this
 * one); a shape larger than a Java array is a row {@code skipped: <reason>}. The CSV is written after each row, and a
 * run with failed rows then ends with an exception (exit status 1) naming how many.
 *
 * <pre>java -cp ... org.distill4j.benchmarks.gpu.HostPathSuite --out host-path.csv [--rows 4096] [--vocab 32000,128256]
 *     [--iters 10] [--warmup 2] [--methods cuda-backend,cpu-backend]</pre>
 * CSV columns: {@link #HEADER}.
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
        lines.add(HEADER);
        List<String> failed = new ArrayList<>();
        int timed = 0;
        PrintStream log = System.out;
        SoftTargetKd loss = new SoftTargetKd(2, 0.1);
        CudaBackend gpu = null;
        try (CpuBackend cpu = new CpuBackend()) {
            gpu = backend(DeviceContext.open(0));
            log.println(gpu.device() + "; CPU backend on " + cpu.threads() + " threads (" + cpu.device() + ")");
            for (int n : rows) {
                for (int v : vocab) {
                    long nv = (long) n * v;
                    if (nv > Integer.MAX_VALUE - 8) {
                        for (String method : methods) {
                            String line = String.format(Locale.ROOT, "%s,%d,%d,,,,,,%s", method, n, v,
                                    KdKernelSuite.csvText("skipped: " + n + " x " + v + " values are more than a Java array holds"));
                            lines.add(line);
                            log.println(line);
                        }
                        AtomicFiles.writeString(out, String.join("\n", lines) + "\n");
                        continue;
                    }
                    LogitBatch batch = batch(n, v);
                    float[] grad = new float[(int) nv];
                    for (String method : methods) {
                        timed++;
                        boolean device = method.equals("cuda-backend");
                        int threads = device ? 1 : cpu.threads();
                        String line;
                        try {
                            double[] ms = new double[iters];
                            for (int i = -warmup; i < iters; i++) {
                                long t0 = System.nanoTime();
                                if (device) {
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
                            String gbps = device ? String.format(Locale.ROOT, "%.2f", 3.0 * nv * 4 / (median * 1e-3) / 1e9) : "";
                            line = String.format(Locale.ROOT, "%s,%d,%d,%d,%.3f,%.3f,%.3f,%s,ok", method, n, v, threads, median, stats[1],
                                    stats[2], gbps);
                        } catch (RuntimeException e) {
                            // recorded in its row; the other methods and shapes still run
                            String why = method + " " + n + " x " + v + ": " + e;
                            failed.add(why);
                            line = String.format(Locale.ROOT, "%s,%d,%d,%d,,,,,%s", method, n, v, threads, KdKernelSuite.csvText("failed: " + e));
                            log.println("failed: " + why);
                            if (device) {
                                gpu = usable(gpu, log);
                            }
                        }
                        lines.add(line);
                        log.println(line);
                        // the rows so far, after each: a run stopped by a time limit keeps what it measured
                        AtomicFiles.writeString(out, String.join("\n", lines) + "\n");
                    }
                }
            }
        } finally {
            if (gpu != null) {
                gpu.close();
            }
            // every row, also when something outside a row (opening a new context, say) ends the run
            AtomicFiles.writeString(out, String.join("\n", lines) + "\n");
        }
        if (!failed.isEmpty()) {
            throw new IllegalStateException(failed.size() + " of " + timed + " rows failed (their status in " + out + " says why); first: "
                    + failed.get(0));
        }
    }

    /** The CSV's columns (README: benchmarks/README.md). */
    static final String HEADER = "method,rows,vocab,threads,ms_median,ms_min,ms_max,host_gb_per_s,status";

    /** A backend on {@code ctx}; the context is closed when the backend cannot be made, so that it never leaks. */
    private static CudaBackend backend(DeviceContext ctx) {
        try {
            return new CudaBackend(ctx);
        } catch (RuntimeException | Error e) {
            ctx.close();
            throw e;
        }
    }

    /**
     * {@code gpu}, or after a failure that left its context unusable (a kernel fault spoils a CUDA context until it is
     * released), a backend on a fresh context of the same device, so that the rows after it are still measured.
     */
    private static CudaBackend usable(CudaBackend gpu, PrintStream log) {
        try {
            gpu.context().synchronize();
            return gpu;
        } catch (RuntimeException e) {
            log.println("the CUDA context is unusable (" + e + "); opening a new one for the rows after this one");
            gpu.close();
            return backend(DeviceContext.open(0));
        }
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
