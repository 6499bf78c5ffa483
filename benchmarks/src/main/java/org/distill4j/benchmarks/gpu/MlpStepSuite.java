package org.distill4j.benchmarks.gpu;

import org.distill4j.cuda.DeviceContext;
import org.distill4j.cuda.nn.CudaMlpEngine;
import org.distill4j.cuda.nn.MlpProgram;
import org.distill4j.cuda.nn.MlpSpec;
import org.distill4j.cuda.nn.MlpWeights;
import org.distill4j.data.Batch;
import org.distill4j.loss.SoftTargetKd;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The whole-distillation-step GPU benchmark (issue: GPU MLP engine), our side; {@code torch_mlp_step.py} is
 * PyTorch's, run in the same call into the same CSV. The demo's models: teacher 784-1200-1200-10, student
 * 784-400-400-10, ReLU hidden layers, identity outputs; KD with T = 4, alpha = 0.1; Adam lr 1e-3. For each
 * mode x batch, one fixed batch (features in [0, 1), labels in [0, 10)) is uploaded by a first full step,
 * then {@code --warmup} untimed and {@code --iters} timed steps run on it, each timed alone with CUDA events
 * (teacher forward + student forward, loss, backward, Adam): median / min / max ms, samples/s = batch /
 * median. As in the PyTorch script no host-to-device copy is timed there; the {@code full_step_ms} metric
 * is one {@link CudaMlpEngine#step} on its own (staging of the batch, the step, the loss's per-row parts
 * read back, the host waiting for them), median of {@code --iters}, wall clock; {@code loop_step_ms} is
 * the wall clock of {@code --iters} steps submitted one ahead as the Distiller submits them (batch i+1
 * staged and queued before batch i's result is read, two batches alternating), divided by {@code --iters}.
 * {@code device_bytes_measured} is the device memory a configuration takes, measured: the drop in the driver's free
 * memory ({@code cuMemGetInfo}) from before its engine (the pool emptied) to after its first step, cuBLASLt's workspace,
 * the pool's rounding and anything a launch or a graph allocates included; {@code device_bytes_computed} is the sum of
 * the engine's buffers ({@link CudaMlpEngine#deviceBytes}). A configuration that fails (out of memory, a launch error)
 * is one row, metric {@code samples_per_s}, value empty, status {@code failed: <reason>}; the others still run (on a
 * fresh context where the failure spoiled this one), the CSV is rewritten after each configuration, and the run then
 * ends with an exception (exit status 1) naming how many failed.
 * <ul>
 *   <li>{@code f32 fused}: fp32 GEMMs (no TF32) with cuBLASLt bias / ReLU / bias-gradient epilogues;</li>
 *   <li>{@code f32 kernels}: the same with the epilogues as our kernels;</li>
 *   <li>{@code bf16 kernels}: bf16 GEMM inputs, fp32 accumulation and master weights;</li>
 *   <li>{@code f32 fused+graph}, {@code bf16 kernels+graph}: the same steps replayed from a captured CUDA
 *       graph (one launch a step).</li>
 * </ul>
 * Appends to the CSV (header when new): {@link #HEADER}
 * <pre>java -cp ... org.distill4j.benchmarks.gpu.MlpStepSuite --out mlp-step.csv [--batch 128,1024,8192] [--iters 50] [--warmup 10]</pre>
 */
public final class MlpStepSuite {
    static final int[] TEACHER = {784, 1200, 1200, 10};
    static final int[] STUDENT = {784, 400, 400, 10};

    private MlpStepSuite() {
    }

    public static void main(String[] args) throws IOException {
        int[] batches = {128, 1024, 8192};
        int iters = 50;
        int warmup = 10;
        Path out = null;
        for (int i = 0; i < args.length; i += 2) {
            String v = SuiteArgs.value(args, i);
            switch (args[i]) {
                case "--batch" -> batches = SuiteArgs.ints("--batch", v);
                case "--iters" -> iters = SuiteArgs.count("--iters", v, 1);
                case "--warmup" -> warmup = SuiteArgs.count("--warmup", v, 0);
                case "--out" -> out = Path.of(v);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (out == null) {
            throw new IllegalArgumentException("--out FILE.csv is required");
        }
        for (int n : batches) {
            if ((long) n * TEACHER[0] > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("--batch takes at most " + (Integer.MAX_VALUE - 8) / TEACHER[0] + " rows (" + TEACHER[0]
                        + " features a row in one Java array), got " + n);
            }
        }
        String command = "java org.distill4j.benchmarks.gpu.MlpStepSuite " + String.join(" ", args);
        // the rows added to what the file holds (torch_mlp_step.py writes beside it), the whole rewritten atomically after
        // each configuration: a run stopped by a time limit keeps what it measured, and never a partial line
        boolean fresh = !Files.exists(out) || Files.size(out) == 0;
        StringBuilder before = new StringBuilder(fresh ? "" : Files.readString(out, StandardCharsets.UTF_8));
        if (fresh) {
            before.append(HEADER).append('\n');
        } else if (before.charAt(before.length() - 1) != '\n') {
            before.append('\n');
        }
        List<String> rows = new ArrayList<>();
        List<String> failed = new ArrayList<>();
        int configurations = 0;
        PrintStream log = System.out;
        SoftTargetKd kd = new SoftTargetKd(4, 0.1);
        DeviceContext ctx = DeviceContext.open(0);
        try {
            log.printf(Locale.ROOT, "%s, kernels from %s%n", ctx.describe(), ctx.kernelSource());
            log.printf("%-20s %6s %10s %10s %10s %13s %12s %12s %10s %21s%n", "mode", "batch", "ms_median", "ms_min", "ms_max", "samples/s",
                    "full_step_ms", "loop_step_ms", "dev_MiB", "loss first -> last");
            Object[][] modes = {{MlpProgram.Precision.F32, true, false}, {MlpProgram.Precision.F32, false, false},
                    {MlpProgram.Precision.BF16, false, false}, {MlpProgram.Precision.F32, true, true}, {MlpProgram.Precision.BF16, false, true}};
            for (Object[] m : modes) {
                MlpProgram.Precision precision = (MlpProgram.Precision) m[0];
                boolean fused = (Boolean) m[1];
                boolean graphs = (Boolean) m[2];
                for (int n : batches) {
                    configurations++;
                    String dtype = precision.name().toLowerCase(Locale.ROOT);
                    String mode = (fused ? "fused" : "kernels") + (graphs ? "+graph" : "");
                    String device = ctx.describe().replace(',', ' ');
                    Random rng = new Random(7);
                    MlpSpec t = spec(TEACHER);
                    MlpSpec s = spec(STUDENT);
                    String table;
                    try {
                        // the device memory one configuration takes: from before the engine (the pool emptied) to after its first step
                        ctx.trim();
                        long free0 = ctx.memInfo()[0];
                        try (CudaMlpEngine e = new CudaMlpEngine(ctx, s, init(s, rng), t, init(t, rng), n,
                                new CudaMlpEngine.Options(precision, fused, graphs), 7, (w, st) -> { })) {
                            if (fused && !e.options().fusedEpilogues()) {
                                mode = "kernels(fused refused)" + (graphs ? "+graph" : "");
                            }
                            Batch batch = batch(n, rng);
                            double first = e.step(batch, kd).value();
                            ctx.synchronize();
                            long measured = free0 - ctx.memInfo()[0];
                            double[] full = new double[iters];
                            for (int i = 0; i < iters; i++) {
                                long t0 = System.nanoTime();
                                e.step(batch, kd);
                                full[i] = (System.nanoTime() - t0) / 1e6;
                            }
                            Batch other = batch(n, rng);
                            long l0 = System.nanoTime();
                            org.distill4j.train.StepEngine.Pending pending = e.submit(batch, kd);
                            for (int i = 1; i < iters; i++) {
                                org.distill4j.train.StepEngine.Pending next = e.submit(i % 2 == 0 ? batch : other, kd);
                                pending.result();
                                pending = next;
                            }
                            pending.result();
                            double loop = (System.nanoTime() - l0) / 1e6 / iters;
                            for (int i = 0; i < warmup; i++) {
                                e.timeResidentStep(kd, n);
                            }
                            double[] ms = new double[iters];
                            for (int i = 0; i < iters; i++) {
                                ms[i] = e.timeResidentStep(kd, n);
                            }
                            double last = e.lastLoss(kd, n);
                            double[] step = Timings.medianMinMax(ms);
                            double fullMedian = Timings.medianMinMax(full)[0];
                            double median = step[0];
                            double sps = n / (median / 1e3);
                            String status = last < first ? "ok" : "ok (loss did not go down)";
                            String[][] metrics = {{"ms_median", fmt(median), "ms"}, {"ms_min", fmt(step[1]), "ms"}, {"ms_max", fmt(step[2]), "ms"},
                                    {"samples_per_s", fmt(sps), "samples/s"}, {"full_step_ms", fmt(fullMedian), "ms"},
                                    {"loop_step_ms", fmt(loop), "ms"},
                                    {"device_bytes_measured", Long.toString(measured), "bytes"},
                                    {"device_bytes_computed", Long.toString(e.deviceBytes()), "bytes"}};
                            for (String[] x : metrics) {
                                rows.add(String.join(",", "mlp-step", "distill4j", mode, dtype, Integer.toString(n), x[0], x[1], x[2], status, device,
                                        "-", KdKernelSuite.csvText(command)));
                            }
                            table = String.format(Locale.ROOT, "%-20s %6d %10.4f %10.4f %10.4f %13.1f %12.4f %12.4f %10.1f %10.5f -> %-8.5f",
                                    dtype + " " + mode, n, median, step[1], step[2], sps, fullMedian, loop, measured / 1048576.0, first, last);
                        }
                    } catch (RuntimeException ex) {
                        // recorded in its row; the other configurations still run
                        failed.add(dtype + " " + mode + " " + n + ": " + ex);
                        table = String.format(Locale.ROOT, "%-20s %6d failed: %s", dtype + " " + mode, n, ex);
                        rows.add(String.join(",", "mlp-step", "distill4j", mode, dtype, Integer.toString(n), "samples_per_s", "", "samples/s",
                                KdKernelSuite.csvText("failed: " + ex), device, "-", KdKernelSuite.csvText(command)));
                        ctx = usable(ctx, log);
                    }
                    write(out, before, rows);
                    log.println(table);
                }
            }
        } finally {
            ctx.close();
            // every row, also when something outside a configuration (opening a new context, say) ends the run
            write(out, before, rows);
        }
        if (!failed.isEmpty()) {
            throw new IllegalStateException(failed.size() + " of " + configurations + " configurations failed (their status in " + out
                    + " says why); first: " + failed.get(0));
        }
    }

    /** The CSV's columns, long format: one metric a row (README: benchmarks/README.md). */
    static final String HEADER = "suite,impl,mode,dtype,batch,metric,value,unit,status,device,torch,command";

    /** {@code before} (the file as the run found it, with the header) and {@code rows}, written atomically. */
    private static void write(Path out, StringBuilder before, List<String> rows) throws IOException {
        StringBuilder sb = new StringBuilder(before);
        rows.forEach(r -> sb.append(r).append('\n'));
        org.distill4j.examples.AtomicFiles.writeString(out, sb.toString());
    }

    /**
     * {@code ctx}, or after a failure that left it unusable (a kernel fault spoils a CUDA context until it is released), a
     * fresh context on the same device, so that the configurations after it are still measured. The pool is emptied.
     */
    private static DeviceContext usable(DeviceContext ctx, PrintStream log) {
        try {
            ctx.synchronize();
            ctx.trim();
            return ctx;
        } catch (RuntimeException e) {
            log.println("the CUDA context is unusable (" + e + "); opening a new one for the configurations after this one");
            ctx.close();
            return DeviceContext.open(0);
        }
    }

    static String fmt(double v) {
        return String.format(Locale.ROOT, "%.4f", v);
    }

    static MlpSpec spec(int[] sizes) {
        List<MlpSpec.Layer> layers = new ArrayList<>();
        for (int i = 0; i + 1 < sizes.length; i++) {
            boolean last = i + 2 == sizes.length;
            layers.add(new MlpSpec.Layer(sizes[i], sizes[i + 1], last ? MlpSpec.Activation.IDENTITY : MlpSpec.Activation.RELU, 0));
        }
        return new MlpSpec(sizes[0], layers, MlpSpec.Optimizer.adam(1e-3));
    }

    /** He normal for hidden layers, Xavier normal for the output, zero biases (as the PyTorch script). */
    static MlpWeights init(MlpSpec spec, Random rng) {
        int n = spec.layers().size();
        float[][] w = new float[n][];
        float[][] b = new float[n][];
        for (int li = 0; li < n; li++) {
            MlpSpec.Layer l = spec.layers().get(li);
            double sd = li + 1 < n ? Math.sqrt(2.0 / l.in()) : Math.sqrt(2.0 / (l.in() + l.out()));
            w[li] = new float[l.in() * l.out()];
            for (int i = 0; i < w[li].length; i++) {
                w[li][i] = (float) (rng.nextGaussian() * sd);
            }
            b[li] = new float[l.out()];
        }
        return new MlpWeights(w, b);
    }

    static Batch batch(int n, Random rng) {
        float[] x = new float[n * 784];
        for (int i = 0; i < x.length; i++) {
            x[i] = rng.nextFloat();
        }
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = rng.nextInt(10);
        }
        return new Batch(new int[n], x, 784, y);
    }
}
