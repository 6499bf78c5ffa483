package org.distill4j.cuda;

import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.SoftTargetKd;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link KdRows}' argument checks and the loss it forms from per-row parts, without a device. */
class KdRowsTest {
    private static final DeviceBuffer NO_DEVICE = null;

    /**
     * Without labels the kernel reads every row's label as -1 (a row without a hard label): with alpha > 0 the
     * cross-entropy term and its gradient were silently left out. Such a launch is refused before the device.
     */
    @Test
    void aLaunchThatNeedsLabelsAndHasNoneIsRefused() {
        Object student = new DevicePtr(256);
        Object teacher = new DevicePtr(4096);
        Object grad = new DevicePtr(8192);
        Object rowOut = new DevicePtr(16384);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KdRows.launch(null, DType.F32,
                new SoftTargetKd(4, 0.3), student, teacher, null, null, grad, rowOut, 8, 10, 0.125, 1f, false));
        assertTrue(e.getMessage().contains("alpha 0.3") && e.getMessage().contains("labels"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KdRows.launch(null, DType.F32, new CrossEntropy(), student, null, null,
                null, grad, rowOut, 8, 10, 0.125, 1f, false));
        assertTrue(e.getMessage().contains("labels"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KdRows.launch(null, DType.F32, new SoftTargetKd(4, 0.3), student, NO_DEVICE,
                new DevicePtr(512), null, grad, rowOut, 8, 10, 0.125, 1f, false));
        assertTrue(e.getMessage().contains("teacher"), e.getMessage());
    }

    /** The loss from per-row parts: alpha * CE + (1 - alpha) * KD, each summed and weighted (values not from zeros). */
    @Test
    void theResultWeighsTheRowParts() {
        float[] rowOut = {0.5f, 2.0f, 0, 0.25f, 1.5f, 0, 0.125f, 3.0f, 0};
        SoftTargetKd kd = new SoftTargetKd(4, 0.3);
        LossResult r = KdRows.result(kd, rowOut, 3, 3, 1.0 / 3);
        double kl = (0.5 + 0.25 + 0.125) / 3;
        double ce = (2.0 + 1.5 + 3.0) / 3;
        assertEquals(0.3 * ce + 0.7 * kl, r.value(), 1e-12);
        assertEquals(kl, r.terms().get(SoftTargetKd.NAME), 1e-12);
        assertEquals(ce, r.terms().get(CrossEntropy.NAME), 1e-12);
        assertEquals(ce * 3, KdRows.result(new CrossEntropy(), rowOut, 3, 3, 1.0).value(), 1e-12);
        assertEquals(-1, KdRows.firstBadRow(rowOut, 3));
        rowOut[3 * 2 + 2] = 2f;
        assertEquals(2, KdRows.firstBadRow(rowOut, 3));
    }

    /** Per-row parts shorter than the rows, or counted rows outside [0, rows], are named (they were an index error or a wrong loss). */
    @Test
    void rowPartsOfTheWrongLengthAreNamed() {
        float[] rowOut = new float[3 * 4];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KdRows.result(new CrossEntropy(), rowOut, 5, 5, 0.2));
        assertTrue(e.getMessage().contains("12 values") && e.getMessage().contains("5 rows"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KdRows.firstBadRow(rowOut, 5));
        assertTrue(e.getMessage().contains("12 values") && e.getMessage().contains("5 rows"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KdRows.result(new CrossEntropy(), rowOut, 4, 5, 0.2));
        assertTrue(e.getMessage().contains("5 counted rows of 4"), e.getMessage());
    }
}
