package org.distill4j.cuda;

import org.bytedeco.cuda.cudart.CUctx_st;
import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUlaunchConfig;
import org.bytedeco.cuda.cudart.CUmod_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One GPU as Distill4J uses it: the device's primary context, a stream, the loaded kernels and a memory
 * pool. AutoCloseable; closing frees the pool's device memory, the pinned buffers of {@link #pinned}, and the
 * {@link DeviceStager}s (after their fill in progress and their copies in flight), graphs ({@link #capture}), events
 * ({@link #event}) and cuBLASLt handles with their plans ({@link CublasLt#create}) still open, each once, and twice is
 * harmless; every driver call's status goes through {@link Cu#check}. What it closed then
 * refuses to be used with an IllegalStateException, and closing it afterwards is harmless. A close from inside a
 * {@link DeviceStager}'s filler that would have to wait for a fill, that filler's own or one on another thread, is
 * refused (see {@link #close}).
 * <p>
 * Calls are serialized: those on the context, and those on what it made (a {@link DeviceEvent}'s record and wait, a
 * {@link DeviceGraph}'s launch, a {@link CublasLt}'s plans and runs, a {@link DeviceStager}'s device calls, and every
 * close), take this context's lock, one
 * lock, so no order of taking locks can deadlock among them. A call that waits for the device ({@link #synchronize},
 * {@link #download}, {@link #time}, {@link DeviceEvent#await}) holds the lock while it waits: another thread's calls on
 * the context wait for it. That wait cannot deadlock: the work it waits for was queued before it, and no queued work
 * needs the host (nothing queues a host function), so the device finishes it with the lock held.
 */
public final class DeviceContext implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DeviceContext.class);

    private final int device;
    private final String name;
    private final int major;
    private final int minor;
    private final DeviceLimits limits;
    private final CUctx_st context;
    private final CUstream_st stream;
    private final CUmod_st module;
    private final String kernelSource;
    private final Map<String, CUfunc_st> functions = new HashMap<>();
    /** Per function: its static shared memory, the dynamic shared memory a launch may ask for, and its cluster width. */
    private final Map<String, FunctionSettings> functionSettings = new HashMap<>();
    /** The plan of the last kernel queued, for tests that check which plan a caller chose. */
    private KernelPlan lastLaunch;
    /** {@link #residentClusters} by function, block, cluster, dynamic shared memory and cluster policy. */
    private final Map<String, Integer> resident = new HashMap<>();
    /** Per function: the cluster scheduling policy it was given ({@link #clusterPolicy}); absent: the default. */
    private final Map<String, ClusterPolicy> policies = new HashMap<>();
    private final Map<Long, ArrayDeque<Long>> free = new HashMap<>();
    private final List<Long> all = new ArrayList<>();
    /** The open pinned buffers made by {@link #pinned}: {@link #close} frees them, as the driver would. */
    private final Set<PinnedBuffer> pinned = new HashSet<>();
    /** The open graphs made by {@link #capture}: {@link #close} frees them. */
    private final Set<DeviceGraph> graphs = new HashSet<>();
    /** The open events made by {@link #event}: {@link #close} frees them. */
    private final Set<DeviceEvent> events = new HashSet<>();
    /** The open cuBLASLt handles made on this context ({@link CublasLt#create}): {@link #close} closes them and their plans. */
    private final Set<CublasLt> cublasLts = new LinkedHashSet<>();
    /** The open stagers on this context ({@link DeviceStager}): {@link #close} closes them before it frees memory. */
    private final Set<DeviceStager> stagers = new LinkedHashSet<>();
    /** While {@link #capture} runs: the cuBLASLt handles whose GEMMs it captured (else null; guarded by this lock). */
    private Set<CublasLt> capturedGemms;
    private final AtomicBoolean closed = new AtomicBoolean();

    private DeviceContext(int device, String name, int major, int minor, DeviceLimits limits, CUctx_st context, CUstream_st stream,
                          CUmod_st module, String kernelSource) {
        this.device = device;
        this.name = name;
        this.major = major;
        this.minor = minor;
        this.limits = limits;
        this.context = context;
        this.stream = stream;
        this.module = module;
        this.kernelSource = kernelSource;
    }

    /**
     * Opens device {@code ordinal}: initializes the driver, retains the primary context, creates a stream and
     * loads the kernels (the fatbin, or the sources compiled by NVRTC for this device when no fatbin fits).
     *
     * @throws CudaException naming the failed call
     * @throws IllegalStateException where the CUDA libraries cannot be loaded (no NVIDIA driver, say), saying
     *                               which, as the probe does
     */
    public static DeviceContext open(int ordinal) {
        try {
            Cu.check(cudart.cuInit(0), "cuInit");
        } catch (LinkageError e) {
            throw new IllegalStateException("DeviceContext.open(" + ordinal + "): " + CudaProbe.unloadable(e), e);
        }
        int[] dev = new int[1];
        Cu.check(cudart.cuDeviceGet(dev, ordinal), "cuDeviceGet(" + ordinal + ")");
        byte[] nameBytes = new byte[256];
        Cu.check(cudart.cuDeviceGetName(nameBytes, nameBytes.length, dev[0]), "cuDeviceGetName");
        String name = new String(nameBytes, java.nio.charset.StandardCharsets.UTF_8).split("\0", 2)[0];
        int[] v = new int[1];
        Cu.check(cudart.cuDeviceGetAttribute(v, cudart.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev[0]), "cuDeviceGetAttribute(major)");
        int major = v[0];
        Cu.check(cudart.cuDeviceGetAttribute(v, cudart.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev[0]), "cuDeviceGetAttribute(minor)");
        int minor = v[0];
        DeviceLimits limits = new DeviceLimits(attribute(dev[0], cudart.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "multiprocessors"),
                attribute(dev[0], cudart.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, "shared memory per block (opt-in)"),
                attribute(dev[0], cudart.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, "shared memory per multiprocessor"),
                attribute(dev[0], cudart.CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH, "cluster launch") != 0);
        CUctx_st ctx = new CUctx_st();
        Cu.check(cudart.cuDevicePrimaryCtxRetain(ctx, dev[0]), "cuDevicePrimaryCtxRetain(" + dev[0] + ")");
        CUstream_st stream = null;
        CUmod_st module = null;
        try {
            Cu.check(cudart.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
            stream = new CUstream_st();
            Cu.check(cudart.cuStreamCreate(stream, cudart.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
            module = new CUmod_st();
            String source = loadKernels(module, major, minor);
            DeviceContext dc = new DeviceContext(dev[0], name, major, minor, limits, ctx, stream, module, source);
            log.info("CUDA device {}: {} (sm_{}{}), kernels from {}", dev[0], name, major, minor, source);
            return dc;
        } catch (RuntimeException | Error e) {
            if (stream != null && !stream.isNull()) {
                cudart.cuStreamDestroy(stream);
            }
            cudart.cuDevicePrimaryCtxRelease(dev[0]);
            throw e;
        }
    }

    private static int attribute(int dev, int attribute, String what) {
        int[] v = new int[1];
        Cu.check(cudart.cuDeviceGetAttribute(v, attribute, dev), "cuDeviceGetAttribute(" + what + ")");
        return v[0];
    }

    /** Loads the fatbin, or NVRTC-compiled sources when the fatbin has nothing for this device; returns which. */
    private static String loadKernels(CUmod_st module, int major, int minor) {
        byte[] fatbin = KernelImage.fatbin();
        if (fatbin != null) {
            try (BytePointer image = new BytePointer(fatbin)) {
                int rc = cudart.cuModuleLoadData(module, image);
                if (rc == 0) {
                    return "the fatbin (nvcc " + KernelImage.info().getProperty("nvcc", "?") + ")";
                }
                if (rc != Cu.NO_BINARY_FOR_GPU && rc != 218 && rc != 222) {
                    throw Cu.failure(rc, "cuModuleLoadData(distill_losses.fatbin, " + fatbin.length + " bytes)");
                }
                log.info("the fatbin has no code this driver can run on sm_{}{} ({}); compiling the kernels with NVRTC", major, minor,
                        Cu.errorName(rc));
            }
        }
        byte[] cubin = Nvrtc.compile(KernelImage.source(), KernelImage.SOURCE, KernelImage.headers(), major, minor);
        try (BytePointer image = new BytePointer(cubin)) {
            Cu.check(cudart.cuModuleLoadData(module, image), "cuModuleLoadData(NVRTC cubin for sm_" + major + minor + ")");
        }
        return "NVRTC (sm_" + major + minor + ")";
    }

    /** The device, e.g. {@code NVIDIA H100 80GB HBM3 (sm_90)}. */
    public String describe() {
        return name + " (sm_" + major + minor + ")";
    }

    /** The device's multiprocessors, shared memory and cluster support, read when it was opened. */
    public DeviceLimits limits() {
        return limits;
    }

    /** Where the kernels came from: the fatbin or NVRTC. */
    public String kernelSource() {
        return kernelSource;
    }

    /** This context's (compute) stream: kernels, {@link #copy} and {@link #time} queue on it. */
    CUstream_st stream() {
        return stream;
    }

    /**
     * Makes the primary context current for freeing what was made in it; returns whether this context is still open.
     * After {@link #close} the primary context lives on while anything else retains it (another {@code DeviceContext},
     * say); where nothing does, it is gone and the frees that follow fail harmlessly (their statuses are not checked).
     */
    synchronized boolean currentForFreeing() {
        cudart.cuCtxSetCurrent(context);
        return !closed.get();
    }

    /** Whether {@link #close} ran (what it freed, the pool's buffers among them, must not be used). */
    boolean isClosed() {
        return closed.get();
    }

    void current() {
        if (closed.get()) {
            throw new IllegalStateException("the CUDA context of " + name + " is closed");
        }
        Cu.check(cudart.cuCtxSetCurrent(context), "cuCtxSetCurrent");
    }

    /** A buffer of at least {@code bytes} from the pool (power-of-two buckets from 256 bytes). */
    public synchronized DeviceBuffer alloc(long bytes) {
        current();
        long cap = bucket(bytes);
        ArrayDeque<Long> q = free.get(cap);
        if (q != null && !q.isEmpty()) {
            return new DeviceBuffer(this, q.pop(), cap);
        }
        long[] p = new long[1];
        int rc = cudart.cuMemAlloc(p, cap);
        if (rc == Cu.OUT_OF_MEMORY) {
            trim(); // give cached buffers back and try once more
            rc = cudart.cuMemAlloc(p, cap);
        }
        if (rc == Cu.OUT_OF_MEMORY) {
            long[] info = memInfo();
            throw new CudaException(rc, "cuMemAlloc(" + cap + " bytes)", Cu.errorName(rc), "asked " + cap + " bytes, "
                    + info[0] + " of " + info[1] + " bytes free on " + name);
        }
        Cu.check(rc, "cuMemAlloc(" + cap + " bytes)");
        all.add(p[0]);
        return new DeviceBuffer(this, p[0], cap);
    }

    /**
     * The pool's bucket for {@code bytes}: below 1 MiB the next power of two (at least 256); from 1 MiB the
     * next multiple of 2 MiB, so a 10 GB tensor does not take 16 GB.
     */
    static long bucket(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("a device buffer needs a positive size, got " + bytes);
        }
        if (bytes > Long.MAX_VALUE / LARGE_STEP * LARGE_STEP) {
            throw new IllegalArgumentException("a device buffer of " + bytes + " bytes is beyond any device");
        }
        if (bytes >= LARGE) {
            return (bytes + LARGE_STEP - 1) / LARGE_STEP * LARGE_STEP;
        }
        long cap = Long.highestOneBit(Math.max(256, bytes));
        return cap == Math.max(256, bytes) ? cap : cap << 1;
    }

    private static final long LARGE = 1L << 20;
    private static final long LARGE_STEP = 2L << 20;

    synchronized void release(long address, long capacity) {
        if (closed.get()) {
            return; // freed with the context
        }
        free.computeIfAbsent(capacity, k -> new ArrayDeque<>()).push(address);
    }

    /**
     * Frees the pool's cached (released) buffers, in this context (made current on the calling thread). A free that
     * fails raises its error and leaves that buffer and those not yet freed in the pool.
     */
    public synchronized void trim() {
        if (closed.get()) {
            return; // the context freed everything
        }
        current();
        for (Map.Entry<Long, ArrayDeque<Long>> e : free.entrySet()) {
            ArrayDeque<Long> q = e.getValue();
            while (!q.isEmpty()) {
                Long a = q.peek();
                Cu.check(cudart.cuMemFree(a), "cuMemFree(cached " + e.getKey() + "-byte buffer)");
                q.pop();
                all.remove(a);
            }
        }
    }

    /** {free, total} device memory in bytes. */
    public synchronized long[] memInfo() {
        current();
        try (SizeTPointer f = new SizeTPointer(1); SizeTPointer t = new SizeTPointer(1)) {
            Cu.check(cudart.cuMemGetInfo(f, t), "cuMemGetInfo");
            return new long[] {f.get(), t.get()};
        }
    }

    /**
     * Copies {@code data} to the start of {@code dst}, queued on this context's stream (so it lands before the
     * kernels queued after it, and after those queued before). The host array is staged before this returns,
     * so it may be reused at once.
     */
    public synchronized void upload(DeviceBuffer dst, byte[] data) {
        if (data.length > dst.capacity()) {
            throw new IllegalArgumentException(data.length + " bytes do not fit a " + dst.capacity() + "-byte device buffer");
        }
        upload(new DevicePtr(dst.address()), data);
    }

    /**
     * Copies {@code data} to {@code dst} (the caller keeps it inside its buffer), queued on this context's
     * stream. A synchronous cuMemcpyHtoD would run on the legacy default stream, which this context's
     * non-blocking stream does not wait for; from pageable memory it may even return before the data lands.
     * cuMemcpyHtoDAsync from pageable memory stages the bytes before it returns, so {@code data} is free after.
     */
    public synchronized void upload(DevicePtr dst, byte[] data) {
        current();
        try (BytePointer p = new BytePointer(data)) {
            Cu.check(cudart.cuMemcpyHtoDAsync(dst.address(), p, data.length, stream), "cuMemcpyHtoDAsync(" + data.length + " bytes)");
        }
    }

    /** Copies {@code into.length} bytes from {@code src} (synchronous: waits for this context's stream first). */
    public synchronized void download(DevicePtr src, byte[] into) {
        current();
        Cu.check(cudart.cuStreamSynchronize(stream), "cuStreamSynchronize");
        try (BytePointer p = new BytePointer(into.length)) {
            Cu.check(cudart.cuMemcpyDtoH(p, src.address(), into.length), "cuMemcpyDtoH(" + into.length + " bytes)");
            p.get(into);
        }
    }

    /** Copies {@code into.length} bytes from the start of {@code src} (synchronous: waits for this context's stream). */
    public synchronized void download(DeviceBuffer src, byte[] into) {
        download(src.at(0, into.length), into);
    }

    /**
     * Launches a kernel on this context's stream. Arguments: a {@link DeviceBuffer}, {@link DevicePtr} or
     * null (a device pointer), Integer (int), Long (long long), Float.
     */
    public synchronized void launch(KernelPlan plan, Object... args) {
        current();
        CUfunc_st f = function(plan);
        lastLaunch = plan;
        List<Pointer> values = new ArrayList<>(args.length);
        try (PointerPointer<Pointer> params = new PointerPointer<>(args.length)) {
            for (int i = 0; i < args.length; i++) {
                Object a = args[i];
                Pointer v;
                if (a == null) {
                    v = new LongPointer(1).put(0L);
                } else if (a instanceof DeviceBuffer b) {
                    v = new LongPointer(1).put(b.address());
                } else if (a instanceof DevicePtr d) {
                    v = new LongPointer(1).put(d.address());
                } else if (a instanceof Integer n) {
                    v = new IntPointer(1).put(n);
                } else if (a instanceof Long n) {
                    v = new LongPointer(1).put(n);
                } else if (a instanceof Float x) {
                    v = new FloatPointer(1).put(x);
                } else {
                    throw new IllegalArgumentException("kernel argument " + i + " of " + plan.function() + " is a "
                            + a.getClass().getSimpleName() + "; expected a DeviceBuffer, DevicePtr, null, Integer, Long or Float");
                }
                values.add(v);
                params.put(i, v);
            }
            Cu.check(cudart.cuLaunchKernel(f, plan.grid(), 1, 1, plan.block(), 1, 1, plan.sharedBytes(), stream, params,
                            (PointerPointer<?>) null),
                    "cuLaunchKernel(" + plan.function() + ", grid " + plan.grid() + ", block " + plan.block() + ", " + plan.sharedBytes()
                            + " bytes of dynamic shared memory, cluster " + plan.cluster() + ")");
        } finally {
            values.forEach(Pointer::close);
        }
    }

    /** The plan of the last kernel {@link #launch} queued on this context (null before the first). */
    synchronized KernelPlan lastLaunch() {
        return lastLaunch;
    }

    /**
     * How many of the plan's clusters (blocks, for a cluster of 1) the device runs at once with the plan's block
     * and dynamic shared memory: the grid of a kernel whose clusters loop over rows, sized so that none waits
     * for a second wave. Clusters are placed within a GPC, so this can be less than
     * {@code multiprocessors * blocksPerSm / cluster} (cuOccupancyMaxActiveClusters). Asked once per function,
     * block, cluster, shared memory size and cluster policy ({@link #clusterPolicy}).
     */
    public synchronized int residentClusters(KernelPlan plan) {
        String key = plan.function() + "/" + plan.block() + "/" + plan.cluster() + "/" + plan.sharedBytes() + "/"
                + policies.getOrDefault(plan.function(), ClusterPolicy.DEFAULT);
        Integer known = resident.get(key);
        if (known != null) {
            return known;
        }
        current();
        CUfunc_st f = function(plan);
        int[] n = new int[1];
        if (plan.cluster() == 1) {
            Cu.check(cudart.cuOccupancyMaxActiveBlocksPerMultiprocessor(n, f, plan.block(), plan.sharedBytes()),
                    "cuOccupancyMaxActiveBlocksPerMultiprocessor(" + plan.function() + ", block " + plan.block() + ", "
                            + plan.sharedBytes() + " bytes of dynamic shared memory)");
            n[0] *= limits.multiprocessors();
        } else {
            try (CUlaunchConfig config = new CUlaunchConfig()) {
                config.gridDimX(plan.cluster()).gridDimY(1).gridDimZ(1);
                config.blockDimX(plan.block()).blockDimY(1).blockDimZ(1);
                config.sharedMemBytes(plan.sharedBytes()).hStream(stream).attrs(null).numAttrs(0);
                Cu.check(cudart.cuOccupancyMaxActiveClusters(n, f, config), "cuOccupancyMaxActiveClusters(" + plan.function()
                        + ", cluster " + plan.cluster() + ", block " + plan.block() + ", " + plan.sharedBytes()
                        + " bytes of dynamic shared memory)");
            }
        }
        if (n[0] < 1) {
            throw new IllegalStateException(plan.function() + ": not one " + (plan.cluster() == 1 ? "block" : "cluster of " + plan.cluster())
                    + " of " + plan.block() + " threads with " + plan.sharedBytes() + " bytes of dynamic shared memory fits on "
                    + describe());
        }
        resident.put(key, n[0]);
        return n[0];
    }

    /**
     * How the device places the blocks of a cluster on its multiprocessors (the driver's cluster scheduling policy
     * preference, a per-function attribute).
     */
    public enum ClusterPolicy {
        /** The driver's choice (Nsight Compute reported the H100 runs' launches as {@link #SPREAD}). */
        DEFAULT(cudart.CU_CLUSTER_SCHEDULING_POLICY_DEFAULT),
        /** A cluster's blocks spread over the multiprocessors. */
        SPREAD(cudart.CU_CLUSTER_SCHEDULING_POLICY_SPREAD),
        /** The hardware may load-balance a cluster's blocks over the multiprocessors. */
        LOAD_BALANCING(cudart.CU_CLUSTER_SCHEDULING_POLICY_LOAD_BALANCING);

        private final int value;

        ClusterPolicy(int value) {
            this.value = value;
        }
    }

    /**
     * Sets how the device places the clusters of {@code plan}'s function (for every later launch of it, and in
     * {@link #residentClusters}); for benchmarks that compare the policies, the library itself leaves the default.
     *
     * @throws IllegalArgumentException for a plan without a cluster, or a device without clusters
     */
    public synchronized void clusterPolicy(KernelPlan plan, ClusterPolicy policy) {
        if (plan.cluster() < 2 || !limits.clusters()) {
            throw new IllegalArgumentException(plan.function() + ": a cluster scheduling policy applies to launches of clusters, and this "
                    + "plan has a cluster of " + plan.cluster() + (limits.clusters() ? "" : " (" + describe() + " has no clusters)"));
        }
        current();
        CUfunc_st f = function(plan);
        Cu.check(cudart.cuFuncSetAttribute(f, cudart.CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE, policy.value),
                "cuFuncSetAttribute(" + plan.function() + ", cluster scheduling policy " + policy + ")");
        policies.put(plan.function(), policy);
    }

    /** The plan's function, loaded once and configured for the plan ({@link #configure}). */
    private CUfunc_st function(KernelPlan plan) {
        CUfunc_st f = functions.computeIfAbsent(plan.function(), n -> {
            CUfunc_st fn = new CUfunc_st();
            Cu.check(cudart.cuModuleGetFunction(fn, module, n), "cuModuleGetFunction(" + n + ")");
            return fn;
        });
        configure(f, plan);
        return f;
    }

    /**
     * What {@link #configure} knows of a function: its static shared memory ({@code __shared__} variables), the dynamic
     * shared memory a launch of it may ask for (the driver's default, 48 KiB less the static part, until it is opted in
     * to more) and the cluster width it was given.
     */
    private static final class FunctionSettings {
        final int staticShared;
        int maxDynamicShared;
        int cluster = 1;

        FunctionSettings(int staticShared, int maxDynamicShared) {
            this.staticShared = staticShared;
            this.maxDynamicShared = maxDynamicShared;
        }
    }

    /** One of the function's attributes ({@code cuFuncGetAttribute}). */
    private static int attribute(CUfunc_st f, String function, int attribute, String what) {
        int[] v = new int[1];
        Cu.check(cudart.cuFuncGetAttribute(v, attribute, f), "cuFuncGetAttribute(" + function + ", " + what + ")");
        return v[0];
    }

    /**
     * Opts the function in to the plan's dynamic shared memory where it exceeds what a launch of the function may
     * ask for by default (48 KiB of shared memory per block, static and dynamic together: 48 KiB less the function's
     * static shared memory), and sets its required cluster width, once per value; a plan the device cannot take fails
     * here with the function's name and its bytes.
     */
    private void configure(CUfunc_st f, KernelPlan plan) {
        FunctionSettings done = functionSettings.computeIfAbsent(plan.function(), n -> {
            int staticShared = attribute(f, n, cudart.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, "static shared memory");
            // the driver's default is 48 KiB less the static part; the smaller of the two, should a driver report more
            return new FunctionSettings(staticShared, Math.min(DEFAULT_SHARED_PER_BLOCK - staticShared,
                    attribute(f, n, cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, "max dynamic shared memory")));
        });
        if (plan.sharedBytes() > done.maxDynamicShared) {
            long total = (long) done.staticShared + plan.sharedBytes();
            if (total > limits.sharedPerBlockOptin()) {
                throw new IllegalArgumentException(plan.function() + ": " + plan.sharedBytes() + " bytes of dynamic shared memory and its "
                        + done.staticShared + " bytes of static shared memory exceed the " + limits.sharedPerBlockOptin()
                        + " bytes a block may have on " + describe());
            }
            Cu.check(cudart.cuFuncSetAttribute(f, cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, plan.sharedBytes()),
                    "cuFuncSetAttribute(" + plan.function() + ", max dynamic shared memory " + plan.sharedBytes() + " bytes, with "
                            + done.staticShared + " bytes of static shared memory)");
            done.maxDynamicShared = plan.sharedBytes();
        }
        if (plan.cluster() != done.cluster) {
            if (plan.cluster() > 1 && !limits.clusters()) {
                throw new IllegalArgumentException(plan.function() + ": a cluster of " + plan.cluster() + " blocks needs a device with "
                        + "thread-block clusters (sm_90+); " + describe() + " has none");
            }
            if (plan.cluster() > PORTABLE_CLUSTER) {
                Cu.check(cudart.cuFuncSetAttribute(f, cudart.CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1),
                        "cuFuncSetAttribute(" + plan.function() + ", non-portable cluster size allowed, for " + plan.cluster() + " blocks)");
            }
            Cu.check(cudart.cuFuncSetAttribute(f, cudart.CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH, plan.cluster()),
                    "cuFuncSetAttribute(" + plan.function() + ", cluster width " + plan.cluster() + ")");
            Cu.check(cudart.cuFuncSetAttribute(f, cudart.CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT, 1),
                    "cuFuncSetAttribute(" + plan.function() + ", cluster height 1)");
            Cu.check(cudart.cuFuncSetAttribute(f, cudart.CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH, 1),
                    "cuFuncSetAttribute(" + plan.function() + ", cluster depth 1)");
            done.cluster = plan.cluster();
        }
    }

    /** The largest cluster every device with clusters launches; larger ones need the non-portable attribute. */
    static final int PORTABLE_CLUSTER = 8;

    /** Shared memory, static and dynamic together, a block of a function that was not opted in to more may have. */
    static final int DEFAULT_SHARED_PER_BLOCK = 48 * 1024;

    /** Queues filling {@code count} 32-bit words of {@code dst} with {@code value} on this context's stream. */
    public synchronized void fill32(DeviceBuffer dst, int value, long count) {
        if (count < 0 || count > dst.capacity() / 4) { // no overflow of 4 * count
            throw new IllegalArgumentException(count + " words do not fit a " + dst.capacity() + "-byte device buffer");
        }
        fill32(new DevicePtr(dst.address()), value, count);
    }

    /**
     * Queues filling {@code count} 32-bit words at {@code dst} (4-byte aligned, inside its buffer) with
     * {@code value}: also how a few scalars reach the device with no host buffer and no staging.
     */
    public synchronized void fill32(DevicePtr dst, int value, long count) {
        current();
        Cu.check(cudart.cuMemsetD32Async(dst.address(), value, count, stream), "cuMemsetD32Async(" + count + " words)");
    }

    /** Queues a device-to-device copy of {@code bytes} on this context's stream. */
    public synchronized void copy(DeviceBuffer dst, DeviceBuffer src, long bytes) {
        if (bytes < 0 || bytes > dst.capacity() || bytes > src.capacity()) {
            throw new IllegalArgumentException(bytes + " bytes do not fit a copy from a " + src.capacity() + "-byte to a "
                    + dst.capacity() + "-byte device buffer");
        }
        copy(new DevicePtr(dst.address()), new DevicePtr(src.address()), bytes);
    }

    /** Queues a device-to-device copy of {@code bytes} on this context's stream (the caller keeps both inside their buffers). */
    public synchronized void copy(DevicePtr dst, DevicePtr src, long bytes) {
        current();
        Cu.check(cudart.cuMemcpyDtoDAsync(dst.address(), src.address(), bytes, stream), "cuMemcpyDtoDAsync(" + bytes + " bytes)");
    }

    /**
     * Queues a copy of {@code bytes} from {@code src} to the start of pinned {@code dst} on this context's
     * stream and returns at once; the bytes are there after the work queued so far has run (a
     * {@link DeviceEvent} recorded after this call says when).
     */
    public synchronized void downloadAsync(DevicePtr src, PinnedBuffer dst, long bytes) {
        if (bytes < 0 || bytes > dst.bytes()) {
            throw new IllegalArgumentException(bytes + " bytes do not fit a " + dst.bytes() + "-byte pinned buffer");
        }
        current();
        Cu.check(cudart.cuMemcpyDtoHAsync(dst.pointer(), src.address(), bytes, stream), "cuMemcpyDtoHAsync(" + bytes + " bytes)");
    }

    /**
     * Queues a copy of {@code bytes} from pinned {@code src}, from byte {@code srcOffset}, to {@code dst} on this
     * context's stream and returns at once: {@code src}'s bytes must stay as they are until the work queued so far has
     * run (a synchronizing call, or a {@link DeviceEvent} recorded after this one, says when).
     */
    public synchronized void uploadAsync(DevicePtr dst, PinnedBuffer src, long srcOffset, long bytes) {
        if (bytes < 0 || srcOffset < 0 || srcOffset > src.bytes() || bytes > src.bytes() - srcOffset) { // no overflow of the sum
            throw new IllegalArgumentException(bytes + " bytes from byte " + srcOffset + " are outside a " + src.bytes()
                    + "-byte pinned buffer");
        }
        current();
        Cu.check(cudart.cuMemcpyHtoDAsync(dst.address(), src.at(srcOffset), bytes, stream), "cuMemcpyHtoDAsync(" + bytes + " pinned bytes)");
    }

    /** {@link #downloadAsync(DevicePtr, PinnedBuffer, long)} to byte {@code dstOffset} of {@code dst}. */
    public synchronized void downloadAsync(DevicePtr src, PinnedBuffer dst, long dstOffset, long bytes) {
        if (bytes < 0 || dstOffset < 0 || dstOffset > dst.bytes() || bytes > dst.bytes() - dstOffset) { // no overflow of the sum
            throw new IllegalArgumentException(bytes + " bytes from byte " + dstOffset + " are outside a " + dst.bytes()
                    + "-byte pinned buffer");
        }
        current();
        Cu.check(cudart.cuMemcpyDtoHAsync(dst.at(dstOffset), src.address(), bytes, stream), "cuMemcpyDtoHAsync(" + bytes + " bytes)");
    }

    /**
     * {@code bytes} of page-locked host memory, for copies that run asynchronously (see {@link #downloadAsync}). The
     * driver frees it with this context, so {@link #close} closes it: its views must not outlive this context.
     */
    public synchronized PinnedBuffer pinned(long bytes) {
        current();
        PinnedBuffer b = PinnedBuffer.allocate(bytes, this);
        pinned.add(b);
        return b;
    }

    /** Frees a pinned buffer of {@link #pinned} that its own close closed, in this context, unless {@link #close} did. */
    synchronized void freePinned(PinnedBuffer b) {
        if (pinned.remove(b)) {
            cudart.cuCtxSetCurrent(context);
            b.free();
        }
    }

    /** An event on this context's stream; {@link #close} frees it if it is still open then. */
    public synchronized DeviceEvent event() {
        current();
        DeviceEvent e = new DeviceEvent(this);
        events.add(e);
        return e;
    }

    /** Frees an event of {@link #event} that its own close closed (this context's lock held), unless {@link #close} did. */
    void destroyEvent(DeviceEvent e, org.bytedeco.cuda.cudart.CUevent_st event) {
        if (events.remove(e)) {
            cudart.cuEventDestroy(event);
        }
    }

    /**
     * Captures what {@code work} queues on this context's stream into a {@link DeviceGraph} instead of running
     * it (nothing of it runs now). The work must only queue: no synchronizing, no allocating, no copies from
     * pageable memory. If it fails, the capture is ended and discarded. {@link #close} frees the graph if it is still
     * open then. The graph replays a {@link CublasLt} GEMM captured here with the handle's workspace, so it refuses to
     * launch once that handle is closed.
     */
    public synchronized DeviceGraph capture(Runnable work) {
        current();
        Cu.check(cudart.cuStreamBeginCapture(stream, cudart.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
        org.bytedeco.cuda.cudart.CUgraph_st graph = new org.bytedeco.cuda.cudart.CUgraph_st();
        Set<CublasLt> gemms = new LinkedHashSet<>();
        capturedGemms = gemms;
        try {
            work.run();
        } catch (RuntimeException | Error e) {
            if (cudart.cuStreamEndCapture(stream, graph) == 0 && !graph.isNull()) {
                cudart.cuGraphDestroy(graph);
            }
            throw e;
        } finally {
            capturedGemms = null;
        }
        Cu.check(cudart.cuStreamEndCapture(stream, graph), "cuStreamEndCapture");
        try {
            org.bytedeco.cuda.cudart.CUgraphExec_st exec = new org.bytedeco.cuda.cudart.CUgraphExec_st();
            Cu.check(cudart.cuGraphInstantiate(exec, graph, 0), "cuGraphInstantiate");
            DeviceGraph g = new DeviceGraph(this, exec, new ArrayList<>(gemms));
            graphs.add(g);
            return g;
        } finally {
            cudart.cuGraphDestroy(graph); // the executable graph keeps what it needs
        }
    }

    /**
     * Keeps a cuBLASLt handle made on this context, for {@link #close} to close if it is still open then (called with
     * this context's lock held since the context was found open).
     */
    synchronized void adopt(CublasLt lt) {
        cublasLts.add(lt);
    }

    /** Forgets a cuBLASLt handle that its own close closed (this context's lock held). */
    synchronized void forget(CublasLt lt) {
        cublasLts.remove(lt);
    }

    /**
     * Keeps a stager made on this context, for {@link #close} to close (its copy stream and events) if it is still open
     * then (called with this context's lock held since the context was found open).
     */
    synchronized void adopt(DeviceStager st) {
        stagers.add(st);
    }

    /** Forgets a stager that its own close closed (this context's lock held). */
    synchronized void forget(DeviceStager st) {
        stagers.remove(st);
    }

    /**
     * Notes a cuBLASLt GEMM queued on this context's stream (this lock held): a graph being captured replays it with the
     * handle's workspace, so it must not replay once the handle is closed.
     */
    synchronized void ranGemm(CublasLt lt) {
        if (capturedGemms != null) {
            capturedGemms.add(lt);
        }
    }

    synchronized void launchGraph(org.bytedeco.cuda.cudart.CUgraphExec_st exec) {
        current();
        Cu.check(cudart.cuGraphLaunch(exec, stream), "cuGraphLaunch");
    }

    /**
     * Frees an executable graph of {@link #capture} that its own close closed, unless {@link #close} did; one still
     * running is freed by the driver when it completes.
     */
    synchronized void destroyGraph(DeviceGraph g, org.bytedeco.cuda.cudart.CUgraphExec_st exec) {
        if (graphs.remove(g)) { // not yet freed by close (which may be waiting for a stager's fill, its lock given up)
            cudart.cuCtxSetCurrent(context);
            cudart.cuGraphExecDestroy(exec);
        }
    }

    synchronized void record(org.bytedeco.cuda.cudart.CUevent_st event) {
        current();
        Cu.check(cudart.cuEventRecord(event, stream), "cuEventRecord");
    }

    /**
     * Milliseconds the device spends on what {@code work} queues on this context's stream, measured with
     * CUDA events around it (the host waits for the end event).
     */
    public synchronized float time(Runnable work) {
        current();
        org.bytedeco.cuda.cudart.CUevent_st start = new org.bytedeco.cuda.cudart.CUevent_st();
        org.bytedeco.cuda.cudart.CUevent_st end = new org.bytedeco.cuda.cudart.CUevent_st();
        Cu.check(cudart.cuEventCreate(start, cudart.CU_EVENT_DEFAULT), "cuEventCreate");
        try {
            Cu.check(cudart.cuEventCreate(end, cudart.CU_EVENT_DEFAULT), "cuEventCreate");
            try {
                Cu.check(cudart.cuEventRecord(start, stream), "cuEventRecord");
                work.run();
                Cu.check(cudart.cuEventRecord(end, stream), "cuEventRecord");
                Cu.check(cudart.cuEventSynchronize(end), "cuEventSynchronize");
                float[] ms = new float[1];
                Cu.check(cudart.cuEventElapsedTime(ms, start, end), "cuEventElapsedTime");
                return ms[0];
            } finally {
                cudart.cuEventDestroy(end);
            }
        } finally {
            cudart.cuEventDestroy(start);
        }
    }

    /** Waits for everything queued on this context's stream. */
    public synchronized void synchronize() {
        current();
        Cu.check(cudart.cuStreamSynchronize(stream), "cuStreamSynchronize");
    }

    /**
     * Waits for the work queued on its stream and for its stagers' fills in progress on other threads (and for a stager's
     * own close that waits for one), then closes what it made and frees its memory (see the class comment). Twice is
     * harmless, on any thread, a filler's included: once a close has begun, a later one returns at once (the first may
     * still be waiting for a fill; it frees nothing under it).
     *
     * @throws IllegalStateException called, on an open context, from inside the filler of one of its {@link DeviceStager}s
     *                               (the close cannot wait for a fill on its own thread, and would free the pinned buffer
     *                               being written), or from inside any stager's filler while one of its stagers fills on
     *                               another thread (that filler could be closing this one's stager or context: each
     *                               would wait for the other); nothing changed, and the context stays open: close it
     *                               after that stage returns
     */
    @Override
    public synchronized void close() {
        if (closed.get()) { // also from inside a filler: the close that ran, or runs on another thread, waits for that fill
            return;
        }
        for (DeviceStager st : stagers) { // before anything changes; under this lock, which every stager's close takes too
            if (st.fillingOnThisThread()) {
                throw new IllegalStateException("DeviceContext.close called from inside the filler of one of its DeviceStagers: it would "
                        + "free the pinned buffer the filler is writing, so the context stays open; close it after stage returns");
            }
        }
        for (DeviceStager st : stagers) { // a filler (of any stager) must not wait for a fill on another thread
            st.refuseWaitFromInsideAFiller("DeviceContext.close");
        }
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        cudart.cuCtxSetCurrent(context);
        cudart.cuStreamSynchronize(stream);
        for (DeviceStager st : new ArrayList<>(stagers)) { // a copy: another stager may close itself while one waits
            st.closeWithContext(name); // waits for its fill (giving up this lock meanwhile) and copies, before any memory goes
        }
        stagers.clear();
        for (DeviceGraph g : graphs) {
            g.closeWithContext(name); // before the module: its kernel nodes use the module's functions
        }
        graphs.clear();
        for (CublasLt lt : cublasLts) {
            lt.closeWithContext(name); // after the graphs (which may hold its GEMMs), before the memory (its workspace)
        }
        cublasLts.clear();
        for (DeviceEvent e : events) {
            e.closeWithContext(name);
        }
        events.clear();
        for (Long a : all) {
            cudart.cuMemFree(a);
        }
        all.clear();
        free.clear();
        for (PinnedBuffer b : pinned) {
            b.closeWithContext(name); // the stream is idle: no copy reads or writes them any more
        }
        pinned.clear();
        cudart.cuModuleUnload(module);
        cudart.cuStreamDestroy(stream);
        cudart.cuDevicePrimaryCtxRelease(device);
    }
}
