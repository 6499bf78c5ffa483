package org.distill4j.store;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** An import's options: defaults, each with* changing its own setting only, refusals, and the automatic chunk size. */
class StoreImportOptionsTest {
    @Test
    void eachSettingChangesOnlyItself() {
        StoreImport.Options d = StoreImport.Options.defaults();
        assertEquals(new StoreImport.Options(ValueCodec.F16, 0, null, 0, 0), d);
        StoreImport.Options o = d.withCodec(ValueCodec.BF16).withChunkRows(33).withTeacherId("t").withTopK(5).withVocab(151);
        assertEquals(new StoreImport.Options(ValueCodec.BF16, 33, "t", 5, 151), o);
        assertEquals(new StoreImport.Options(ValueCodec.F32, 33, "t", 5, 151), o.withCodec(ValueCodec.F32));
        assertEquals(new StoreImport.Options(ValueCodec.BF16, 7, "t", 5, 151), o.withChunkRows(7));
        assertNull(o.withTeacherId(null).teacherId());
        assertEquals(new StoreImport.Options(ValueCodec.BF16, 33, "t", 9, 151), o.withTopK(9));
        assertEquals(new StoreImport.Options(ValueCodec.BF16, 33, "t", 5, 3), o.withVocab(3));
    }

    @Test
    void negativeSettingsAndNoCodecAreRefused() {
        for (int[] bad : new int[][]{{-1, 0, 0}, {0, -1, 0}, {0, 0, -1}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new StoreImport.Options(ValueCodec.F32, bad[0], null, bad[1], bad[2]));
            assertEquals("import options need chunkRows >= 0, topK >= 0 and vocab >= 0; got " + bad[0] + ", " + bad[1] + ", " + bad[2],
                    e.getMessage());
        }
        NullPointerException e = assertThrows(NullPointerException.class, () -> new StoreImport.Options(null, 0, null, 0, 0));
        assertEquals("codec", e.getMessage());
    }

    /** Chunks of 1024 rows, or of as many rows as 64 MiB holds when fewer (at least one), unless a count is given. */
    @Test
    void theAutomaticChunkHoldsAtMost1024RowsAnd64MiB() {
        StoreImport.Options auto = StoreImport.Options.defaults();
        long mib64 = 64L << 20;
        assertEquals(1024, auto.chunkRows(20));
        assertEquals(1024, auto.chunkRows(mib64 / 1024)); // exactly 1024 rows of 64 KiB
        assertEquals(1023, auto.chunkRows(mib64 / 1024 + 1));
        assertEquals(220, auto.chunkRows(2L * 152064)); // f16 rows of Qwen's vocabulary
        assertEquals(1, auto.chunkRows(mib64));
        assertEquals(1, auto.chunkRows(mib64 + 1));
        assertEquals(1, auto.chunkRows(Long.MAX_VALUE / 2));
        assertEquals(5, auto.withChunkRows(5).chunkRows(mib64 * 3));
        assertEquals(5000, auto.withChunkRows(5000).chunkRows(20));
    }
}
