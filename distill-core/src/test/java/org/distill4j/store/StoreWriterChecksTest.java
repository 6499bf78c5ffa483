package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.distill4j.store.SoftTargetStoreTest.dense;
import static org.distill4j.store.SoftTargetStoreTest.topk;
import static org.distill4j.store.SoftTargetStoreTest.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the writer refuses, and what its refusals say: the shape, the row (counting rows still buffered), the class. */
class StoreWriterChecksTest {

    @Test
    void callsOfTheWrongShapeOrLayoutAreNamed(@TempDir Path tmp) throws IOException {
        try (StoreWriter d = StoreWriter.open(tmp.resolve("d.d4j"), dense(ValueCodec.F32, 6, 9, 4));
             StoreWriter t = StoreWriter.open(tmp.resolve("t.d4j"), topk(50, 2, 9, 4))) {
            IllegalArgumentException shortRows = assertThrows(IllegalArgumentException.class, () -> d.writeDense(values(1, 11), 2));
            assertEquals("dense rows have 11 values, expected 2 x 6", shortRows.getMessage());
            assertThrows(IllegalArgumentException.class, () -> d.writeDense(values(1, 13), 2), "one value too many");
            IllegalStateException topOnDense = assertThrows(IllegalStateException.class,
                    () -> d.writeTopK(new int[]{1, 2}, new float[]{-1, -2}, 1));
            assertEquals("this store holds dense rows; use writeDense", topOnDense.getMessage());
            IllegalStateException denseOnTop = assertThrows(IllegalStateException.class, () -> t.writeDense(values(1, 50), 1));
            assertEquals("this store holds top-k rows; use writeTopK", denseOnTop.getMessage());
            IllegalArgumentException lps = assertThrows(IllegalArgumentException.class,
                    () -> t.writeTopK(new int[]{1, 2, 3, 4}, new float[]{-1, -2, -3}, 2));
            assertEquals("top-k rows have 4 ids and 3 log-probabilities, expected 2 x 2 of each", lps.getMessage());
            IllegalArgumentException ids = assertThrows(IllegalArgumentException.class,
                    () -> t.writeTopK(new int[]{1, 2, 3}, new float[]{-1, -2, -3, -4}, 2));
            assertEquals("top-k rows have 3 ids and 4 log-probabilities, expected 2 x 2 of each", ids.getMessage());
            assertEquals(0, d.rowsWritten());
            assertEquals(0, t.rowsWritten());
        }
    }

