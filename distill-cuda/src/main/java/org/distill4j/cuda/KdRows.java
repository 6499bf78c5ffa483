package org.distill4j.cuda;

import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LogitLoss;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.SoftTargetKd;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The fused soft-target KD / cross-entropy kernel over rows that are already on the device: its launch
 * arguments from the loss's settings, and the loss value from the per-row parts it writes
 * ({@code kl, ce, bad} per row). {@link CudaBackend} uses it for host batches, the GPU MLP engine for
 * logits its own GEMMs produced.
 */
public final class KdRows {
    /** Bytes of one row's parts in {@code rowOut}: kl, ce and the bad flag, three fp32. */
    public static final long ROW_OUT_BYTES = 12;
    /**
     * How the tiled kernels load rows ahead ({@link KdPlan.Prefetch}): {@code during-pass-2} (the default:
     * the clusters that fit the device at once loop over the rows, each copying its next row during the current
     * row's gradient pass; the fastest form in every shape of the H100 suite at c0fc9a2; a plan of one block
     * that caches only part of a row loops without copying ahead, see {@link KdPlan#forDevice}), {@code none} (a
     * cluster per row) or {@code double-buffer}; see distill-cuda's README for what each has measured.
     */
    public static final String PREFETCH_PROPERTY = "distill.cuda.kd.prefetch";

    private KdRows() {
    }

    /** Whether {@code loss} runs here: {@code kd} (with a dense teacher) or {@code ce}. */
    public static boolean supports(LogitLoss loss) {
        return loss instanceof SoftTargetKd || loss instanceof CrossEntropy;
    }

    /**
     * Queues the kernel: {@code grad = upstream * rowWeight * dLoss/dStudent} for every row, per-row parts to
     * {@code rowOut}. Pointer arguments are {@link DeviceBuffer}s, {@link DevicePtr}s or null.
     *
     * @param teacher   the teacher's rows (logits, or probabilities with {@code teacherProbs}); null for ce
     * @param labels    int32 labels, -1 for a row with no CE term (one that does not count, or an UNLABELED one, which
     *                  {@code counted} still counts); null when alpha is 0
     * @param counted   one byte per row (1 counts), or null when all rows count
     * @param rowWeight what each counted row's loss is multiplied by (1 / counted rows for MEAN)
     */
    public static void launch(DeviceContext ctx, DType dtype, LogitLoss loss, Object student, Object teacher, Object labels, Object counted,
                              Object grad, Object rowOut, int rows, int v, double rowWeight, float upstream, boolean teacherProbs) {
        boolean kd = loss instanceof SoftTargetKd;
        if (!supports(loss)) {
            throw new IllegalArgumentException("the fused kd kernel runs kd and ce, not '" + loss.name() + "'");
        }
        if (kd && teacher == null) {
            throw new IllegalArgumentException("kd needs the teacher's rows on the device");
        }
        double temperature = kd ? ((SoftTargetKd) loss).temperature() : 1.0;
        double alpha = kd ? ((SoftTargetKd) loss).alpha() : 1.0;
        float invT = (float) (1.0 / temperature);
        float kdWeight = kd ? (float) ((1 - alpha) * temperature) : 0f;
        if (alpha > 0 && labels == null) {
            // the kernels read a missing label as -1 (no hard label): the ce term and its gradient would be left out
            throw new IllegalArgumentException("'" + loss.name() + "' with alpha " + alpha + " needs the labels on the device; null "
                    + "labels are for alpha = 0 only");
        }
        boolean needS1 = alpha > 0 && temperature != 1.0;
        Object t = kd ? teacher : null;
        KdPlan plan = KdPlan.forDevice(ctx, prefetchSetting(), rows, v, dtype, KdPlan.address(student), KdPlan.address(t),
                KdPlan.address(grad));
        plan.launch(ctx, student, t, alpha > 0 ? labels : null, counted, grad, rowOut, rows, v, invT, kdWeight, (float) alpha,
                (float) (temperature * temperature), (float) (rowWeight * upstream), teacherProbs ? 1 : 0, needS1 ? 1 : 0);
    }

    /** {@value #PREFETCH_PROPERTY}: during-pass-2 (default), none or double-buffer. */
    static KdPlan.Prefetch prefetchSetting() {
        String p = System.getProperty(PREFETCH_PROPERTY, "during-pass-2").trim().toLowerCase(java.util.Locale.ROOT);
        for (KdPlan.Prefetch f : KdPlan.Prefetch.values()) {
            if (f.name().toLowerCase(java.util.Locale.ROOT).replace('_', '-').equals(p)) {
                return f;
            }
        }
        throw new IllegalArgumentException(PREFETCH_PROPERTY + " is '" + p + "'; expected none, during-pass-2 or double-buffer");
    }

    /** The loss value and its terms from the kernel's per-row parts (summed in row order, in double). */
    public static LossResult result(LogitLoss loss, float[] rowOut, int rows, int countedRows, double rowWeight) {
        checkRowParts(rowOut, rows);
        if (countedRows < 0 || countedRows > rows) {
            throw new IllegalArgumentException(countedRows + " counted rows of " + rows);
        }
        double klSum = 0;
        double ceSum = 0;
        for (int r = 0; r < rows; r++) {
            klSum += rowOut[3 * r];
            ceSum += rowOut[3 * r + 1];
        }
        double kdValue = klSum * rowWeight;
        double ceValue = ceSum * rowWeight;
        Map<String, Double> terms = new LinkedHashMap<>();
        if (loss instanceof SoftTargetKd kd) {
            double alpha = kd.alpha();
            terms.put(SoftTargetKd.NAME, kdValue);
            if (alpha > 0) {
                terms.put(CrossEntropy.NAME, ceValue);
            }
            return new LossResult(alpha * ceValue + (1 - alpha) * kdValue, countedRows, terms);
        }
        terms.put(CrossEntropy.NAME, ceValue);
        return new LossResult(ceValue, countedRows, terms);
    }

    /**
     * The first row the kernel flagged, or -1: 1 where it held a non-finite logit or an invalid probability, 2 where the tiled
     * kernels left it to the CPU loss (a teacher logit of NaN or +inf, no class of mass, logits beyond their range).
     */
    public static int firstBadRow(float[] rowOut, int rows) {
        checkRowParts(rowOut, rows);
        for (int r = 0; r < rows; r++) {
            if (rowOut[3 * r + 2] != 0f) {
                return r;
            }
        }
        return -1;
    }

    private static void checkRowParts(float[] rowOut, int rows) {
        if (rows < 0 || rowOut.length < 3L * rows) {
            throw new IllegalArgumentException("the per-row parts (kl, ce, bad) hold " + rowOut.length + " values, " + rows + " rows need "
                    + 3L * rows);
        }
    }
}
