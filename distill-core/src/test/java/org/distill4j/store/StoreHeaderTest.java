package org.distill4j.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The header and footer bytes as store-format.md lays them out, and what {@link StoreHeader#decode} refuses. */
class StoreHeaderTest {

    /** Every field at its offset, written independently of {@link StoreHeader#encode}, from the format's table. */
    private static byte[] specified(int layout, int dtype, int kind, int idBytes, int vocab, int k, long rows, int chunkRows, double t,
                                    String prov) {
        byte[] p = prov.getBytes(StandardCharsets.UTF_8);
        int dataOffset = (56 + p.length + 4095) / 4096 * 4096;
        ByteBuffer b = ByteBuffer.allocate(dataOffset).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, "D4JSTORE".getBytes(StandardCharsets.US_ASCII));
        b.putShort(8, (short) 1);
        b.put(10, (byte) layout).put(11, (byte) dtype).put(12, (byte) kind).put(13, (byte) idBytes);
        b.putInt(16, vocab).putInt(20, k).putLong(24, rows).putInt(32, chunkRows).putDouble(40, t).putInt(48, p.length);
        b.put(52, p);
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(b.array(), 0, 52 + p.length);
        b.putInt(52 + p.length, (int) crc.getValue());
        return b.array();
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] a = new byte[b.remaining()];
        b.duplicate().get(a);
        return a;
    }

    @Test
    void theHeaderIsTheFormatsTableByteForByte() {
        String prov = "{\"teacher\":\"t\u00e9\"}";
        StoreHeader dense = new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.BF16, StoreHeader.ValueKind.LOG_PROBS, 70_001, 0, 123_456_789_012L,
                333, 0.75, prov);
        assertArrayEquals(specified(0, 2, 1, 0, 70_001, 0, 123_456_789_012L, 333, 0.75, prov), bytes(dense.encode()), "dense: id bytes 0");
        StoreHeader top = new StoreHeader(StoreHeader.Layout.TOP_K, ValueCodec.F16, StoreHeader.ValueKind.LOG_PROBS, 70_001, 17, 99, 7, 2.0, "");
        assertArrayEquals(specified(1, 1, 1, 3, 70_001, 17, 99, 7, 2.0, ""), bytes(top.encode()));
        assertEquals(dense, StoreHeader.decode(dense.encode(), "d"));
        assertEquals(top, StoreHeader.decode(top.encode(), "t"));
    }

    @Test
    void idBytesAtEachBoundary() {
        int[][] cases = {{1, 2}, {65_535, 2}, {65_536, 2}, {65_537, 3}, {(1 << 24) - 1, 3}, {1 << 24, 3}, {(1 << 24) + 1, 4},
                {Integer.MAX_VALUE, 4}};
        for (int[] c : cases) {
            StoreHeader h = new StoreHeader(StoreHeader.Layout.TOP_K, ValueCodec.F32, StoreHeader.ValueKind.LOG_PROBS, c[0], 1, 10, 4, 1.0, "");
            assertEquals(c[1], h.idBytes(), "vocab " + c[0]);
            assertEquals(c[1] + 4, h.rowBytes(), "vocab " + c[0]);
            assertEquals(0, SoftTargetStoreTest.dense(ValueCodec.F32, c[0] > 1 << 20 ? 1 << 20 : c[0], 10, 4).idBytes(), "dense");
        }
    }

    /** dataOffset = ceil((56 + P) / 4096) * 4096, at the provenance lengths around a page. */
    @Test
    void theDataStartsAtTheNextPage() {
        int[][] cases = {{0, 4096}, {4039, 4096}, {4040, 4096}, {4041, 8192}, {8135, 8192}, {8136, 8192}, {8137, 12288}};
        for (int[] c : cases) {
            StoreHeader h = SoftTargetStoreTest.dense(ValueCodec.F32, 3, 10, 4);
            h = new StoreHeader(h.layout(), h.codec(), h.values(), h.vocab(), h.k(), h.rows(), h.chunkRows(), h.temperature(), "p".repeat(c[0]));
            assertEquals(c[1], h.dataOffset(), "provenance of " + c[0] + " bytes");
            assertEquals(c[1], h.encode().remaining());
            assertEquals(c[1] + 2 * (4 * 12 + 4) + 2 * 12 + 4 + 20, h.completeSize());
        }
    }

    /** {@link StoreHeader#decode} is public: it refuses what the format does not allow even when the checksum holds. */
    @Test
    void decodeRefusesWhatTheFormatDoesNotAllowWithAValidChecksum() {
        String prov = "{\"teacher\":\"a\"}"; // 15 bytes
        byte[] good = specified(1, 1, 1, 2, 1000, 5, 20, 4, 1.0, prov);
        record Case(int at, int value, int width, String message) {
        }
        for (Case c : new Case[]{
                new Case(0, 'X', 1, "s: not a Distill4J soft-target store (magic 'X4JSTORE', expected 'D4JSTORE')"),
                new Case(8, 2, 2, "s: store format version 2 is not supported; this Distill4J reads version 1"),
                new Case(13, 3, 1, "s: corrupt header (id bytes 3, expected 2)"),
                new Case(10, 2, 1, "s: corrupt header (layout 2, value kind 1)"),
                new Case(12, 2, 1, "s: corrupt header (layout 1, value kind 2)"),
                new Case(12, -1, 1, "s: corrupt header (layout 1, value kind -1)"),
                new Case(11, 3, 1, "s: corrupt header: s: unknown value dtype code 3, expected 0 (f32), 1 (f16) or 2 (bf16)"),
                new Case(20, 0, 4, "s: corrupt header: store k is 0, expected 1 <= k <= vocab (1000)"),
        }) {
            byte[] b = good.clone();
            ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
            switch (c.width()) {
                case 1 -> bb.put(c.at(), (byte) c.value());
                case 2 -> bb.putShort(c.at(), (short) c.value());
                default -> bb.putInt(c.at(), c.value());
            }
            bb.putInt(52 + 15, Crc32c.of(b, 0, 52 + 15));
            StoreFormatException e = assertThrows(StoreFormatException.class, () -> StoreHeader.decode(ByteBuffer.wrap(b), "s"), c.message());
            assertEquals(c.message(), e.getMessage());
        }
    }

    /** The buffer given to decode must hold the whole header: the fixed part, the provenance it declares, and the CRC. */
    @Test
    void decodeOfTooFewBytesNamesWhatIsMissing() {
        String prov = "{\"teacher\":\"a\"}";
        byte[] good = specified(0, 0, 0, 0, 3, 0, 20, 4, 1.0, prov);
        int headerBytes = 52 + 15 + 4;
        assertEquals(SoftTargetStoreTest.dense(ValueCodec.F32, 3, 20, 4).rowBytes(), 12);
        StoreHeader whole = StoreHeader.decode(ByteBuffer.wrap(Arrays.copyOf(good, headerBytes)), "s");
        assertEquals(prov, whole.provenance());
        StoreFormatException e = assertThrows(StoreFormatException.class,
                () -> StoreHeader.decode(ByteBuffer.wrap(Arrays.copyOf(good, headerBytes - 1)), "s"));
        assertEquals("s: truncated or corrupt header (provenance of 15 bytes)", e.getMessage());
        e = assertThrows(StoreFormatException.class, () -> StoreHeader.decode(ByteBuffer.wrap(Arrays.copyOf(good, 51)), "s"));
        assertEquals("s: truncated: 51 bytes, a store header needs at least 52", e.getMessage());
        for (int length : new int[]{-1, StoreHeader.MAX_PROVENANCE_BYTES + 1}) {
            byte[] b = Arrays.copyOf(good, StoreHeader.MAX_PROVENANCE_BYTES + 100);
            ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(48, length);
            e = assertThrows(StoreFormatException.class, () -> StoreHeader.decode(ByteBuffer.wrap(b), "s"));
            assertEquals("s: truncated or corrupt header (provenance of " + length + " bytes)", e.getMessage());
        }
        // an empty provenance, and the longest, decode
        byte[] empty = specified(0, 0, 0, 0, 3, 0, 20, 4, 1.0, "");
        assertEquals("", StoreHeader.decode(ByteBuffer.wrap(Arrays.copyOf(empty, 56)), "s").provenance());
        String longest = "q".repeat(StoreHeader.MAX_PROVENANCE_BYTES);
        byte[] max = specified(0, 0, 0, 0, 3, 0, 20, 4, 1.0, longest);
        assertEquals(longest, StoreHeader.decode(ByteBuffer.wrap(Arrays.copyOf(max, StoreHeader.MAX_PROVENANCE_BYTES + 56)), "s").provenance());
    }

    @Test
    void aProvenanceThatIsNotUtf8IsNamedByItsBytes() {
        byte[] b = specified(0, 0, 0, 0, 3, 0, 20, 4, 1.0, "{\"t\":\"ab\"}"); // 10 bytes
        b[52 + 6] = (byte) 0xc3; // the start of a two-byte character, then 'b'
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(62, Crc32c.of(b, 0, 62));
        StoreFormatException e = assertThrows(StoreFormatException.class, () -> StoreHeader.decode(ByteBuffer.wrap(b), "s"));
        assertEquals("s: corrupt header: the provenance (bytes 52 to 62) is not UTF-8 text", e.getMessage());
    }

    /** readAt reads on through short reads, each at its own offset, and names where a file ends too soon. */
    @Test
    void readAtReadsFullyOrSaysWhereTheFileEnded(@TempDir Path tmp) throws IOException {
        byte[] data = new byte[1000];
        new Random(7).nextBytes(data);
        Path p = Files.write(tmp.resolve("f"), data);
        try (ShortReadChannel ch = new ShortReadChannel(FileChannel.open(p, StandardOpenOption.READ), 7)) {
            assertArrayEquals(Arrays.copyOfRange(data, 101, 401), bytes(StoreHeader.readAt(ch, 101, 300)));
            assertTrue(ch.reads >= 300 / 7);
            assertArrayEquals(Arrays.copyOf(data, 60), bytes(StoreHeader.readAt(ch, 60)));
            EOFException e = assertThrows(EOFException.class, () -> StoreHeader.readAt(ch, 990, 20));
            assertEquals("unexpected end of file after 10 of 20 bytes from byte 990", e.getMessage());
        }
    }

    /** A complete store with an empty provenance opens; a file that is its header alone is truncated, with both sizes. */
    @Test
    void theReaderTakesAnEmptyProvenanceAndNamesAFileOfItsHeaderAlone(@TempDir Path tmp) throws IOException {
        StoreHeader h = new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F16, StoreHeader.ValueKind.LOGITS, 3, 0, 2, 4, 1.0, "");
        Path p = tmp.resolve("e.d4j");
        try (StoreWriter w = StoreWriter.open(p, h)) {
            w.writeDense(new float[]{1, 2, 3, 4, 5, 6}, 2);
            w.finish();
        }
        try (SoftTargetStore s = SoftTargetStore.open(p)) {
            assertEquals(h, s.header());
            assertArrayEquals(new float[]{4, 5, 6}, s.dense(new int[]{1}), 0f);
        }
        byte[] all = Files.readAllBytes(p);
        Files.write(p, Arrays.copyOf(all, 56));
        StoreFormatException e = assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
        assertEquals(p + ": truncated: 56 bytes, a complete store of 2 rows has " + h.completeSize(), e.getMessage());
        Files.write(p, Arrays.copyOf(all, 55));
        e = assertThrows(StoreFormatException.class, () -> SoftTargetStore.open(p));
        assertEquals(p + ": truncated: 55 bytes, its header alone (with a provenance of 0 bytes) has 56", e.getMessage());
    }

    /** The footer: "D4JEND\0\0", the row count, their CRC32C; another magic or row count fails even with its own valid CRC. */
    @Test
    void theFooterIsItsMagicRowCountAndChecksum() {
        long rows = 0x0102030405060708L;
        ByteBuffer f = StoreFooter.encode(rows);
        ByteBuffer want = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN);
        want.put("D4JEND\0\0".getBytes(StandardCharsets.US_ASCII)).putLong(rows).putInt(Crc32c.of(want.array(), 0, 16));
        assertArrayEquals(want.array(), bytes(f));
        assertTrue(StoreFooter.valid(f, rows));
        assertFalse(StoreFooter.valid(StoreFooter.encode(rows + 1), rows), "another row count");
        ByteBuffer other = ByteBuffer.wrap(want.array().clone()).order(ByteOrder.LITTLE_ENDIAN);
        other.put(3, (byte) 'X').putInt(16, Crc32c.of(other.array(), 0, 16));
        assertFalse(StoreFooter.valid(other, rows), "another magic");
        ByteBuffer crc = ByteBuffer.wrap(want.array().clone()).order(ByteOrder.LITTLE_ENDIAN);
        crc.put(19, (byte) (crc.get(19) ^ 1));
        assertFalse(StoreFooter.valid(crc, rows), "a wrong CRC");
    }

    /**
     * No public field of the header is an array: {@code MAGIC} was a {@code public static final byte[]}, whose bytes any
     * caller could overwrite, and then every store written or opened in the JVM would have had the wrong magic.
     */
    @Test
    void noPublicFieldIsAMutableArray() {
        for (java.lang.reflect.Field f : StoreHeader.class.getFields()) {
            assertFalse(f.getType().isArray(), "public field StoreHeader." + f.getName() + " is an array any caller can change");
        }
    }

    /** {@link StoreHeader#magic()} is a copy: changing it changes neither the next copy nor the bytes a header is written with. */
    @Test
    void theMagicIsACopyThatCannotChangeWhatIsWritten() {
        byte[] m = StoreHeader.magic();
        assertArrayEquals("D4JSTORE".getBytes(StandardCharsets.US_ASCII), m);
        Arrays.fill(m, (byte) 'X');
        assertArrayEquals("D4JSTORE".getBytes(StandardCharsets.US_ASCII), StoreHeader.magic());
        StoreHeader h = new StoreHeader(StoreHeader.Layout.DENSE, ValueCodec.F32, StoreHeader.ValueKind.LOGITS, 3, 0, 5, 2, 1, "{}");
        byte[] head = new byte[8];
        h.encode().get(head);
        assertArrayEquals("D4JSTORE".getBytes(StandardCharsets.US_ASCII), head);
        assertEquals(h, StoreHeader.decode(h.encode(), "copy.d4js"));
    }
}
