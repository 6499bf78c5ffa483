package org.distill4j.cuda;

import org.distill4j.backend.ComputeBackend;
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
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The {@code cuda} backend: runs {@code kd} and {@code gjsd} (0 < beta < 1) with dense teacher rows,
 * {@code topk-kd} with top-k rows, and {@code ce}, with the fused kernels on one GPU, under the same loss contract as the CPU. Other losses, and top-k batches, run on the CPU
 * implementation (logged once per loss). Inputs arrive as host float arrays, so each call copies the
 * batch in and the gradient out; the value is summed on the host from per-row parts, in row order and in
 * double, so the same inputs give the same bits.
 */
public final class CudaBackend implements ComputeBackend {
    private static final Logger log = LoggerFactory.getLogger(CudaBackend.class);

    private final DeviceContext ctx;
    private final Set<String> cpuFallbackLogged = ConcurrentHashMap.newKeySet();

    public CudaBackend(DeviceContext ctx) {
        this.ctx = ctx;
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
            return fused(batch, gradOut, upstream, kd.temperature(), kd.alpha(), true, kd.reduction(), loss);
        }
        if (loss instanceof CrossEntropy ce) {
            return fused(batch, gradOut, upstream, 1.0, 1.0, false, ce.reduction(), loss);
        }
        if (loss instanceof GeneralizedJsd jsd && batch.teacher() != null && jsd.beta() > 0 && jsd.beta() < 1) {
            return gjsd(batch, gradOut, upstream, jsd);
        }
        if (loss instanceof TopKKd tk && batch.topkIds() != null && batch.classes() <= KernelPlan.MAX_DYNAMIC_SHARED * 8) {
            return topk(batch, gradOut, upstream, tk);
        }
        if (cpuFallbackLogged.add(loss.name())) {
            log.info("loss '{}' has no CUDA kernel in this version; it runs on the CPU", loss.name());
        }
        return loss.compute(batch, gradOut, upstream);
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

