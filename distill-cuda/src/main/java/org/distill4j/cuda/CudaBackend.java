package org.distill4j.cuda;

import org.distill4j.backend.ComputeBackend;
import org.distill4j.backend.CpuBackend;
import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.GeneralizedJsd;
import org.distill4j.loss.LogitBatch;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.Reduction;
import org.distill4j.loss.SoftTargetKd;
import org.distill4j.loss.TeacherValues;
import org.distill4j.loss.TopKKd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The {@code cuda} backend: runs {@code kd} and {@code gjsd} ({@code 0 < beta < 1}) with dense teacher rows,
 * {@code topk-kd} with top-k rows, and {@code ce}, with the fused kernels on one GPU, under the same loss contract as the CPU (a teacher logit of
 * {@code -Infinity} or a probability of 0 is a class of zero mass there too). Other losses run on the CPU
 * implementation (logged once per loss). Inputs arrive as host float arrays, so each call copies the
 * batch in and the gradient out; the value is summed on the host from per-row parts, in row order and in
 * double, so the same inputs give the same bits.
 *
 * <p><b>Errors.</b> Bad arguments are refused before anything runs, with the CPU loss's own messages. A CUDA error
 * (a {@link CudaException} naming the call) is not retried on the CPU: an error from a kernel, such as an illegal
 * address, leaves CUDA's context unusable, so every later call on this backend fails too, and the run has to end; close
 * the backend (and so its {@link DeviceContext}) and start again, or choose the {@code cpu} backend.
 */
public final class CudaBackend implements ComputeBackend {
    private static final Logger log = LoggerFactory.getLogger(CudaBackend.class);

    private final DeviceContext ctx;
    private final Set<String> cpuFallbackLogged = ConcurrentHashMap.newKeySet();
    private final Set<String> rerunLogged = ConcurrentHashMap.newKeySet();
    private final Set<String> rangeLogged = ConcurrentHashMap.newKeySet();
    /** Batches a kernel flagged as invalid that the CPU loss then accepted (see {@link #rerunOnCpu}). */
    private final java.util.concurrent.atomic.AtomicLong cpuReruns = new java.util.concurrent.atomic.AtomicLong();
    /** Batches the tiled kernels left to the CPU loss for logits beyond their range, which it computed. */
    private final java.util.concurrent.atomic.AtomicLong rangeReruns = new java.util.concurrent.atomic.AtomicLong();
    /** The flag of the first flagged row {@link #finish} saw last (1 invalid, 2 for the CPU to decide); under this object's lock. */
    private float lastFlag;
    /** The first row of the chunk {@link #inChunks} last stopped at (where that flag was seen); under this object's lock. */
    private int lastFlaggedChunk = -1;
    /** Where the losses without a kernel run: the CPU backend, on its threads. */
    private final CpuBackend cpu = new CpuBackend();

    /**
     * The most bytes of one f32 buffer of a host batch on the device: a larger batch goes in chunks of rows, staged
     * through pinned memory of twice this (student and teacher rows).
     */
    static final long HOST_CHUNK_BYTES = 1L << 26;
    private final long hostChunkBytes;
    /** Pinned host memory the host batches go through (grown on demand; idle between calls, which end synchronized). */
    private PinnedBuffer staging;

    /**
     * The backend on {@code ctx}'s device and stream, which it takes over: {@link #close()} closes the context too. Host
     * batches larger than 64 MiB per f32 buffer go to the device in chunks of rows.
     */
    public CudaBackend(DeviceContext ctx) {
        this(ctx, HOST_CHUNK_BYTES);
    }

    /** For tests: host batches in chunks of at most {@code hostChunkBytes} per f32 buffer (at least a row). */
    CudaBackend(DeviceContext ctx, long hostChunkBytes) {
        if (hostChunkBytes < 1) {
            throw new IllegalArgumentException("host chunks of at least 1 byte, got " + hostChunkBytes);
        }
        this.ctx = ctx;
        this.hostChunkBytes = hostChunkBytes;
    }

    @Override
    public String name() {
        return CudaBackendProvider.NAME;
    }

    @Override
    public String device() {
        return ctx.describe();
    }

    /** The context this backend runs on. */
    public DeviceContext context() {
        return ctx;
    }

