package org.distill4j.cuda;

import org.distill4j.store.SoftTargetStore;
import org.distill4j.store.StoreHeader;
import org.distill4j.store.StoreWriter;
import org.distill4j.store.ValueCodec;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The device-side unpacking of stored teacher rows ({@code store_rows.cuh}, the {@code unpack_*_rows}
 * kernels) without a GPU: the host harness runs the header's code on the rows {@link SoftTargetStore#copyRows}
 * gives, and the result must equal the Java reader's bit for bit: every id width (2, 3, 4 bytes), every
 * codec, rows that are not 4-byte aligned, and every one of the 65,536 f16 and bf16 bit patterns.
 */
class StoreRowsUnpackTest {
    private static HostHarness harness;

    @BeforeAll
    static void compile() throws Exception {
        harness = HostHarness.compile("store_rows_host_test");
    }

    record Unpacked(int[] ids, float[] values, int badRow) {
    }

    static Unpacked run(int mode, int rows, int k, int idBytes, ValueCodec codec, int v, long rowBytes, byte[] raw) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(32 + raw.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(mode).putInt(rows).putInt(k).putInt(idBytes).putInt(codec.code()).putInt(v).putLong(rowBytes).put(raw);
        ByteBuffer o = ByteBuffer.wrap(harness.run(b.array())).order(ByteOrder.LITTLE_ENDIAN);
        if (mode == 0) {
            int[] ids = new int[rows * k];
            float[] lps = new float[rows * k];
            o.asIntBuffer().get(ids);
            o.position(4 * ids.length);
            o.asFloatBuffer().get(lps);
            return new Unpacked(ids, lps, o.getInt(8 * ids.length));
        }
        float[] out = new float[rows * v];
        o.asFloatBuffer().get(out);
        return new Unpacked(null, out, -1);
    }

    private static byte[] copy(SoftTargetStore s, int[] idx) {
        ByteBuffer raw = ByteBuffer.allocate((int) (s.header().rowBytes() * idx.length));
        s.copyRows(idx, raw);
        return raw.array();
    }

    @ParameterizedTest(name = "V {0}, k {1}, {2}")
    @CsvSource({"1000, 7, F16", "70000, 5, BF16", "70000, 9, F32", "20000000, 3, F16", "151936, 64, BF16"})
    void topKRowsUnpackToWhatTheJavaReaderGives(int vocab, int k, ValueCodec codec, @TempDir Path tmp) throws Exception {
        int rows = 29;
        Random rng = new Random(vocab + k);
        int[] ids = new int[rows * k];
        float[] lps = new float[rows * k];
        for (int r = 0; r < rows; r++) {
            java.util.Set<Integer> seen = new java.util.HashSet<>(); // the writer refuses a row that repeats an id
            for (int j = 0; j < k; j++) {
                int i = r * k + j;
                do {
                    ids[i] = i % 11 == 0 && !seen.contains(vocab - 1) ? vocab - 1 : rng.nextInt(vocab);
                } while (!seen.add(ids[i]));
                // 1e-5 .. 10: f16 subnormals too (in the first entry: a row's probabilities sum to at most 1, the others' to at
                // most 0.005, as the writer requires)
                double magnitude = Math.abs(rng.nextGaussian()) * Math.pow(10, rng.nextInt(7) - 5);
                lps[i] = (float) (j == 0 ? -magnitude : -Math.log(200.0 * (k - 1)) - magnitude);
            }
        }
        Path p = tmp.resolve("topk.d4j");
        StoreHeader h = new StoreHeader(StoreHeader.Layout.TOP_K, codec, StoreHeader.ValueKind.LOG_PROBS, vocab, k, rows, 6, 1.0, "{}");
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeTopK(ids, lps, rows);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            int[] idx = {28, 0, 13, 13, 5, 27, 1};
            Unpacked got = run(0, idx.length, k, h.idBytes(), codec, vocab, h.rowBytes(), copy(s, idx));
            SoftTargetStore.TopKRows want = s.topK(idx);
            assertArrayEquals(want.ids(), got.ids());
            assertBitsEqual(want.logProbs(), got.values());
            assertEquals(Integer.MAX_VALUE, got.badRow(), "no id is out of range");
        }
    }

    @ParameterizedTest
    @EnumSource(ValueCodec.class)
    void denseRowsUnpackToWhatTheJavaReaderGives(ValueCodec codec, @TempDir Path tmp) throws Exception {
        int vocab = 37;
        int rows = 17;
        Random rng = new Random(codec.ordinal());
        float[] all = new float[rows * vocab];
        for (int i = 0; i < all.length; i++) {
            all[i] = (float) (rng.nextGaussian() * Math.pow(10, rng.nextInt(9) - 4));
        }
        Path p = tmp.resolve("dense.d4j");
        StoreHeader h = new StoreHeader(StoreHeader.Layout.DENSE, codec, StoreHeader.ValueKind.LOGITS, vocab, 0, rows, 4, 1.0, "{}");
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeDense(all, rows);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            int[] idx = {16, 3, 0, 9, 9};
            assertBitsEqual(s.dense(idx), run(1, idx.length, 0, 0, codec, vocab, h.rowBytes(), copy(s, idx)).values());
        }
    }

    @ParameterizedTest
    @EnumSource(value = ValueCodec.class, names = {"F16", "BF16"})
    void every16BitPatternDecodesAsValueCodecDoes(ValueCodec codec) throws Exception {
        int v = 1 << 16;
        ByteBuffer raw = ByteBuffer.allocate(2 * v).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < v; i++) {
            raw.putShort((short) i);
        }
        float[] got = run(1, 1, 0, 0, codec, v, 2L * v, raw.array()).values();
        float[] want = new float[v];
        for (int i = 0; i < v; i++) {
            want[i] = codec.get(raw, 2 * i);
        }
        assertBitsEqual(want, got);
    }

    @Test
    void anIdOutsideTheVocabularyIsFlaggedWithTheLowestSuchRow() throws Exception {
        int k = 2;
        int vocab = 300;
        // three rows of 2 x (2-byte id + f16): row 1 holds id 300, row 2 id 65535
        ByteBuffer raw = ByteBuffer.allocate(3 * 8).order(ByteOrder.LITTLE_ENDIAN);
        int[][] ids = {{5, 299}, {300, 1}, {7, 65535}};
        for (int[] row : ids) {
            raw.putShort((short) row[0]).putShort((short) row[1]).putShort(ValueCodec.toHalf(-0.5f)).putShort(ValueCodec.toHalf(-2f));
        }
        Unpacked got = run(0, 3, k, 2, ValueCodec.F16, vocab, 8, raw.array());
        assertEquals(1, got.badRow());
        assertArrayEquals(new int[] {5, 299, 0, 1, 7, 0}, got.ids(), "an out-of-range id is written as 0, never used as an index");
    }

    private static void assertBitsEqual(float[] want, float[] got) {
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) {
            if (Float.isNaN(want[i])) {
                assertEquals(true, Float.isNaN(got[i]), "element " + i + " is NaN");
            } else {
                assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), "element " + i + ": " + want[i] + " vs " + got[i]);
            }
        }
    }
}