    /** Labels for the kernel: -1 where the row does not count; null without labels. */
    static int[] kernelLabels(LogitBatch batch, boolean needLabels) {
        if (!needLabels) {
            return null;
        }
        int[] y = batch.labels();
        int[] out = new int[batch.rows()];
        for (int r = 0; r < out.length; r++) {
            if (!batch.counts(r)) {
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

    private LossResult fused(LogitBatch batch, float[] gradOut, float upstream, double temperature, double alpha, boolean teacher,
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
        long n = (long) rows * v;
        try (DeviceBuffer s = ctx.alloc(n * 4);
             DeviceBuffer t = teacher ? ctx.alloc(n * 4) : null;
             DeviceBuffer y = labels != null ? ctx.alloc(4L * rows) : null;
             DeviceBuffer c = counted != null ? ctx.alloc(rows) : null;
             DeviceBuffer g = ctx.alloc(n * 4);
             DeviceBuffer out = ctx.alloc(KdRows.ROW_OUT_BYTES * rows)) {
            ctx.upload(s, DType.F32.encode(batch.student()));
            if (t != null) {
                ctx.upload(t, DType.F32.encode(batch.teacher()));
            }
            if (y != null) {
                ctx.upload(y, ints(labels));
            }
            if (c != null) {
                ctx.upload(c, counted);
            }
            KdRows.launch(ctx, DType.F32, loss, s, t, y, c, g, out, rows, v, w, upstream, probs);
            float[] rowOut = finish(out, g, rows, gradOut);
            if (rowOut == null) {
                return loss.compute(batch, gradOut, upstream);
            }
            return KdRows.result(loss, rowOut, rows, batch.countedRows(), w);
        }
    }

    private LossResult gjsd(LogitBatch batch, float[] gradOut, float upstream, GeneralizedJsd loss) {
        int rows = batch.rows();
        int v = batch.classes();
        if (gradOut.length != rows * v || rows == 0 || batch.countedRows() == 0) {
            return loss.compute(batch, gradOut, upstream);
        }
        double temperature = loss.temperature();
        double w = batch.rowWeight(loss.reduction());
        byte[] counted = countedMask(batch);
        boolean probs = batch.teacherValues() == TeacherValues.PROBABILITIES;
        long n = (long) rows * v;
        try (DeviceBuffer s = ctx.alloc(n * 4); DeviceBuffer t = ctx.alloc(n * 4);
             DeviceBuffer c = counted != null ? ctx.alloc(rows) : null;
             DeviceBuffer g = ctx.alloc(n * 4); DeviceBuffer out = ctx.alloc(KdRows.ROW_OUT_BYTES * rows)) {
            ctx.upload(s, DType.F32.encode(batch.student()));
            ctx.upload(t, DType.F32.encode(batch.teacher()));
            if (c != null) {
                ctx.upload(c, counted);
            }
            ctx.launch(KernelPlan.gjsd(rows, v, DType.F32), s, t, c, g, out, rows, v, (float) (1 / temperature), (float) loss.beta(),
                    (float) (temperature * temperature), (float) (w * upstream * temperature), probs ? 1 : 0);
            float[] rowOut = finish(out, g, rows, gradOut);
            if (rowOut == null) {
                return loss.compute(batch, gradOut, upstream);
            }
            double sum = 0;
            for (int r = 0; r < rows; r++) {
                sum += rowOut[3 * r];
            }
            double value = sum * w;
            return new LossResult(value, batch.countedRows(), Map.of(GeneralizedJsd.NAME, value));
        }
    }

    private LossResult topk(LogitBatch batch, float[] gradOut, float upstream, TopKKd loss) {
        int rows = batch.rows();
        int k = batch.k();
        if (gradOut.length != rows * batch.classes() || rows == 0 || batch.countedRows() == 0 || k <= 0) {
            return loss.compute(batch, gradOut, upstream);
        }
        try (DeviceBuffer ids = ctx.alloc(4L * rows * k); DeviceBuffer lps = ctx.alloc(4L * rows * k)) {
            ctx.upload(ids, ints(batch.topkIds()));
            ctx.upload(lps, DType.F32.encode(batch.topkLogProbs()));
            LossResult r = topkOnDevice(batch, ids, lps, k, gradOut, upstream, loss, false);
            return r != null ? r : loss.compute(batch, gradOut, upstream);
        }
    }

    /**
     * {@code topk-kd} with the teacher's top-k rows already on the device (from {@link StoreBatches#topK}):
     * only the student's logits cross to the device. {@code student} holds the student's logits, labels and
     * row mask (its teacher fields are not read); the value and gradient are those of the CPU loss on the
     * same rows.
     *
     * @throws IllegalArgumentException when the shapes disagree
     * @throws IllegalStateException    when a stored id is outside the vocabulary, or a logit is not finite
     */
    public LossResult topKKd(TopKKd loss, LogitBatch student, StoreBatches.TopK teacher, float[] gradOut, float upstream) {
        if (teacher.rows() != student.rows()) {
            throw new IllegalArgumentException("the student batch has " + student.rows() + " rows, the teacher's top-k rows " + teacher.rows());
        }
        if (gradOut.length != student.rows() * student.classes()) {
            throw new IllegalArgumentException("gradOut has " + gradOut.length + " elements, expected " + student.rows() + " x "
                    + student.classes());
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
    private LossResult topkOnDevice(LogitBatch batch, DeviceBuffer ids, DeviceBuffer lps, int k, float[] gradOut, float upstream,
                                    TopKKd loss, boolean explain) {
        int rows = batch.rows();
        int v = batch.classes();
        double temperature = loss.temperature();
        double w = batch.rowWeight(loss.reduction());
        boolean rest = loss.tail() == TopKKd.Tail.REST_BUCKET && k < v;
        byte[] counted = countedMask(batch);
        long n = (long) rows * v;
        try (DeviceBuffer s = ctx.alloc(n * 4);
             DeviceBuffer c = counted != null ? ctx.alloc(rows) : null;
             DeviceBuffer g = ctx.alloc(n * 4); DeviceBuffer out = ctx.alloc(KdRows.ROW_OUT_BYTES * rows)) {
            ctx.upload(s, DType.F32.encode(batch.student()));
            if (c != null) {
                ctx.upload(c, counted);
            }
            ctx.launch(KernelPlan.topk(rows, v, DType.F32), s, ids, lps, c, g, out, rows, v, k, (float) (1 / temperature),
                    (float) (w * upstream * temperature), rest ? 1 : 0);
            float[] rowOut = finish(out, g, rows, gradOut);
            if (rowOut == null) {
                if (!explain) {
                    return null;
                }
                throw new IllegalStateException(flaggedTopK(out, batch));
            }
            double sum = 0;
            for (int r = 0; r < rows; r++) {
                sum += rowOut[3 * r];
            }
            double value = sum * temperature * temperature * w;
            return new LossResult(value, batch.countedRows(), Map.of(TopKKd.NAME, value));
        }
    }

    /**
     * The rows' parts after a launch, with the gradient copied into {@code gradOut}; null when a row was
     * flagged (a non-finite logit or an invalid probability), so the CPU path raises its precise error.
     */
    private float[] finish(DeviceBuffer out, DeviceBuffer g, int rows, float[] gradOut) {
        byte[] rowBytes = new byte[12 * rows];
        ctx.download(out, rowBytes);
        float[] rowOut = new float[3 * rows];
        ByteBuffer.wrap(rowBytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(rowOut);
        for (int r = 0; r < rows; r++) {
            if (rowOut[3 * r + 2] != 0f) {
                return null;
            }
        }
        byte[] gradBytes = new byte[4 * gradOut.length];
        ctx.download(g, gradBytes);
        DType.F32.decode(gradBytes, gradOut);
        return rowOut;
    }

    /** What the topk kernel flagged: the first flagged row and, where the host has it, the logit at fault. */
    private String flaggedTopK(DeviceBuffer out, LogitBatch batch) {
        int rows = batch.rows();
        int v = batch.classes();
        byte[] rowBytes = new byte[12 * rows];
        ctx.download(out, rowBytes);
        java.nio.FloatBuffer parts = ByteBuffer.wrap(rowBytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        int r = 0;
        while (r < rows && parts.get(3 * r + 2) == 0f) {
            r++;
        }
        float[] s = batch.student();
        for (int i = 0; r < rows && i < v; i++) {
            if (!Float.isFinite(s[r * v + i])) {
                return "topk-kd: student logit at row " + r + ", class " + i + " is " + s[r * v + i] + "; expected a finite number";
            }
        }
        return "topk-kd: row " + r + " of this batch (its student logits finite): its stored top-k teacher log-probabilities are not "
                + "all finite, or, with the rest bucket, their probabilities sum to more than 1; expected finite log-probabilities "
                + "whose probabilities sum to at most 1";
    }

    private static byte[] ints(int[] x) {
        ByteBuffer b = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : x) {
            b.putInt(v);
        }
        return b.array();
    }

    @Override
    public void close() {
        ctx.close();
    }
}