    @Override
    public LossResult logitLoss(LogitLoss loss, LogitBatch batch, float[] gradOut, float upstream) {
        if (loss instanceof SoftTargetKd kd && batch.teacher() != null) {
            checkInputs(loss, batch, gradOut, upstream);
            return fused(batch, gradOut, upstream, kd.temperature(), kd.alpha(), true, kd.reduction(), loss);
        }
        if (loss instanceof CrossEntropy ce) {
            checkInputs(loss, batch, gradOut, upstream);
            return fused(batch, gradOut, upstream, 1.0, 1.0, false, ce.reduction(), loss);
        }
        if (loss instanceof GeneralizedJsd jsd && batch.teacher() != null && jsd.beta() > 0 && jsd.beta() < 1) {
            checkInputs(loss, batch, gradOut, upstream);
            return gjsd(batch, gradOut, upstream, jsd);
        }
        if (loss instanceof TopKKd tk && batch.topkIds() != null && batch.classes() <= KernelPlan.MAX_DYNAMIC_SHARED * 8) {
            checkInputs(loss, batch, gradOut, upstream);
            return topk(batch, gradOut, upstream, tk);
        }
        LogitLoss.requireFiniteUpstream(loss.name(), upstream);
        if (cpuFallbackLogged.add(loss.name())) {
            log.info("loss '{}' has no CUDA kernel in this version; it runs on the CPU", loss.name());
        }
        return cpu.logitLoss(loss, batch, gradOut, upstream);
    }

    /**
     * The CPU loss's checks of the arguments, with its errors, before a kernel runs: the gradient buffer (there, of
     * {@code rows x classes}, and not one of the inputs, which the chunks of a batch are still read from while earlier
     * chunks' gradients are written), the inputs the loss needs, and the upstream factor, which the kernels scale every
     * gradient element by.
     */
    private static void checkInputs(LogitLoss loss, LogitBatch batch, float[] gradOut, float upstream) {
        loss.checkInputs(batch, gradOut, upstream);
    }

    /** Which rows count, or null when all do. */
    static byte[] countedMask(LogitBatch batch) {
        if (batch.countedRows() == batch.rows()) {
            return null;
        }
        byte[] m = new byte[batch.rows()];
        for (int r = 0; r < m.length; r++) {
            m[r] = (byte) (batch.counts(r) ? 1 : 0);
        }
        return m;
    }

    /** Labels for the kernel: -1 where the row does not count or has no label (UNLABELED: no CE term); null without labels. */
    static int[] kernelLabels(LogitBatch batch, boolean needLabels) {
        if (!needLabels) {
            return null;
        }
        int[] y = batch.labels();
        if (y == null) {
            return null; // the CPU path raises "needs hard labels"
        }
        int[] out = new int[batch.rows()];
        for (int r = 0; r < out.length; r++) {
            if (!batch.counts(r) || y[r] == LogitBatch.UNLABELED) {
                out[r] = -1;
                continue;
            }
            if (y[r] < 0 || y[r] >= batch.classes()) {
                return null; // the CPU path raises the precise error
            }
            out[r] = y[r];
        }
        return out;
    }

    private synchronized LossResult fused(LogitBatch batch, float[] gradOut, float upstream, double temperature, double alpha, boolean teacher,
                             Reduction reduction, LogitLoss loss) {
        int rows = batch.rows();
        int v = batch.classes();
        if (gradOut.length != rows * v) {
            return loss.compute(batch, gradOut, upstream); // the CPU path raises the shape error
        }
        if (rows == 0 || batch.countedRows() == 0) {
            return loss.compute(batch, gradOut, upstream);
        }
        boolean labelsNeeded = alpha > 0;
        int[] labels = kernelLabels(batch, labelsNeeded);
        if (labelsNeeded && labels == null) {
            return loss.compute(batch, gradOut, upstream);
        }
        byte[] counted = countedMask(batch);
        double w = batch.rowWeight(reduction);
        boolean probs = teacher && batch.teacherValues() == TeacherValues.PROBABILITIES;
        int per = chunkRows(rows, v);
        long n = (long) per * v;
        float[] rowOut = new float[3 * rows];
        try (DeviceBuffer s = ctx.alloc(n * 4);
             DeviceBuffer t = teacher ? ctx.alloc(n * 4) : null;
             DeviceBuffer y = labels != null ? ctx.alloc(4L * per) : null;
             DeviceBuffer c = counted != null ? ctx.alloc(per) : null;
             DeviceBuffer g = ctx.alloc(n * 4);
             DeviceBuffer out = ctx.alloc(KdRows.ROW_OUT_BYTES * per)) {
            int flagged = inChunks(batch, per, s, t, c, counted, g, out, rowOut, gradOut, (r0, m) -> {
                if (y != null) {
                    ctx.upload(y, ints(labels, r0, m));
                }
                KdRows.launch(ctx, DType.F32, loss, s, t, y, c, g, out, m, v, w, upstream, probs);
            });
            if (flagged >= 0) {
                return rerunOnCpu(loss, batch, gradOut, upstream, flagged);
            }
        }
        return KdRows.result(loss, rowOut, rows, batch.countedRows(), w);
    }

