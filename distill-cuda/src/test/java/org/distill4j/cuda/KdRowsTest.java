package org.distill4j.cuda;

import org.distill4j.loss.CrossEntropy;
import org.distill4j.loss.LossResult;
import org.distill4j.loss.ReverseKl;
import org.distill4j.loss.SoftTargetKd;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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

    /** Only kd and ce run on the fused kernel; another loss is refused by name before the device is touched. */
    @Test
    void onlyKdAndCeRunOnTheFusedKernel() {
        assertTrue(KdRows.supports(new SoftTargetKd(2, 0.5)));
        assertTrue(KdRows.supports(new CrossEntropy()));
        assertFalse(KdRows.supports(new ReverseKl(2)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KdRows.launch(null, DType.F32, new ReverseKl(2),
                new DevicePtr(256), new DevicePtr(4096), new DevicePtr(512), null, new DevicePtr(8192), new DevicePtr(16384), 8, 10, 0.125,
                1f, false));
        assertEquals("the fused kd kernel runs kd and ce, not 'reverse-kl'", e.getMessage());
    }

    /**
     * kd with alpha = 0 has no hard-label term, so it needs no labels: its launch passes the argument checks (here the
     * missing device context is the first thing that fails, not an IllegalArgumentException about labels).
     */
    @Test
    void kdWithoutTheHardLabelTermNeedsNoLabels() {
        assertThrows(NullPointerException.class, () -> KdRows.launch(null, DType.F32, new SoftTargetKd(3, 0), new DevicePtr(256),
                new DevicePtr(4096), null, null, new DevicePtr(8192), new DevicePtr(16384), 8, 10, 0.125, 1f, false));
    }

    /**
     * The loss from random per-row parts (7 rows) against float64 sums: with alpha = 0 it is the weighted kd term alone and
     * names no ce term; no counted row (every row masked) is a valid batch, as is one of no rows.
     */
    @Test
    void theResultOfRandomRowPartsMatchesFloat64Sums() {
        Random rng = new Random(20261123);
        int rows = 7;
        float[] rowOut = new float[3 * rows];
        double kl = 0;
        double ce = 0;
        for (int r = 0; r < rows; r++) {
            rowOut[3 * r] = (float) (rng.nextDouble() * 3);
            rowOut[3 * r + 1] = (float) (rng.nextDouble() * 5);
            kl += rowOut[3 * r];
            ce += rowOut[3 * r + 1];
        }
        double w = 1.0 / 5;
        LossResult noCe = KdRows.result(new SoftTargetKd(2.5, 0), rowOut, rows, 5, w);
        assertEquals(kl * w, noCe.value(), 1e-12);
        assertEquals(List.of(SoftTargetKd.NAME), List.copyOf(noCe.terms().keySet()), "alpha = 0: no ce term");
        assertEquals(5, noCe.rows());
        LossResult both = KdRows.result(new SoftTargetKd(2.5, 0.25), rowOut, rows, 0, w);
        assertEquals(0.25 * ce * w + 0.75 * kl * w, both.value(), 1e-12);
        assertEquals(List.of(SoftTargetKd.NAME, CrossEntropy.NAME), List.copyOf(both.terms().keySet()));
        assertEquals(0, both.rows(), "no counted rows");
        assertEquals(rows, KdRows.result(new CrossEntropy(), rowOut, rows, rows, w).rows());
        LossResult empty = KdRows.result(new CrossEntropy(), new float[0], 0, 0, 1.0);
        assertEquals(0.0, empty.value());
        assertEquals(-1, KdRows.firstBadRow(new float[0], 0));
    }

    /** Negative row or counted-row counts are refused naming them, and the parts' length error says how many values it needs. */
    @Test
    void negativeCountsAreRefusedNamingThem() {
        float[] rowOut = new float[3 * 4];
        IllegalArgumentException counted = assertThrows(IllegalArgumentException.class,
                () -> KdRows.result(new CrossEntropy(), rowOut, 4, -1, 0.25));
        assertEquals("-1 counted rows of 4", counted.getMessage());
        IllegalArgumentException rows = assertThrows(IllegalArgumentException.class, () -> KdRows.firstBadRow(rowOut, -1));
        assertTrue(rows.getMessage().contains("-1 rows"), rows.getMessage());
        IllegalArgumentException shortParts = assertThrows(IllegalArgumentException.class, () -> KdRows.firstBadRow(rowOut, 5));
        assertEquals("the per-row parts (kl, ce, bad) hold 12 values, 5 rows need 15", shortParts.getMessage());
    }
}