    /** A refused value names its store row: rows on disk plus rows still in the chunk buffer plus its place in the call. */
    @Test
    void aRefusedRowIsNamedByItsRowInTheStoreWithRowsStillBuffered(@TempDir Path tmp) throws IOException {
        Path dp = tmp.resolve("d.d4j");
        Path tp = tmp.resolve("t.d4j");
        try (StoreWriter d = StoreWriter.open(dp, dense(ValueCodec.F16, 6, 20, 4));
             StoreWriter t = StoreWriter.open(tp, topk(50, 3, 20, 4))) {
            d.writeDense(values(2, 6 * 6), 6); // rows 0-3 on disk, 4 and 5 buffered
            float[] bad = values(3, 3 * 6);
            bad[2 * 6 + 4] = Float.NaN; // row 8, class 4
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> d.writeDense(bad, 3));
            assertTrue(e.getMessage().startsWith(dp + ": dense value of row 8, class 4 is NaN"), e.getMessage());
            float[] none = values(3, 3 * 6);
            Arrays.fill(none, 6, 12, Float.NEGATIVE_INFINITY); // row 7 has no finite value
            e = assertThrows(IllegalArgumentException.class, () -> d.writeDense(none, 3));
            assertTrue(e.getMessage().startsWith(dp + ": dense values of row 7 are all -Infinity"), e.getMessage());
            float[] big = values(3, 3 * 6);
            big[5] = 70_000f; // row 6, class 5
            e = assertThrows(IllegalArgumentException.class, () -> d.writeDense(big, 3));
            assertTrue(e.getMessage().startsWith(dp + ": dense value of row 6, class 5 is 70000.0, which overflows f16 to Infinity"),
                    e.getMessage());

            t.writeTopK(new int[]{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, SoftTargetStoreTest.logProbs(4, 5, 3), 5);
            int[] repeated = {1, 2, 3, 7, 3, 7}; // row 6 repeats class 7, not next to each other
            e = assertThrows(IllegalArgumentException.class, () -> t.writeTopK(repeated, new float[]{-1, -2, -3, -1, -2, -3}, 2));
            assertTrue(e.getMessage().startsWith(tp + ": top-k ids of row 6 repeat class 7"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> t.writeTopK(new int[]{1, 2, 3, 4, 50, 6}, new float[]{-1, -2, -3, -1, -2, -3}, 2));
            assertEquals(tp + ": top-k id 50 of row 6 (entry 1) is outside [0, 50)", e.getMessage(), "an id out of range is not an absent slot");
            e = assertThrows(IllegalArgumentException.class,
                    () -> t.writeTopK(new int[]{1, 2, 3}, new float[]{-1, Float.NEGATIVE_INFINITY, -3}, 1));
            assertTrue(e.getMessage().startsWith(tp + ": top-k log-probability of row 5, entry 1 (class 2) is -Infinity, expected a "
                    + "finite value <= 0 (store a zero probability as log(Float.MIN_VALUE)"), e.getMessage());
            assertEquals(4, d.rowsWritten());
            assertEquals(4, t.rowsWritten());
        }
    }

    /**
     * Finite values that round to the largest finite value of their dtype are kept (f16: up to 65519.99, below the midpoint
     * 65520 to infinity; bf16: up to the largest bf16, 3.3895e38); what rounds to an infinity is refused.
     */
    @Test
    void valuesJustBelowADtypesOverflowAreKept(@TempDir Path tmp) throws IOException {
        float bf16Max = ValueCodec.fromBfloat16((short) 0x7f7f);
        float[][] kept = {
                {65519f, -65519.99f, 65504f, 1f},
                {bf16Max, -Math.nextUp(bf16Max), 3.381e38f, 1f},
                {Float.MAX_VALUE, -Float.MAX_VALUE, 3.4e38f, 1f},
        };
        ValueCodec[] codecs = {ValueCodec.F16, ValueCodec.BF16, ValueCodec.F32};
        for (int c = 0; c < codecs.length; c++) {
            Path p = tmp.resolve(codecs[c] + ".d4j");
            try (StoreWriter w = StoreWriter.open(p, dense(codecs[c], 4, 1, 1))) {
                w.writeDense(kept[c], 1);
                w.finish();
            }
            try (SoftTargetStore s = SoftTargetStore.open(p)) {
                float[] got = s.dense(new int[]{0});
                for (int j = 0; j < 4; j++) {
                    assertEquals(SoftTargetStoreTest.codec(codecs[c], kept[c][j]), got[j], 0f, codecs[c] + " class " + j);
                    assertTrue(Float.isFinite(got[j]), codecs[c] + " class " + j + ": " + got[j]);
                }
            }
        }
        assertEquals(65504f, ValueCodec.fromHalf(ValueCodec.toHalf(65519.99f)));
        try (StoreWriter w = StoreWriter.open(tmp.resolve("over.d4j"), dense(ValueCodec.F16, 2, 1, 1));
             StoreWriter b = StoreWriter.open(tmp.resolve("overb.d4j"), dense(ValueCodec.BF16, 2, 1, 1))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> w.writeDense(new float[]{1, -65520f}, 1));
            assertTrue(e.getMessage().contains("class 1 is -65520.0, which overflows f16 to -Infinity; store f32 or bf16"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> b.writeDense(new float[]{Float.MAX_VALUE, 1}, 1));
            assertTrue(e.getMessage().contains("class 0 is 3.4028235E38, which overflows bf16 to Infinity; store f32"), e.getMessage());
        }
    }

    @Test
    void aFullOrClosedWriterSaysWhich(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("s.d4j");
        float[] all = values(5, 6 * 9);
        StoreWriter w = StoreWriter.open(p, dense(ValueCodec.F32, 6, 9, 4));
        w.writeDense(all, 9);
        IllegalStateException full = assertThrows(IllegalStateException.class, () -> w.writeDense(values(6, 6), 1));
        assertEquals("store already has all 9 rows", full.getMessage());
        w.finish();
        IllegalStateException finished = assertThrows(IllegalStateException.class, () -> w.writeDense(values(6, 6), 1));
        assertEquals(p + ": store writer is closed (the store is finished)", finished.getMessage());

        Path q = tmp.resolve("q.d4j");
        StoreWriter c = StoreWriter.open(q, dense(ValueCodec.F32, 6, 9, 4));
        c.close();
        IllegalStateException closed = assertThrows(IllegalStateException.class, () -> c.writeDense(values(6, 6), 1));
        assertEquals(q + ": store writer is closed", closed.getMessage());
        closed = assertThrows(IllegalStateException.class, c::finish);
        assertEquals(q + ": store writer is closed", closed.getMessage());
        c.close(); // a second close does nothing
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            assertArrayEquals(all, s.dense(new int[]{0, 1, 2, 3, 4, 5, 6, 7, 8}), 0f);
        }
        assertFalse(Files.exists(q));
    }