    private synchronized LossResult gjsd(LogitBatch batch, float[] gradOut, float upstream, GeneralizedJsd loss) {
        int rows = batch.rows();
        int v = batch.classes();
        if (gradOut.length != rows * v || rows == 0 || batch.countedRows() == 0) {
            return loss.compute(batch, gradOut, upstream);
        }
        double temperature = loss.temperature();
        double w = batch.rowWeight(loss.reduction());
        byte[] counted = countedMask(batch);
        boolean probs = batch.teacherValues() == TeacherValues.PROBABILITIES;
        int per = chunkRows(rows, v);
        long n = (long) per * v;
        float[] rowOut = new float[3 * rows];
        try (DeviceBuffer s = ctx.alloc(n * 4); DeviceBuffer t = ctx.alloc(n * 4);
             DeviceBuffer c = counted != null ? ctx.alloc(per) : null;
             DeviceBuffer g = ctx.alloc(n * 4); DeviceBuffer out = ctx.alloc(KdRows.ROW_OUT_BYTES * per)) {
            int flagged = inChunks(batch, per, s, t, c, counted, g, out, rowOut, gradOut,
                    (r0, m) -> ctx.launch(KernelPlan.gjsd(m, v, DType.F32), s, t, c, g, out, m, v, (float) (1 / temperature),
                            (float) loss.beta(), (float) (temperature * temperature), (float) (w * upstream * temperature), probs ? 1 : 0));
            if (flagged >= 0) {
                return rerunOnCpu(loss, batch, gradOut, upstream, flagged);
            }
        }
        double value = klSum(rowOut, rows) * w;
        return new LossResult(value, batch.countedRows(), Map.of(GeneralizedJsd.NAME, value));
    }

    private LossResult topk(LogitBatch batch, float[] gradOut, float upstream, TopKKd loss) {
        int rows = batch.rows();
        int k = batch.k();
        if (gradOut.length != rows * batch.classes() || rows == 0 || batch.countedRows() == 0 || k <= 0) {
            return loss.compute(batch, gradOut, upstream);
        }
        try (DeviceBuffer ids = ctx.alloc(4L * rows * k); DeviceBuffer lps = ctx.alloc(4L * rows * k)) {
            ctx.upload(ids, ints(batch.topkIds(), 0, rows * k));
            ctx.upload(lps, DType.F32.encode(batch.topkLogProbs()));
            LossResult r = topkOnDevice(batch, ids, lps, k, gradOut, upstream, loss, false);
            return r != null ? r : rerunOnCpu(loss, batch, gradOut, upstream, lastFlaggedChunk);
        }
    }

