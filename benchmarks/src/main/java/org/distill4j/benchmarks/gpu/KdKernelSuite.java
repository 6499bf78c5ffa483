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
 * (3 N V element bytes), whatever it reads twice. Inputs are made on the device; sets
 * smaller than 256 MB are rotated through several copies so that L2 does not hold them. PyTorch eager runs
 * beside it from {@code benchmarks/gpu/torch_kd.py}, in the same call, into the same CSV format.
 *
 * <pre>java -cp ... org.distill4j.benchmarks.gpu.KdKernelSuite --out results.csv [--rows 4096,16384]
 *     [--vocab 10,32000,128256,152064] [--dtype f32,bf16] [--iters 20] [--warmup 5] [--temperature 2]
 *     [--methods fused,fused-rowwise,...]</pre>
 * CSV columns: method,dtype,rows,vocab,ms_median,ms_min,ms_max,gb_per_s,fraction_of_copy,device_bytes.
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
                case "--dtype" -> dtypes = Arrays.stream(v.split(",")).map(d -> DType.valueOf(d.trim().toUpperCase(Locale.ROOT))).toList();
                case "--iters" -> iters = SuiteArgs.count("--iters", v, 1);
                case "--warmup" -> warmup = SuiteArgs.count("--warmup", v, 0);
                case "--temperature" -> temperature = Double.parseDouble(v);
                case "--methods" -> methods = methodNames(v);
                case "--out" -> out = Path.of(v);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (out == null) {
            throw new IllegalArgumentException("--out FILE.csv is required");
        }
        if (dtypes.contains(DType.F16)) {
            throw new IllegalArgumentException("the suite compares f32 and bf16 (the unfused baseline has no f16 kernels)");
        }
        List<String> lines = new ArrayList<>();
        lines.add("method,dtype,rows,vocab,ms_median,ms_min,ms_max,gb_per_s,fraction_of_copy,device_bytes");
        try (DeviceContext ctx = DeviceContext.open(0)) {
            PrintStream log = System.out;
            double copy = copyBandwidth(ctx, iters, warmup);
            log.printf(Locale.ROOT, "%s, kernels from %s; device-to-device copy %.1f GB/s%n", ctx.describe(), ctx.kernelSource(), copy);
            lines.add(String.format(Locale.ROOT, "copy,-,-,-,-,-,-,%.2f,1,%d", copy, 1L << 30));
            for (DType dt : dtypes) {
                for (int n : rows) {
                    for (int v : vocab) {
                        for (String method : methods) {
                            double[] ms = run(ctx, method, dt, n, v, temperature, iters, warmup);
                            long moved = 3L * n * v * dt.bytes();
                            double gbps = moved / (ms[0] * 1e-3) / 1e9;
                            long bytes = deviceBytes(method, dt, n, v);
                            String line = String.format(Locale.ROOT, "%s,%s,%d,%d,%.4f,%.4f,%.4f,%.2f,%.3f,%d", method,
                                    dt.name().toLowerCase(Locale.ROOT), n, v, ms[0], ms[1], ms[2], gbps, gbps / copy, bytes);
                            lines.add(line);
                            log.println(line);
                        }
                        ctx.trim();
                        // the rows so far, after each shape: a run stopped by a time limit keeps what it measured
                        org.distill4j.examples.AtomicFiles.writeString(out, String.join("\n", lines) + "\n");
                    }
                }
            }
        }
        org.distill4j.examples.AtomicFiles.writeString(out, String.join("\n", lines) + "\n");
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

    /** Bytes a method allocates on the device for one set of inputs. */
    static long deviceBytes(String method, DType dt, int n, int v) {
        long nv = (long) n * v;
        long base = 3 * nv * dt.bytes() + 12L * n;
        return method.equals("unfused") ? base + 2 * nv * dt.bytes() + 4 * nv + 4L * n : base;
    }

    /** {median, min, max} milliseconds of one forward + backward. */
    static double[] run(DeviceContext ctx, String method, DType dt, int n, int v, double temperature, int iters, int warmup) {
        try (PolicyReset policy = new PolicyReset(ctx)) {
            return timed(ctx, policy, method, dt, n, v, temperature, iters, warmup);
        }
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

    private static double[] timed(DeviceContext ctx, PolicyReset policy, String method, DType dt, int n, int v, double temperature,
                                  int iters, int warmup) {
        long nv = (long) n * v;
        long setBytes = 3 * nv * dt.bytes();
        int copies = (int) Math.max(1, Math.min(16, (256L << 20) / Math.max(1, setBytes)));
        List<DeviceBuffer> buffers = new ArrayList<>();
        try {
            DeviceBuffer[] s = new DeviceBuffer[copies];
            DeviceBuffer[] t = new DeviceBuffer[copies];
            DeviceBuffer[] g = new DeviceBuffer[copies];
            for (int c = 0; c < copies; c++) {
                s[c] = keep(buffers, ctx.alloc(nv * dt.bytes()));
                t[c] = keep(buffers, ctx.alloc(nv * dt.bytes()));
                g[c] = keep(buffers, ctx.alloc(nv * dt.bytes()));
                fill(ctx, dt, s[c], nv, 2L * c + 1, 4f);
                fill(ctx, dt, t[c], nv, 2L * c + 2, 4f);
            }
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
            long[] at = {s[0].address(), t[0].address(), g[0].address()};
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
            double[] times = new double[iters];
            for (int it = 0; it < warmup + iters; it++) {
                int c = it % copies;
                final DeviceBuffer lq = logq;
                final DeviceBuffer lp = logp;
                final DeviceBuffer klb = kl;
                final DeviceBuffer sb = sums;
                if (!method.equals("fused-launched")) {
                    spin(ctx);
                }
                float ms = ctx.time(() -> {
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
                });
                if (it >= warmup) {
                    times[it - warmup] = ms;
                }
            }
            return Timings.medianMinMax(times);
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