    /**
     * A top-k row whose entries' probabilities (as the dtype stores them) sum to more than 1 + 0.01 is refused by the writer,
     * by the reader's row check and by an import alike, and one at or below it is taken by all three: rows whose sums fall
     * on either side of the bound by less than the dtype's rounding, 5 of 11 classes, in each dtype.
     */
    @Test
    void theWriterTheReaderAndAnImportDrawTheMassBoundAtTheSameValue(@TempDir Path tmp) throws IOException {
        int v = 11;
        int k = 5;
        int trials = 400;
        java.util.Random rng = new java.util.Random(23);
        for (ValueCodec codec : ValueCodec.values()) {
            // about the dtype's rounding of a log-probability near -1.6 (f32 2^-24, f16 2^-11, bf16 2^-8 of it)
            double spread = codec == ValueCodec.F32 ? 1e-6 : codec == ValueCodec.F16 ? 2e-3 : 1e-2;
            StoreHeader h = new StoreHeader(StoreHeader.Layout.TOP_K, codec, StoreHeader.ValueKind.LOG_PROBS, v, k, trials, 64, 1.0,
                    SoftTargetStoreTest.PROV);
            int taken = 0;
            int refused = 0;
            try (StoreWriter w = StoreWriter.open(tmp.resolve(codec + ".d4j"), h)) {
                for (int t = 0; t < trials; t++) {
                    int[] ids = SoftTargetStoreTest.distinctIds(rng, 1, k, v, false);
                    // k probabilities of no more than 0.9 of a distribution, scaled to sum to about 1.01
                    double[] p = new double[k];
                    double sum = 0;
                    for (int j = 0; j < k; j++) {
                        p[j] = 0.2 + rng.nextDouble();
                        sum += p[j];
                    }
                    double target = (1 + RowCheck.SUM_TOLERANCE) * (1 + spread * (2 * rng.nextDouble() - 1));
                    float[] lps = new float[k];
                    double[] asDoubles = new double[k];
                    for (int j = 0; j < k; j++) {
                        lps[j] = (float) Math.log(p[j] / sum * target);
                        asDoubles[j] = lps[j];
                    }
                    boolean writer;
                    try {
                        w.writeTopK(ids, lps, 1);
                        writer = true;
                    } catch (IllegalArgumentException e) {
                        assertTrue(e.getMessage().contains(": top-k log-probabilities of row " + taken + ": the entries' probabilities "
                                + "sum to "), e.getMessage());
                        writer = false;
                    }
                    java.nio.ByteBuffer row = java.nio.ByteBuffer.allocate((int) h.rowBytes()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                    for (int j = 0; j < k; j++) {
                        row.putShort(j * 2, (short) ids[j]);
                        codec.put(row, k * 2 + j * codec.bytes(), lps[j]);
                    }
                    boolean reader = RowCheck.check(h, row, 1, 0) == null;
                    boolean importer;
                    try {
                        new StoreImport.Entries(ids, asDoubles).select(Path.of("t.jsonl"), "line " + (t + 1), k, true, v, codec, new int[k],
                                new float[k], 0, new StoreImport.Selection());
                        importer = true;
                    } catch (IllegalArgumentException e) {
                        importer = false;
                    }
                    assertEquals(writer, reader, codec + " trial " + t + ": " + Arrays.toString(lps));
                    assertEquals(writer, importer, codec + " trial " + t + ": " + Arrays.toString(lps));
                    if (writer) {
                        taken++;
                    } else {
                        refused++;
                    }
                }
            }
            assertTrue(taken > trials / 5 && refused > trials / 5, codec + ": rows on both sides of the bound, " + taken + " taken and "
                    + refused + " refused");
        }
    }
}