    /**
     * {@code topk-kd} with the teacher's top-k rows already on the device (from {@link StoreBatches#topK}):
     * only the student's logits cross to the device. {@code student} holds the student's logits, labels and
     * row mask (its teacher fields are not read); the value and gradient are those of the CPU loss on the
     * same rows.
     *
     * @throws IllegalArgumentException when the shapes disagree (rows, the vocabulary, the gradient's length), or the
     *                                  vocabulary is beyond the kernel's (393,216 classes); before anything runs
     * @throws IllegalStateException    when the top-k rows are closed (before anything runs), when a stored id is outside the vocabulary, or a logit is not finite (a
     *                                  batch that went in chunks of rows may have left the earlier chunks' gradient
     *                                  in {@code gradOut})
     */
    public LossResult topKKd(TopKKd loss, LogitBatch student, StoreBatches.TopK teacher, float[] gradOut, float upstream) {
        if (teacher == null) {
            throw new IllegalArgumentException("loss '" + loss.name() + "' on the device needs the teacher's top-k rows there "
                    + "(StoreBatches.topK), got none");
        }
        if (gradOut == null || gradOut.length != student.student().length) {
            throw new IllegalArgumentException("gradient buffer for loss '" + loss.name() + "' has "
                    + (gradOut == null ? "no array" : gradOut.length + " elements") + ", expected rows x classes = " + student.rows()
                    + " x " + student.classes());
        }
        if (gradOut == student.student()) {
            throw new IllegalArgumentException("gradient buffer for loss '" + loss.name() + "' is the same array as the student logits; "
                    + "it must not alias an input (the loss reads them while it writes the gradient)");
        }
        LogitLoss.requireFiniteUpstream(loss.name(), upstream);
        if (teacher.rows() != student.rows()) {
            throw new IllegalArgumentException("the student batch has " + student.rows() + " rows, the teacher's top-k rows " + teacher.rows());
        }
        if (teacher.vocab() != student.classes()) {
            throw new IllegalArgumentException("the student batch has " + student.classes() + " classes, the teacher's top-k rows come from a "
                    + "store of vocabulary " + teacher.vocab() + "; they must match");
        }
        try {
            teacher.ids().address();
            teacher.logProbs().address();
        } catch (IllegalStateException e) {
            throw new IllegalStateException("the teacher's top-k rows for loss '" + loss.name() + "' are closed (their device buffers "
                    + "went back to the pool); stage the batch's rows again (StoreBatches.topK)", e);
        }
        if (student.classes() > KernelPlan.MAX_DYNAMIC_SHARED * 8) {
            throw new IllegalArgumentException("loss '" + loss.name() + "' on the device takes vocabularies up to "
                    + KernelPlan.MAX_DYNAMIC_SHARED * 8 + " classes, got " + student.classes());
        }
        if (student.countedRows() == 0) {
            java.util.Arrays.fill(gradOut, 0f);
            return new LossResult(0, 0, Map.of(TopKKd.NAME, 0.0));
        }
        teacher.checkIds();
        return topkOnDevice(student, teacher.ids(), teacher.logProbs(), teacher.k(), gradOut, upstream, loss, true);
    }

    /**
     * The topk kernel on device rows; where the kernel flags a row, null (the caller has the teacher rows on the
     * host and lets the CPU loss raise its precise error), or with {@code explain} an error naming the first
     * flagged row and the student logit that is not finite there, else its stored log-probabilities (which the
     * host does not hold).
     */
    private synchronized LossResult topkOnDevice(LogitBatch batch, DeviceBuffer ids, DeviceBuffer lps, int k, float[] gradOut, float upstream,
                                    TopKKd loss, boolean explain) {
        int rows = batch.rows();
        int v = batch.classes();
        double temperature = loss.temperature();
        double w = batch.rowWeight(loss.reduction());
        // the kernel leaves a row without a rest bucket where its entries hold every class (k = V, none absent)
        boolean rest = loss.tail() == TopKKd.Tail.REST_BUCKET;
        byte[] counted = countedMask(batch);
        int per = chunkRows(rows, v);
        long n = (long) per * v;
        float[] rowOut = new float[3 * rows];
        try (DeviceBuffer s = ctx.alloc(n * 4);
             DeviceBuffer c = counted != null ? ctx.alloc(per) : null;
             DeviceBuffer g = ctx.alloc(n * 4); DeviceBuffer out = ctx.alloc(KdRows.ROW_OUT_BYTES * per)) {
            int flagged = inChunks(batch, per, s, null, c, counted, g, out, rowOut, gradOut,
                    (r0, m) -> ctx.launch(KernelPlan.topk(m, v, DType.F32), s, ids.at(4L * k * r0, 4L * k * m),
                            lps.at(4L * k * r0, 4L * k * m), c, g, out, m, v, k, (float) (1 / temperature),
                            (float) (w * upstream * temperature), rest ? 1 : 0));
            if (flagged >= 0) {
                if (!explain) {
                    return null;
                }
                throw new IllegalStateException(flaggedTopK(out, batch, flagged, Math.min(per, rows - flagged), temperature));
            }
        }
        double value = klSum(rowOut, rows) * temperature * temperature * w;
        return new LossResult(value, batch.countedRows(), Map.of(TopKKd.NAME, value));
    }

