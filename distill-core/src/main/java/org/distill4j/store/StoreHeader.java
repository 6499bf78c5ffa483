package org.distill4j.store;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * The header of a soft-target store (format version {@value #VERSION}; see
 * {@code distill-core/docs/store-format.md}): what the rows hold, how many, in which chunks, and the
 * teacher's provenance.
 *
 * @param layout      dense rows or sparse top-k rows
 * @param codec       how values are encoded
 * @param values      what the values are: logits or log-probabilities
 * @param vocab       classes per row
 * @param k           entries per top-k row (0 for dense)
 * @param rows        rows of the complete store
 * @param chunkRows   rows per checksummed chunk
 * @param temperature the temperature the values were computed at: 1 for every store {@link Labeler} and {@link StoreImport}
 *                    write; {@link StoredTeacher#of} refuses a store of any other (a teacher serves its T = 1 values,
 *                    which the loss softens at its own temperature), so a store of values computed at T = 4 cannot be
 *                    trained from as if they were T = 1 values
 * @param provenance  the teacher's provenance as JSON (model id/hash, settings); compared on resume
 */
public record StoreHeader(Layout layout, ValueCodec codec, ValueKind values, int vocab, int k, long rows, int chunkRows,
                          double temperature, String provenance) {
    /** The 8 magic bytes at offset 0; private, as an array's elements cannot be final ({@link #magic()} gives a copy). */
    private static final byte[] MAGIC = "D4JSTORE".getBytes(StandardCharsets.US_ASCII);
    /** The format version this code writes and reads. */
    public static final int VERSION = 1;

    /**
     * The 8 magic bytes at offset 0 ({@code D4JSTORE} in ASCII): a new copy on every call, so that no caller can change the
     * bytes the store reader and writer check and write.
     */
    public static byte[] magic() {
        return MAGIC.clone();
    }
    /** Data starts at a multiple of this. */
    static final int ALIGN = 4096;
    /** Bytes before the provenance; the provenance length is the int at {@link #PROVENANCE_LENGTH_AT}. */
    static final int FIXED = 52;
    static final int PROVENANCE_LENGTH_AT = 48;
    /**
     * The longest provenance (UTF-8 bytes) a store may carry: the writer refuses a longer one, so that every
     * store written can be read ({@link SoftTargetStore#open} and a resume read the declared length up to this).
     */
    public static final int MAX_PROVENANCE_BYTES = 1 << 20;

    /** Dense rows or top-k rows. */
    public enum Layout {
        /** Every row holds all {@code vocab} values, finite or {@code -Infinity} (a class of zero mass). */
        DENSE,
        /**
         * Every row holds {@code k} distinct class ids, best first, followed by their log-probabilities; the classes not
         * listed are unknown.
         */
        TOP_K
    }

    /** What stored values are. */
    public enum ValueKind {
        /** The teacher's logits (dense stores only). */
        LOGITS,
        /** Natural-log probabilities, each {@code <= 0} up to rounding; what every top-k store holds. */
        LOG_PROBS
    }

    /**
     * Checks the header's fields against each other and against what a store file can hold.
     *
     * @throws NullPointerException     if {@code layout}, {@code codec}, {@code values} or {@code provenance} is null
     * @throws IllegalArgumentException when {@code vocab}, {@code rows} or {@code chunkRows} is not {@code > 0}; when
     *                                  {@code k} is not in {@code [1, vocab]} for a top-k layout or not 0 for a dense one;
     *                                  when a top-k store would hold logits; when the temperature is not a finite number
     *                                  {@code > 0}; when a chunk would exceed 2 GB; when the provenance is longer than
     *                                  {@link #MAX_PROVENANCE_BYTES} in UTF-8; or when the whole store would be larger than
     *                                  {@code 2^63} bytes
     */
    public StoreHeader {
        Objects.requireNonNull(layout, "layout");
        Objects.requireNonNull(codec, "codec");
        Objects.requireNonNull(values, "values");
        Objects.requireNonNull(provenance, "provenance");
        if (vocab <= 0) {
            throw new IllegalArgumentException("store vocab must be > 0, got " + vocab);
        }
        if (layout == Layout.TOP_K ? (k <= 0 || k > vocab) : k != 0) {
            throw new IllegalArgumentException("store k is " + k + (layout == Layout.TOP_K ? ", expected 1 <= k <= vocab (" + vocab + ")"
                    : ", expected 0 for dense rows"));
        }
        if (layout == Layout.TOP_K && values != ValueKind.LOG_PROBS) {
            throw new IllegalArgumentException("top-k stores hold log-probabilities, not logits");
        }
        if (rows <= 0 || chunkRows <= 0) {
            throw new IllegalArgumentException("store rows and chunkRows must be > 0, got " + rows + " and " + chunkRows);
        }
        if (!(temperature > 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("store temperature must be finite and > 0, got " + temperature);
        }
        if ((long) chunkRows * rowBytes(layout, codec, vocab, k) > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("a chunk of " + chunkRows + " rows exceeds 2 GB; use fewer chunk rows");
        }
        int provenanceBytes = provenance.getBytes(StandardCharsets.UTF_8).length;
        if (provenanceBytes > MAX_PROVENANCE_BYTES) {
            throw new IllegalArgumentException("store provenance is " + provenanceBytes + " bytes (UTF-8), more than the "
                    + MAX_PROVENANCE_BYTES + " a store can hold; shorten the teacher's id or description");
        }
        // the complete size must be a long: a row count (read from a damaged or hostile header) whose size wraps around
        // could equal a small file's size, and the reader sizes its tables by the row count
        long chunks = (rows - 1) / chunkRows + 1;
        try {
            Math.addExact(Math.multiplyExact(chunks, (long) chunkRows * rowBytes(layout, codec, vocab, k) + 4),
                    headerBytes(provenanceBytes) + ALIGN + StoreFooter.BYTES);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("a store of " + rows + " rows of " + rowBytes(layout, codec, vocab, k)
                    + " bytes is larger than a file can be (2^63 bytes)");
        }
    }

    /** Bytes per id in a top-k row: 2 up to 65,536 classes, 3 up to 16,777,216, else 4; 0 for dense. */
    public int idBytes() {
        return idBytes(layout, vocab);
    }

    static int idBytes(Layout layout, int vocab) {
        if (layout == Layout.DENSE) {
            return 0;
        }
        return vocab <= 1 << 16 ? 2 : vocab <= 1 << 24 ? 3 : 4;
    }

    /** Bytes per row on disk. */
    public long rowBytes() {
        return rowBytes(layout, codec, vocab, k);
    }

    static long rowBytes(Layout layout, ValueCodec codec, int vocab, int k) {
        return layout == Layout.DENSE ? (long) vocab * codec.bytes() : (long) k * (idBytes(layout, vocab) + codec.bytes());
    }

    /** Number of chunks of the complete store. */
    public long chunks() {
        return (rows + chunkRows - 1) / chunkRows;
    }

    /** Rows in chunk {@code c} (the last one may be shorter). */
    public int rowsInChunk(long c) {
        return (int) Math.min(chunkRows, rows - c * chunkRows);
    }

    /** Where the data starts: the header, padded to {@value #ALIGN} bytes. */
    public long dataOffset() {
        long headerBytes = headerBytes(provenanceBytes().length);
        return (headerBytes + ALIGN - 1) / ALIGN * ALIGN;
    }

    /** The bytes of a header (before padding) with a provenance of {@code provenanceLength} bytes. */
    static long headerBytes(long provenanceLength) {
        return FIXED + provenanceLength + 4;
    }

    /** Byte offset of chunk {@code c}: every full chunk is its rows plus a 4-byte CRC32C. */
    public long chunkOffset(long c) {
        return dataOffset() + c * ((long) chunkRows * rowBytes() + 4);
    }

    /** The size of a complete store file: header, chunks, footer. */
    public long completeSize() {
        return chunkOffset(chunks() - 1) + rowsInChunk(chunks() - 1) * rowBytes() + 4 + StoreFooter.BYTES;
    }

    private byte[] provenanceBytes() {
        return provenance.getBytes(StandardCharsets.UTF_8);
    }

    /** The header bytes, padded to the data offset. */
    public ByteBuffer encode() {
        byte[] prov = provenanceBytes();
        ByteBuffer b = ByteBuffer.allocate((int) dataOffset()).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC);
        b.putShort((short) VERSION);
        b.put((byte) layout.ordinal());
        b.put((byte) codec.code());
        b.put((byte) values.ordinal());
        b.put((byte) idBytes());
        b.putShort((short) 0);
        b.putInt(vocab);
        b.putInt(k);
        b.putLong(rows);
        b.putInt(chunkRows);
        b.putInt(0);
        b.putDouble(temperature);
        b.putInt(prov.length);
        b.put(prov);
        b.putInt(Crc32c.of(b.array(), 0, b.position()));
        b.rewind();
        return b;
    }

    /**
     * Reads the header at the start of a file: the fixed part first, then the length it declares (at most
     * {@link #MAX_PROVENANCE_BYTES} of provenance), so a header is read whole whatever its length.
     *
     * @param size the file's size
     * @throws StoreFormatException naming {@code source} and what is wrong: not a store, another version, a
     *                              provenance length out of range, a file too short for its header, a bad checksum
     */
    static StoreHeader read(java.nio.channels.FileChannel ch, long size, String source) throws java.io.IOException {
        ByteBuffer fixed = readAt(ch, (int) Math.min(size, FIXED));
        checkFixed(fixed, source);
        int provLength = fixed.getInt(PROVENANCE_LENGTH_AT);
        if (provLength < 0 || provLength > MAX_PROVENANCE_BYTES) {
            throw new StoreFormatException(source + ": corrupt header: it declares a provenance of " + provLength + " bytes, expected 0 to "
                    + MAX_PROVENANCE_BYTES);
        }
        long headerBytes = headerBytes(provLength);
        if (size < headerBytes) {
            throw new StoreFormatException(source + ": truncated: " + size + " bytes, its header alone (with a provenance of "
                    + provLength + " bytes) has " + headerBytes);
        }
        return decode(readAt(ch, (int) headerBytes), source);
    }

    /** The first {@code n} bytes of a file, little-endian. */
    static ByteBuffer readAt(java.nio.channels.FileChannel ch, int n) throws java.io.IOException {
        return readAt(ch, 0, n);
    }

    /** The {@code n} bytes of a file from {@code offset}, little-endian. */
    static ByteBuffer readAt(java.nio.channels.FileChannel ch, long offset, int n) throws java.io.IOException {
        ByteBuffer b = ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            if (ch.read(b, offset + b.position()) < 0) {
                throw new java.io.EOFException("unexpected end of file after " + b.position() + " of " + n + " bytes from byte "
                        + offset);
            }
        }
        return b.flip();
    }

    /** Checks the fixed part's length, magic and version. */
    private static void checkFixed(ByteBuffer b, String source) {
        if (b.limit() < FIXED) {
            throw new StoreFormatException(source + ": truncated: " + b.limit() + " bytes, a store header needs at least " + FIXED);
        }
        byte[] magic = new byte[8];
        b.get(0, magic);
        if (!java.util.Arrays.equals(magic, MAGIC)) {
            throw new StoreFormatException(source + ": not a Distill4J soft-target store (magic '"
                    + new String(magic, StandardCharsets.ISO_8859_1).replaceAll("[^\\x20-\\x7e]", "?") + "', expected 'D4JSTORE')");
        }
        int version = b.getShort(8) & 0xffff;
        if (version != VERSION) {
            throw new StoreFormatException(source + ": store format version " + version + " is not supported; this Distill4J "
                    + "reads version " + VERSION);
        }
    }

    /**
     * Reads a header from the start of a file.
     *
     * @param head   the whole header: at least its first {@code 52 + P + 4} bytes (P, the provenance length, is the
     *               int at offset 48), little-endian
     * @param source the file, for errors
     */
    public static StoreHeader decode(ByteBuffer head, String source) {
        ByteBuffer b = head.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.position(0);
        checkFixed(b, source);
        b.position(10);
        int layout = b.get();
        int codec = b.get();
        int values = b.get();
        int idBytes = b.get();
        b.getShort();
        int vocab = b.getInt();
        int k = b.getInt();
        long rows = b.getLong();
        int chunkRows = b.getInt();
        b.getInt();
        double temperature = b.getDouble();
        int provLength = b.getInt();
        if (provLength < 0 || provLength > MAX_PROVENANCE_BYTES || provLength > b.remaining() - 4) {
            throw new StoreFormatException(source + ": truncated or corrupt header (provenance of " + provLength + " bytes)");
        }
        byte[] prov = new byte[provLength];
        b.get(prov);
        int crc = b.getInt();
        if (crc != Crc32c.of(head, 0, FIXED + provLength)) {
            throw new StoreFormatException(source + ": header checksum mismatch: the header is corrupt");
        }
        if (layout < 0 || layout > 1 || values < 0 || values > 1) {
            throw new StoreFormatException(source + ": corrupt header (layout " + layout + ", value kind " + values + ")");
        }
        String provenance;
        try { // strictly: replacement characters would make another provenance, of another length (and data offset)
            provenance = StandardCharsets.UTF_8.newDecoder().onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                    .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT).decode(ByteBuffer.wrap(prov)).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new StoreFormatException(source + ": corrupt header: the provenance (bytes " + FIXED + " to " + (FIXED + provLength)
                    + ") is not UTF-8 text");
        }
        StoreHeader h;
        try {
            h = new StoreHeader(Layout.values()[layout], ValueCodec.fromCode(codec, source), ValueKind.values()[values], vocab, k,
                    rows, chunkRows, temperature, provenance);
        } catch (IllegalArgumentException e) {
            throw new StoreFormatException(source + ": corrupt header: " + e.getMessage());
        }
        if (h.idBytes() != idBytes) {
            throw new StoreFormatException(source + ": corrupt header (id bytes " + idBytes + ", expected " + h.idBytes() + ")");
        }
        return h;
    }
}
