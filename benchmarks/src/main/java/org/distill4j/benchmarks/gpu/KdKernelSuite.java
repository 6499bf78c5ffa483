package org.distill4j.benchmarks.gpu;

import org.distill4j.cuda.DType;
import org.distill4j.cuda.DeviceBuffer;
import org.distill4j.cuda.DeviceContext;
import org.distill4j.cuda.KdPlan;
import org.distill4j.cuda.KernelPlan;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The GPU suite for the fused KD kernel (issue: distill-cuda core). For every rows x vocabulary x dtype it
 * times, with CUDA events, the median of {@code --iters} runs after {@code --warmup}:
 * <ul>
 *   <li>{@code fused}: our one-launch forward + backward as the library launches it by default
 *       ({@link KdPlan#forDevice} with {@code -Ddistill.cuda.kd.prefetch=during-pass-2}): the tiled kernels
 *       ({@code kd_tile_*}, each input element read once) where rows allow 16-byte loads, on a grid of as many
 *       clusters as fit the device at once, each looping over rows and copying its next row into shared memory
 *       while it writes the current row's gradient ({@link KdPlan#pipelined}); else the two-pass row kernels;
 *       alpha = 0;</li>
 *   <li>{@code fused-rowwise}: a cluster per row, no prefetch ({@link KdPlan#choose}; the setting {@code none},
 *       the default before the c0fc9a2 H100 run);</li>
 *   <li>{@code fused-resident}: the row-wise plan's kernel on the grid of resident clusters, looping over rows
 *       without prefetching;</li>
 *   <li>{@code fused-1bps}: the tiled kernels sized for one block per multiprocessor (more of a row cached);</li>
 *   <li>{@code fused-prefetch-1bps}: both;</li>
 *   <li>{@code fused-c16} and {@code fused-prefetch-c16}: the tiled kernels on clusters of 16 blocks (a
 *       non-portable size), which cache the whole of an fp32 row of 152064 at two blocks per multiprocessor;</li>
 *   <li>{@code fused-double} and {@code fused-double-1bps}: that grid with two rows in each block's shared
 *       memory ({@link KdPlan#doubleBuffered}): a cluster issues its next row's loads as it starts a row, so
 *       they overlap the whole row; half the cache per row (at one block per multiprocessor, as much as
 *       {@code fused} caches);</li>
 *   <li>{@code fused-staged} and {@code fused-rowwise-staged}: {@code fused} and {@code fused-rowwise} with pass
 *       1's copies issued in four groups, the first group's elements summed while the rest are in flight
 *       ({@link KdPlan#withStaging}); every other tiled method issues them as one group, as the library does;</li>
 *   <li>{@code fused-launched}: {@code fused} timed from an idle device, so that the host's launch (argument
 *       marshalling, {@code cuLaunchKernel}) is in the time, as it is in a training step that waits for it;</li>
 *   <li>{@code tile-c<C>-<B>bps} and {@code tile-c<C>-<B>bps-<P>pct} (not timed by default; for sweeps): the
 *       tiled kernels on clusters of C blocks (1 to 8, or 16) with the shared memory sized for B blocks per multiprocessor, the
 *       whole cache used (a row partly cached where C blocks do not hold it) or at most P% of each block's chunk
 *       cached, on the grid of resident clusters with the next row copied during pass 2, as {@code fused} runs;
 *       with {@code -lb} or {@code -spread} (C > 1) the kernel's clusters placed under that scheduling policy
 *       ({@link DeviceContext#clusterPolicy}: load balancing, or spread, which Nsight Compute reported for the
 *       default launches on an H100), the grid sized for it; with {@code -staged} last, pass 1's copies in four groups, as {@code fused}
 *       runs the plans of one block per multiprocessor;</li>
 *   <li>{@code two-pass}: the row kernels ({@code kd_block_*} / {@code kd_warp_*}), which read a row twice;</li>
 *   <li>{@code unfused}: our multi-kernel version with [N, V] intermediates (log-softmax of student and
 *       teacher, element-wise gradient and KL terms, row sums), what a framework's separate ops do;</li>
 * </ul>
 * and once the device-to-device copy bandwidth (cuMemcpyDtoD of 1 GiB; bytes read + written). Each timed run
 * but {@code fused-launched} starts on a busy device: a one-thread kernel spins for about a millisecond
 * ({@code spin_cycles}) while the host records the start event and queues the work, so the events time the
 * device's work alone (until the 2026-11-22 H100 run at 130a5d3 they also held the host's launch, tens of
 * microseconds, a quarter of the time of a 0.4 ms shape). Achieved
 * bandwidth counts the bytes a method must move: the fused kernel reads s and t and writes the gradient
 * (3 N V element bytes), whatever it reads twice. Inputs are made on the device. So that each timed run reads them
 * from device memory and not from the L2 cache (whose size the driver reports at run time), the runs rotate through
 * sets of inputs (s, t and the gradient) that add up to at least {@link #rotationBytes} (256 MiB, or 4 x L2 where
 * that is more): at V = 10 that is hundreds of sets ({@code input_sets} in the CSV); a set that large alone is one.
 * {@code device_bytes_measured} is the device memory one step takes, measured: the drop in the driver's free memory
 * ({@code cuMemGetInfo}) from before the method's first set of buffers (the pool emptied first) to after one step on
 * them, so it counts the pool's and the driver's rounding and anything a launch allocates, and not the other sets;
 * {@code device_bytes_computed} is what the method asks for, from the sizes. A method that fails at a shape (out of
 * memory, a plan the device refuses, a launch error) is recorded in its row, {@code status} {@code failed: <reason>},
 * and the run goes on (on a fresh context where the failure spoiled this one); the CSV is written after each shape,
 * and the run then ends with an exception (exit status 1) naming how many rows failed. PyTorch eager runs beside it
 * from {@code benchmarks/gpu/torch_kd.py}, in the same call, into the same CSV format.
 *
 * <pre>java -cp ... org.distill4j.benchmarks.gpu.KdKernelSuite --out results.csv [--rows 4096,16384]
 *     [--vocab 10,32000,128256,152064] [--dtype f32,bf16] [--iters 20] [--warmup 5] [--temperature 2]
 *     [--methods fused,fused-rowwise,...]</pre>
 * CSV columns: {@link #HEADER}.
 */
public final class KdKernelSuite {
    private KdKernelSuite() {
    }

    public static void main(String[] args) throws IOException {
        int[] rows = {4096, 16384};
        int[] vocab = {10, 32000, 128256, 152064};
        List<DType> dtypes = List.of(DType.F32, DType.BF16);
        int iters = 20;
        int warmup = 5;
        double temperature = 2.0;
        List<String> methods = METHODS;
        Path out = null;
        for (int i = 0; i < args.length; i += 2) {
            String v = SuiteArgs.value(args, i);
            switch (args[i]) {
                case "--rows" -> rows = SuiteArgs.ints("--rows", v);
                case "--vocab" -> vocab = SuiteArgs.ints("--vocab", v);
                case "--dtype" -> dtypes = dtypes(v);
                case "--iters" -> iters = SuiteArgs.count("--iters", v, 1);
                case "--warmup" -> warmup = SuiteArgs.count("--warmup", v, 0);
                case "--temperature" -> temperature = SuiteArgs.positive("--temperature", v);
                case "--methods" -> methods = methodNames(v);
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
        DeviceContext ctx = DeviceContext.open(0);
        try {
            long l2 = l2CacheBytes();
            double copy = copyBandwidth(ctx, iters, warmup);
            log.printf(Locale.ROOT, "%s, kernels from %s; device-to-device copy %.1f GB/s; L2 cache %.1f MiB: inputs of a shape are rotated "
                            + "through sets of at least %d bytes in all, so that each run reads them from device memory%n", ctx.describe(),
                    ctx.kernelSource(), copy, l2 / 1048576.0, rotationBytes(l2));
            lines.add(String.format(Locale.ROOT, "copy,-,-,-,-,-,-,%.2f,1,-,%d,1,ok", copy, 2L << 30));
            for (DType dt : dtypes) {
                for (int n : rows) {
                    for (int v : vocab) {
                        for (String method : methods) {
                            timed++;
                            long computed = deviceBytes(method, dt, n, v);
                            String line;
                            try {
                                Measured m = run(ctx, method, dt, n, v, temperature, iters, warmup, l2);
                                long moved = 3L * n * v * dt.bytes();
                                double gbps = moved / (m.ms()[0] * 1e-3) / 1e9;
                                line = String.format(Locale.ROOT, "%s,%s,%d,%d,%.4f,%.4f,%.4f,%.2f,%.3f,%d,%d,%d,ok", method,
                                        dt.name().toLowerCase(Locale.ROOT), n, v, m.ms()[0], m.ms()[1], m.ms()[2], gbps, gbps / copy,
                                        m.deviceBytes(), computed, m.sets());
                            } catch (RuntimeException e) {
                                // recorded in its row; the other methods and shapes still run
                                String why = method + " " + dt + " " + n + " x " + v + ": " + e;
                                failed.add(why);
                                line = String.format(Locale.ROOT, "%s,%s,%d,%d,,,,,,,%d,,%s", method, dt.name().toLowerCase(Locale.ROOT), n, v,
                                        computed, csvText("failed: " + e));
                                log.println("failed: " + why);
                                ctx = usable(ctx, log);
                            }
                            lines.add(line);
                            log.println(line);
                        }
                        try {
                            ctx.trim();
                        } catch (RuntimeException e) {
                            log.println("trim failed: " + e);
                            ctx = usable(ctx, log);
                        }
                        // the rows so far, after each shape: a run stopped by a time limit keeps what it measured
                        org.distill4j.examples.AtomicFiles.writeString(out, String.join("\n", lines) + "\n");
                    }
                }
            }
        } finally {
            ctx.close();
            // every row, also when something outside a row (opening a new context, say) ends the run
            org.distill4j.examples.AtomicFiles.writeString(out, String.join("\n", lines) + "\n");
        }
        if (!failed.isEmpty()) {
            throw new IllegalStateException(failed.size() + " of " + timed + " rows failed (their status in " + out + " says why); first: "
                    + failed.get(0));
        }
    }

    /** The CSV's columns (README: benchmarks/README.md). */
    static final String HEADER = "method,dtype,rows,vocab,ms_median,ms_min,ms_max,gb_per_s,fraction_of_copy,device_bytes_measured,"
            + "device_bytes_computed,input_sets,status";

    /** {@code --dtype}: f32 and bf16 (the unfused baseline has no f16 kernels), or an error naming what was given. */
    static List<DType> dtypes(String v) {
        List<DType> out = new ArrayList<>();
        for (String d : v.split(",")) {
            switch (d.trim().toLowerCase(Locale.ROOT)) {
                case "f32" -> out.add(DType.F32);
                case "bf16" -> out.add(DType.BF16);
                default -> throw new IllegalArgumentException("--dtype takes f32 and bf16 (the unfused baseline has no f16 kernels), got '"
                        + d.trim() + "' in '" + v + "'");
            }
        }
        return out;
    }

    /** A CSV field of any text: in double quotes (doubled within), on one line. */
    static String csvText(String s) {
        return '"' + s.replace('\n', ' ').replace('\r', ' ').replace("\"", "\"\"") + '"';
    }

    /**
     * {@code ctx}, or after a failure that left it unusable (a kernel fault spoils a CUDA context until it is released), a
     * fresh context on the same device, so that the rows after it are still measured.
     */
    private static DeviceContext usable(DeviceContext ctx, PrintStream log) {
        try {
            ctx.synchronize();
            return ctx;
        } catch (RuntimeException e) {
            log.println("the CUDA context is unusable (" + e + "); opening a new one for the rows after this one");
            ctx.close();
            return DeviceContext.open(0);
        }
    }

    /** The methods timed by default (the class comment says what each is); {@code --methods} picks some. */
    static final List<String> METHODS = List.of("fused", "fused-launched", "fused-staged", "fused-rowwise", "fused-rowwise-staged", "fused-resident",
            "fused-1bps", "fused-prefetch-1bps", "fused-c16", "fused-prefetch-c16", "fused-double", "fused-double-1bps", "two-pass",
            "unfused");
    private static final String STAGED = "-staged";
    /** {@code tile-c<C>-<B>bps}: see the class comment. */
    private static final java.util.regex.Pattern TILE =
            java.util.regex.Pattern.compile("tile-c([1-8]|16)-([12])bps(?:-([1-9][0-9]?)pct)?(?:-(lb|spread))?(?:-staged)?");
    /** SM clocks the busy kernel spins before each timed run (about 1 ms at 1.98 GHz): longer than the host's launch. */
    static final long SPIN_CYCLES = 2_000_000L;

    /**
     * {@code --methods}: names from {@link #METHODS} or of the form {@code tile-c<C>-<B>bps[-<P>pct][-lb|-spread][-staged]}
     * (the class comment says what each part does).
     */
    static List<String> methodNames(String v) {
        List<String> names = SuiteArgs.names("--methods", v, METHODS, TILE,
                "tile-c<C>-<B>bps[-<P>pct][-lb|-spread][-staged] (C in 1..8, 16; B in 1, 2; P in 1..99; lb, spread: C > 1)");
        for (String name : names) {
            java.util.regex.Matcher m = TILE.matcher(name);
            if (m.matches() && m.group(4) != null && m.group(1).equals("1")) {
                throw new IllegalArgumentException("--methods: " + name + " sets a cluster scheduling policy for single blocks; -lb and "
                        + "-spread take clusters of 2 or more");
            }
        }
        return names;
    }

    /** Bytes a method asks for on the device for one set of inputs, computed from the sizes (device_bytes_computed). */
    static long deviceBytes(String method, DType dt, int n, int v) {
        long nv = (long) n * v;
        long base = 3 * nv * dt.bytes() + 12L * n;
        return method.equals("unfused") ? base + 2 * nv * dt.bytes() + 4 * nv + 4L * n : base;
    }

    /**
     * What one method measured: {median, min, max} milliseconds of one forward + backward, the device memory one step
     * took (the drop in the driver's free memory from before its buffers to after its first step, the pool trimmed
     * first) and the input sets its timed runs rotated through.
     */
    record Measured(double[] ms, long deviceBytes, int sets) {
    }

    /** Times one method at one shape ({@link Measured}). */
    static Measured run(DeviceContext ctx, String method, DType dt, int n, int v, double temperature, int iters, int warmup, long l2) {
        try (PolicyReset policy = new PolicyReset(ctx)) {
            return timed(ctx, policy, method, dt, n, v, temperature, iters, warmup, l2);
        }
    }

    /** Sets of inputs are laid out at this alignment (a cache line): a set's L2 footprint is its aligned size. */
    static final long SET_ALIGN = 128;

    /** Bytes the input sets of one shape add up to at least: 256 MiB, or four times the L2 cache where that is more. */
    static long rotationBytes(long l2) {
        return Math.max(256L << 20, 4 * l2);
    }

    /**
     * How many sets of inputs (s, t and the gradient, each {@link #SET_ALIGN}-aligned: {@code footprint} bytes a set) the
     * timed runs rotate through so that each run reads its set from device memory, not from the L2 cache of {@code l2}
     * bytes: together at least {@link #rotationBytes}, so that at least half of that (twice the L2) is touched between
     * two uses of a set; one set where a set alone is that large.
     */
    static int inputSets(long footprint, long l2) {
        long total = rotationBytes(l2);
        if (footprint >= total) {
            return 1;
        }
        return (int) ((total + footprint - 1) / footprint);
    }

    /** The device's L2 cache in bytes (device 0, as the suite opens), from the driver. */
    static long l2CacheBytes() {
        int[] dev = new int[1];
        int rc = org.bytedeco.cuda.global.cudart.cuDeviceGet(dev, 0);
        int[] v = new int[1];
        if (rc == 0) {
            rc = org.bytedeco.cuda.global.cudart.cuDeviceGetAttribute(v, org.bytedeco.cuda.global.cudart.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE,
                    dev[0]);
        }
        if (rc != 0) {
            throw new IllegalStateException("cuDeviceGetAttribute(L2 cache size) of device 0 failed with CUresult " + rc);
        }
        return v[0];
    }

    /**
     * A kernel's cluster scheduling policy for one method (tile-...-lb / -spread), the default given back on close:
     * a failure to do so is added to the method's own failure, if any, rather than hiding it.
     */
    private static final class PolicyReset implements AutoCloseable {
        private final DeviceContext ctx;
        private KernelPlan plan;

        PolicyReset(DeviceContext ctx) {
            this.ctx = ctx;
        }

        void set(KernelPlan kernel, DeviceContext.ClusterPolicy policy) {
            ctx.clusterPolicy(kernel, policy);
            plan = kernel;
        }

        @Override
        public void close() {
            if (plan != null) {
                ctx.clusterPolicy(plan, DeviceContext.ClusterPolicy.DEFAULT);
            }
        }
    }

    private static Measured timed(DeviceContext ctx, PolicyReset policy, String method, DType dt, int n, int v, double temperature,
                                  int iters, int warmup, long l2) {
        long nv = (long) n * v;
        long bytes = nv * dt.bytes();
        long stride = (bytes + SET_ALIGN - 1) / SET_ALIGN * SET_ALIGN;
        int sets = inputSets(3 * stride, l2);
        List<DeviceBuffer> buffers = new ArrayList<>();
        try {
            // set 0 on its own, for the memory one step takes; the others (sets > 1) after that, in one buffer per input
            ctx.trim();
            long free0 = ctx.memInfo()[0];
            Object[] s = new Object[sets];
            Object[] t = new Object[sets];
            Object[] g = new Object[sets];
            DeviceBuffer s0 = keep(buffers, ctx.alloc(bytes));
            DeviceBuffer t0 = keep(buffers, ctx.alloc(bytes));
            DeviceBuffer g0 = keep(buffers, ctx.alloc(bytes));
            s[0] = s0;
            t[0] = t0;
            g[0] = g0;
            fill(ctx, dt, s0, nv, 1, 4f);
            fill(ctx, dt, t0, nv, 2, 4f);
            DeviceBuffer rowOut = keep(buffers, ctx.alloc(12L * n));
            DeviceBuffer logq = null;
            DeviceBuffer logp = null;
            DeviceBuffer kl = null;
            DeviceBuffer sums = null;
            if (method.equals("unfused")) {
                logq = keep(buffers, ctx.alloc(nv * dt.bytes()));
                logp = keep(buffers, ctx.alloc(nv * dt.bytes()));
                kl = keep(buffers, ctx.alloc(4 * nv));
                sums = keep(buffers, ctx.alloc(4L * n));
            }
            String base = method.endsWith(STAGED) ? method.substring(0, method.length() - STAGED.length()) : method;
            long[] at = {s0.address(), t0.address(), g0.address()};
            KdPlan planned = switch (base) {
                // what the library launches under -Ddistill.cuda.kd.prefetch=during-pass-2 (default), none, double-buffer
                case "fused", "fused-launched" -> KdPlan.forDevice(ctx, KdPlan.Prefetch.DURING_PASS_2, n, v, dt, at);
                case "fused-rowwise" -> KdPlan.forDevice(ctx, KdPlan.Prefetch.NONE, n, v, dt, at);
                case "fused-double" -> KdPlan.forDevice(ctx, KdPlan.Prefetch.DOUBLE_BUFFER, n, v, dt, at);
                case "fused-resident" -> {
                    KdPlan p = KdPlan.choose(ctx.limits(), n, v, dt, at);
                    yield p.tiled() ? KdPlan.tile(ctx.limits(), n, v, dt, p.kernel().cluster(), p.cached(),
                            ctx.residentClusters(p.kernel())) : p;
                }
                case "fused-prefetch-1bps", "fused-c16", "fused-prefetch-c16" -> {
                    int bps = base.endsWith("1bps") ? 1 : KdPlan.TILE_BLOCKS_PER_SM;
                    KdPlan p = KdPlan.choose(ctx.limits(), bps, n, v, dt, at);
                    if (p.tiled() && base.endsWith("c16") && ctx.limits().clusters()) {
                        p = KdPlan.tile(ctx.limits(), n, v, dt, 16, KdPlan.capacity(ctx.limits(), bps, dt), KdPlan.MAX_CLUSTERS);
                    }
                    yield p.tiled() && base.contains("prefetch")
                            ? KdPlan.pipelined(ctx.limits(), p, n, v, dt, ctx.residentClusters(p.kernel()), 1) : p;
                }
                case "fused-double-1bps" -> {
                    KdPlan p = KdPlan.doubleBuffered(ctx.limits(), 1, n, v, dt, at);
                    yield p.tiled() ? KdPlan.pipelined(ctx.limits(), p, n, v, dt, ctx.residentClusters(p.kernel()), 1) : p;
                }
                case "fused-1bps" -> KdPlan.choose(ctx.limits(), 1, n, v, dt, at);
                case "two-pass" -> KdPlan.twoPass(n, v, dt);
                case "unfused" -> null;
                default -> {
                    java.util.regex.Matcher m = TILE.matcher(base);
                    if (!m.matches()) {
                        throw new IllegalArgumentException("unknown method " + method);
                    }
                    int cluster = Integer.parseInt(m.group(1));
                    KdPlan p = KdPlan.choose(ctx.limits(), n, v, dt, at);
                    if (!p.tiled() || (cluster > 1 && !ctx.limits().clusters())) {
                        yield p;
                    }
                    int capacity = KdPlan.capacity(ctx.limits(), Integer.parseInt(m.group(2)), dt);
                    if (m.group(3) != null) {
                        int chunk = KdPlan.tile(ctx.limits(), n, v, dt, cluster, 0, 1).chunk();
                        capacity = (int) Math.min(capacity, (long) chunk * Integer.parseInt(m.group(3)) / 100);
                    }
                    p = KdPlan.tile(ctx.limits(), n, v, dt, cluster, capacity, KdPlan.MAX_CLUSTERS);
                    if (m.group(4) != null) {
                        // set before the grid is sized: the clusters that fit at once may depend on it (reset by run)
                        policy.set(p.kernel(), m.group(4).equals("lb") ? DeviceContext.ClusterPolicy.LOAD_BALANCING
                                : DeviceContext.ClusterPolicy.SPREAD);
                    }
                    yield KdPlan.pipelined(ctx.limits(), p, n, v, dt, ctx.residentClusters(p.kernel()), 1);
                }
            };
            KdPlan plan = planned != null && method.endsWith(STAGED) ? planned.withStaging(true) : planned;
            if (plan != null && (n == 4096 || v == 10 || method.startsWith("tile-"))) {
                System.out.println("  " + method + " " + dt + " V " + v + ": " + plan);
            }
            float invT = (float) (1 / temperature);
            float kdWeight = (float) temperature; // alpha = 0
            float scale = 1f / n;
            final DeviceBuffer lq = logq;
            final DeviceBuffer lp = logp;
            final DeviceBuffer klb = kl;
            final DeviceBuffer sb = sums;
            java.util.function.IntConsumer step = c -> {
                if (plan != null) {
                    plan.launch(ctx, s[c], t[c], null, null, g[c], rowOut, n, v, invT, kdWeight, 0f, (float) (temperature * temperature),
                            scale, 0, 0);
                } else {
                    String sfx = dt == DType.BF16 ? "bf16" : "f32";
                    KernelPlan rowsPlan = new KernelPlan("unfused_log_softmax_" + sfx, 512, Math.min(65_535, n));
                    ctx.launch(rowsPlan, s[c], lq, n, v, invT);
                    ctx.launch(rowsPlan, t[c], lp, n, v, invT);
                    ctx.launch(new KernelPlan("unfused_kd_grad_" + sfx, 256, 65_535), lq, lp, g[c], klb, nv, kdWeight * scale);
                    ctx.launch(new KernelPlan("unfused_row_sums_f32", 512, Math.min(65_535, n)), klb, sb, n, v,
                            (float) (temperature * temperature));
                }
            };
            step.accept(0); // untimed: what one step holds on the device, whatever it allocates on its own included
            ctx.synchronize();
            long measured = free0 - ctx.memInfo()[0];
            if (sets > 1) {
                long more = stride * (sets - 1);
                DeviceBuffer sRest = keep(buffers, ctx.alloc(more));
                DeviceBuffer tRest = keep(buffers, ctx.alloc(more));
                DeviceBuffer gRest = keep(buffers, ctx.alloc(more));
                fill(ctx, dt, sRest, more / dt.bytes(), 3, 4f);
                fill(ctx, dt, tRest, more / dt.bytes(), 4, 4f);
                for (int c = 1; c < sets; c++) {
                    s[c] = sRest.at((c - 1) * stride, bytes);
                    t[c] = tRest.at((c - 1) * stride, bytes);
                    g[c] = gRest.at((c - 1) * stride, bytes);
                }
            }
            double[] times = new double[iters];
            for (int it = 0; it < warmup + iters; it++) {
                int c = it % sets;
                if (!method.equals("fused-launched")) {
                    spin(ctx);
                }
                float ms = ctx.time(() -> step.accept(c));
                if (it >= warmup) {
                    times[it - warmup] = ms;
                }
            }
            return new Measured(Timings.medianMinMax(times), measured, sets);
        } finally {
            buffers.forEach(DeviceBuffer::close);
        }
    }

    /** Keeps the device busy for {@link #SPIN_CYCLES} while the host queues what it times next. */
    static void spin(DeviceContext ctx) {
        ctx.launch(new KernelPlan("spin_cycles", 1, 1), SPIN_CYCLES);
    }

    private static DeviceBuffer keep(List<DeviceBuffer> all, DeviceBuffer b) {
        all.add(b);
        return b;
    }

    static void fill(DeviceContext ctx, DType dt, DeviceBuffer b, long n, long seed, float scale) {
        ctx.launch(new KernelPlan("fill_uniform_" + dt.suffix(), 256, 65_535), b, n, seed, scale);
    }

    /** Device-to-device copy bandwidth in GB/s (bytes read + written), median over runs of a 1 GiB copy. */
    static double copyBandwidth(DeviceContext ctx, int iters, int warmup) {
        long bytes = 1L << 30;
        try (DeviceBuffer a = ctx.alloc(bytes); DeviceBuffer b = ctx.alloc(bytes)) {
            double[] t = new double[iters];
            for (int it = 0; it < warmup + iters; it++) {
                spin(ctx);
                float ms = ctx.time(() -> ctx.copy(b, a, bytes));
                if (it >= warmup) {
                    t[it - warmup] = ms;
                }
            }
            return copyGbps(bytes, t);
        }
    }

    /**
     * GB/s of a copy of {@code bytes} (each read once and written once) over the median of its runs' milliseconds,
     * the same median as the methods' (the denominator of their fraction of copy).
     */
    static double copyGbps(long bytes, double[] ms) {
        return 2.0 * bytes / (Timings.medianMinMax(ms)[0] * 1e-3) / 1e9;
    }
}