    /**
     * A batch a kernel flagged (a row of it, in the chunk from {@code firstRow}; -1 where not known): the kernels flag what
     * the CPU loss refuses, so the CPU loss runs it to raise its precise error, naming the row and class. Should the CPU
     * loss accept the batch, the kernel and the loss disagree on what is valid: the CPU's result stands (it defines the
     * loss), the disagreement is logged once per loss (it costs a CPU pass per batch) and counted.
     */
    private LossResult rerunOnCpu(LogitLoss loss, LogitBatch batch, float[] gradOut, float upstream, int firstRow) {
        boolean range = firstRow >= 0 && lastFlag == 2f;
        LossResult r = loss.compute(batch, gradOut, upstream);
        if (range) {
            // flag 2: the tiled kernels' logits whose products with log2(e) / T reach 2^30 (|logit| / T of 7.4e8 or more), or,
            // at T < 1, any kernel's logit whose product with 1/T leaves fp32
            rangeReruns.incrementAndGet();
            if (rangeLogged.add(loss.name())) {
                log.info("loss '{}': a batch with logits beyond the CUDA kernel's range (|logit| / T of 7.4e8 or more for the tiled "
                        + "kernels; above FLT_MAX * T for any) ran on the CPU", loss.name());
            }
            return r;
        }
        cpuReruns.incrementAndGet();
        if (rerunLogged.add(loss.name())) {
            log.warn("the CUDA kernel of loss '{}' flagged a row{} that the CPU loss accepts; such batches run on the CPU "
                    + "(correct, but slow). Please report this with the batch's shape and teacher values", loss.name(),
                    firstRow >= 0 ? " (in the chunk from row " + firstRow + ")" : "");
        }
        return r;
    }

    /** For tests: how many batches a kernel flagged as invalid and the CPU loss then accepted (each ran on the CPU). */
    long cpuReruns() {
        return cpuReruns.get();
    }

    /** For tests: how many batches the tiled kernels left to the CPU loss for their logits' size, which it computed. */
    long rangeReruns() {
        return rangeReruns.get();
    }

    /** For tests: the bytes of the pinned staging buffer (0 before the first host batch). */
    synchronized long stagingBytes() {
        return staging == null ? 0 : staging.bytes();
    }

    /** Queues a chunk's kernel once its rows are on the device. */
    @FunctionalInterface
    private interface ChunkLaunch {
        void launch(int firstRow, int rows);
    }

    /**
     * Runs a host batch in chunks of {@code per} rows: each chunk's student rows (and teacher rows, where {@code t} is
     * given) staged into {@code s} and {@code t}, its part of {@code counted} into {@code c}, then {@code launch}, then
     * its parts and gradient back ({@link #finish}). Returns -1 when every chunk finished, else the first row of the
     * chunk where the kernel flagged a row (the chunks after it are not run).
     */
    private int inChunks(LogitBatch batch, int per, DeviceBuffer s, DeviceBuffer t, DeviceBuffer c, byte[] counted, DeviceBuffer g,
                         DeviceBuffer out, float[] rowOut, float[] gradOut, ChunkLaunch launch) {
        int rows = batch.rows();
        int v = batch.classes();
        long n = (long) per * v;
        PinnedBuffer stage = staging((t != null ? 2 : 1) * n * 4);
        for (int r0 = 0; r0 < rows; r0 += per) {
            int m = Math.min(per, rows - r0);
            stageRows(batch.student(), r0, m, v, stage, 0, s);
            if (t != null) {
                stageRows(batch.teacher(), r0, m, v, stage, n * 4, t);
            }
            if (c != null) {
                ctx.upload(c, Arrays.copyOfRange(counted, r0, r0 + m));
            }
            launch.launch(r0, m);
            if (!finish(out, g, m, v, r0, rowOut, gradOut, stage)) {
                lastFlaggedChunk = r0;
                return r0;
            }
        }
        return -1;
    }

    /** The rows' KL parts ({@code rowOut[3 r]}), summed in row order in double. */
    private static double klSum(float[] rowOut, int rows) {
        double sum = 0;
        for (int r = 0; r < rows; r++) {
            sum += rowOut[3 * r];
        }
        return sum;
    }

    /** Rows per chunk of a host batch of rows of {@code v} logits: each f32 buffer at most the chunk bytes. */
    int chunkRows(int rows, int v) {
        return (int) Math.max(1, Math.min(rows, hostChunkBytes / (4L * v)));
    }

    /**
     * The staging buffer, at least {@code bytes}, idle: a call that succeeded ended with the stream synchronized, but one
     * that failed may have left copies from it queued, so the stream is synchronized first (nothing queued: no wait).
     */
    private PinnedBuffer staging(long bytes) {
        ctx.synchronize();
        if (staging == null || staging.bytes() < bytes) {
            if (staging != null) {
                staging.close();
                staging = null;
            }
            staging = ctx.pinned(bytes);
        }
        return staging;
    }

    /**
     * Queues rows {@code [row, row + rows)} of {@code src} to {@code dst} through byte {@code at} of the staging buffer
     * (one bulk copy into pinned memory, then an asynchronous copy the device reads at full speed); the staging bytes
     * stay untouched until the stream is next synchronized.
     */
    private void stageRows(float[] src, int row, int rows, int v, PinnedBuffer stage, long at, DeviceBuffer dst) {
        ByteBuffer b = stage.view();
        b.position(Math.toIntExact(at));
        b.slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(src, row * v, rows * v);
        ctx.uploadAsync(new DevicePtr(dst.address()), stage, at, 4L * rows * v);
    }

    /**
     * After a chunk's launch: its {@code rows} rows' parts into {@code rowOut} and their gradient into {@code gradOut},
     * from row {@code firstRow} of the batch, the gradient through the start of the staging buffer (whose uploads ran
     * before the kernel); false, with neither written, when a row was flagged (a non-finite logit or an invalid
     * probability), so that the CPU path raises its precise error.
     */
    private boolean finish(DeviceBuffer out, DeviceBuffer g, int rows, int v, int firstRow, float[] rowOut, float[] gradOut,
                           PinnedBuffer stage) {
        long gradBytes = 4L * rows * v;
        ctx.downloadAsync(new DevicePtr(g.address()), stage, 0, gradBytes);
        byte[] rowBytes = new byte[12 * rows];
        ctx.download(out, rowBytes); // synchronizes the stream: the gradient has landed in the staging buffer too
        java.nio.FloatBuffer parts = ByteBuffer.wrap(rowBytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        for (int r = 0; r < rows; r++) {
            if (parts.get(3 * r + 2) != 0f) {
                lastFlag = parts.get(3 * r + 2);
                return false;
            }
        }
        parts.get(rowOut, 3 * firstRow, 3 * rows);
        ByteBuffer b = stage.view();
        b.limit(Math.toIntExact(gradBytes));
        b.asFloatBuffer().get(gradOut, firstRow * v, rows * v);
        return true;
    }

    /**
     * What the topk kernel flagged in the chunk of {@code rows} rows from {@code firstRow}: the first flagged row of the
     * batch and, where the host has it, the logit at fault.
     */
    private String flaggedTopK(DeviceBuffer out, LogitBatch batch, int firstRow, int rows, double temperature) {
        int v = batch.classes();
        byte[] rowBytes = new byte[12 * rows];
        ctx.download(out, rowBytes);
        java.nio.FloatBuffer parts = ByteBuffer.wrap(rowBytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        int i0 = 0;
        while (i0 < rows && parts.get(3 * i0 + 2) == 0f) {
            i0++;
        }
        int r = firstRow + i0;
        if (i0 < rows && parts.get(3 * i0 + 2) == 2f) {
            return "topk-kd: row " + r + " of this batch has a student logit whose product with 1/T (T = " + temperature + ") is beyond "
                    + "fp32 (|logit| > " + Float.MAX_VALUE + " * T); the kernel cannot compute it. Such a batch runs on the CPU loss "
                    + "with the teacher's top-k rows on the host (CudaBackend.logitLoss)";
        }
        float[] s = batch.student();
        for (int i = 0; i0 < rows && i < v; i++) {
            if (!Float.isFinite(s[r * v + i])) {
                return "topk-kd: student logit at row " + r + ", class " + i + " is " + s[r * v + i] + "; expected a finite number";
            }
        }
        return "topk-kd: row " + r + " of this batch (its student logits finite): a stored top-k teacher log-probability is NaN, "
                + "+Infinity or above 0, or all of them are -Infinity, or, with the rest bucket, their probabilities sum to more than "
                + "1; expected log-probabilities <= 0 (-Infinity for probability 0), at least one finite, whose probabilities sum "
                + "to at most 1";
    }

    /** {@code x[from, from + n)} as little-endian int32 bytes. */
    private static byte[] ints(int[] x, int from, int n) {
        ByteBuffer b = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = from; i < from + n; i++) {
            b.putInt(x[i]);
        }
        return b.array();
    }

    @Override
    public void close() {
        cpu.close();
        synchronized (this) {
            if (staging != null) {
                // a closed context waited for its stream on close; an open one may still have copies from it queued
                if (ctx.currentForFreeing()) {
                    try {
                        ctx.synchronize();
                    } catch (RuntimeException e) {
                        // a failed context runs nothing more
                    }
                }
                staging.close();
                staging = null;
            }
        }
        ctx.close();
    }
}
