package org.distill4j.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A NumPy {@code .npy} file (format versions 1 to 3) read as rows: the last axis is the row, every
 * leading axis is flattened into the row count, so {@code [N, V]} and {@code [batch, seq, V]} both
 * read as rows of V values. Only C-order arrays of plain numbers (floats of 2, 4 or 8 bytes, integers
 * of 1 to 8 bytes, either byte order) are read; anything else is refused with the file and what was
 * found. Rows are read on demand, so the file may be far larger than the heap.
 */
final class NpyArray implements AutoCloseable {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    /** The longest header read: NumPy pads headers to 64 bytes; this is far beyond any plain array's. */
    private static final int MAX_HEADER = 1 << 16;

    private final Path path;
    private final FileChannel channel;
    private final String descr;
    private final char kind;
    private final int itemBytes;
    private final ByteOrder order;
    private final long[] shape;
    private final long rows;
    private final int cols;
    private final long dataOffset;

    private NpyArray(Path path, FileChannel channel, String descr, long[] shape, long dataOffset) {
        this.path = path;
        this.channel = channel;
        this.descr = descr;
        this.shape = shape;
        this.dataOffset = dataOffset;
        char endian = descr.charAt(0);
        this.kind = descr.charAt(1);
        this.itemBytes = Integer.parseInt(descr.substring(2));
        this.order = endian == '>' ? ByteOrder.BIG_ENDIAN : endian == '<' ? ByteOrder.LITTLE_ENDIAN : ByteOrder.nativeOrder();
        long r = 1;
        for (int i = 0; i < shape.length - 1; i++) {
            try {
                r = Math.multiplyExact(r, shape[i]);
            } catch (ArithmeticException e) {
                throw new StoreFormatException(path + ": shape (" + join(shape) + ") has more than 2^63 rows");
            }
        }
        this.rows = r;
        this.cols = (int) shape[shape.length - 1];
    }

    /** Opens {@code path} and checks its header and size; the caller closes it. */
    static NpyArray open(Path path) throws IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
        try {
            return read(path, ch);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    private static NpyArray read(Path path, FileChannel ch) throws IOException {
        long size = ch.size();
        ByteBuffer start = readAt(ch, 0, (int) Math.min(size, 12));
        for (int i = 0; i < MAGIC.length; i++) {
            if (start.limit() <= i || start.get(i) != MAGIC[i]) {
                throw new StoreFormatException(path + ": not a NumPy .npy file (it does not start with \\x93NUMPY; "
                        + "write it with numpy.save)");
            }
        }
        if (start.limit() < 10) {
            throw new StoreFormatException(path + ": truncated .npy header (" + size + " bytes)");
        }
        int major = start.get(6) & 0xff;
        int headerLength;
        int headerStart;
        if (major == 1) {
            headerLength = start.order(ByteOrder.LITTLE_ENDIAN).getShort(8) & 0xffff;
            headerStart = 10;
        } else if (major == 2 || major == 3) {
            if (start.limit() < 12) {
                throw new StoreFormatException(path + ": truncated .npy header (" + size + " bytes)");
            }
            headerLength = start.order(ByteOrder.LITTLE_ENDIAN).getInt(8);
            headerStart = 12;
        } else {
            throw new StoreFormatException(path + ": .npy format version " + major + "." + (start.get(7) & 0xff)
                    + ", expected 1.0, 2.0 or 3.0");
        }
        if (headerLength < 0 || headerLength > MAX_HEADER || headerStart + (long) headerLength > size) {
            throw new StoreFormatException(path + ": .npy header of " + Integer.toUnsignedString(headerLength) + " bytes in a file of "
                    + size + " bytes: truncated or not a plain array");
        }
        String dict = StandardCharsets.UTF_8.decode(readAt(ch, headerStart, headerLength)).toString().trim();
        Header h = Header.parse(dict, path);
        long dataOffset = headerStart + (long) headerLength;
        NpyArray a = new NpyArray(path, ch, h.descr, h.shape, dataOffset);
        long expected;
        try {
            expected = Math.multiplyExact(Math.multiplyExact(a.rows, a.cols), a.itemBytes);
        } catch (ArithmeticException e) {
            throw new StoreFormatException(path + ": shape " + a.shapeText() + " of " + h.descr + " needs more than 2^63 bytes");
        }
        if (size - dataOffset != expected) {
            // more bytes than the array is as wrong as fewer: two arrays saved into one file would import the first silently
            throw new StoreFormatException(String.format(Locale.ROOT,
                    "%s: %s: shape %s of %s needs %,d bytes of data, the file holds %,d", path,
                    size - dataOffset < expected ? "truncated" : "bytes after the array (several arrays in one file? save one per file)",
                    a.shapeText(), h.descr, expected, size - dataOffset));
        }
        return a;
    }

    /** The parsed header dictionary: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }. */
    private record Header(String descr, long[] shape) {
        static Header parse(String dict, Path path) {
            String descr = null;
            Boolean fortran = null;
            long[] shape = null;
            Lexer lx = new Lexer(dict, path);
            lx.expect('{');
            while (!lx.peekIs('}')) {
                String key = lx.string();
                lx.expect(':');
                switch (key) {
                    case "descr" -> {
                        if (lx.peekIs('[')) {
                            throw new StoreFormatException(path + ": a structured array (descr " + lx.rest()
                                    + "); expected a plain numeric array");
                        }
                        descr = lx.string();
                    }
                    case "fortran_order" -> fortran = lx.bool();
                    case "shape" -> shape = lx.tuple();
                    default -> throw new StoreFormatException(path + ": unknown .npy header key '" + key + "' in " + dict);
                }
                if (!lx.peekIs('}')) {
                    lx.expect(',');
                }
            }
            lx.expect('}');
            if (!lx.rest().isBlank()) {
                throw new StoreFormatException(path + ": text after the .npy header's closing brace: " + dict);
            }
            if (descr == null || fortran == null || shape == null) {
                throw new StoreFormatException(path + ": the .npy header lacks descr, fortran_order or shape: " + dict);
            }
            if (fortran) {
                throw new StoreFormatException(path + ": a Fortran-order array; save a C-order copy "
                        + "(numpy.save(f, numpy.ascontiguousarray(a)))");
            }
            if (!descr.matches("[<>|=][fiu][1248]") || (descr.charAt(1) == 'f' && descr.charAt(2) == '1')) {
                throw new StoreFormatException(path + ": dtype '" + descr + "', expected float16/32/64 or an integer type");
            }
            if (shape.length < 2) {
                throw new StoreFormatException(path + ": shape (" + join(shape) + "), expected rows x values "
                        + "(at least 2 axes: [rows, V] or [batch, seq, V])");
            }
            if (shape[shape.length - 1] <= 0 || shape[shape.length - 1] > Integer.MAX_VALUE - 8) {
                throw new StoreFormatException(path + ": shape (" + join(shape) + "): the last axis must hold 1 to "
                        + (Integer.MAX_VALUE - 8) + " values");
            }
            return new Header(descr, shape);
        }
    }

    /** A tokenizer for the Python literal NumPy writes as the header. */
    private static final class Lexer {
        private final String s;
        private final Path path;
        private int i;

        Lexer(String s, Path path) {
            this.s = s;
            this.path = path;
        }

        private void skipSpace() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }

        boolean peekIs(char c) {
            skipSpace();
            return i < s.length() && s.charAt(i) == c;
        }

        void expect(char c) {
            if (!peekIs(c)) {
                throw fail("'" + c + "'");
            }
            i++;
        }

        String string() {
            skipSpace();
            if (i >= s.length() || (s.charAt(i) != '\'' && s.charAt(i) != '"')) {
                throw fail("a quoted string");
            }
            char q = s.charAt(i++);
            int end = s.indexOf(q, i);
            if (end < 0) {
                throw fail("a closing quote");
            }
            String v = s.substring(i, end);
            i = end + 1;
            return v;
        }

        boolean bool() {
            skipSpace();
            if (s.startsWith("True", i)) {
                i += 4;
                return true;
            }
            if (s.startsWith("False", i)) {
                i += 5;
                return false;
            }
            throw fail("True or False");
        }

        long[] tuple() {
            expect('(');
            List<Long> dims = new ArrayList<>();
            while (!peekIs(')')) {
                int from = i;
                while (i < s.length() && Character.isDigit(s.charAt(i))) {
                    i++;
                }
                if (from == i) {
                    throw fail("a dimension");
                }
                try {
                    dims.add(Long.parseLong(s.substring(from, i)));
                } catch (NumberFormatException e) {
                    throw fail("a dimension below 2^63");
                }
                if (!peekIs(')')) {
                    expect(',');
                }
            }
            i++;
            return dims.stream().mapToLong(Long::longValue).toArray();
        }

        String rest() {
            return s.substring(i);
        }

        private StoreFormatException fail(String expected) {
            return new StoreFormatException(path + ": malformed .npy header at character " + i + ": expected " + expected + " in " + s);
        }
    }

    private static String join(long[] shape) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < shape.length; i++) {
            b.append(i == 0 ? "" : ", ").append(shape[i]);
        }
        return shape.length == 1 ? b + "," : b.toString();
    }

    private static ByteBuffer readAt(FileChannel ch, long position, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b, position + b.position()) < 0) {
                throw new java.io.EOFException("unexpected end of file after " + (position + b.position()) + " bytes");
            }
        }
        return b.flip();
    }

    Path path() {
        return path;
    }

    /** Adds the header bytes to {@code crc}: with every row's bytes after them, the CRC of the whole file. */
    void crcHeader(java.util.zip.CRC32C crc) throws IOException {
        crc.update(readAt(channel, 0, (int) dataOffset));
    }

    /** Rows: the product of every axis but the last. */
    long rows() {
        return rows;
    }

    /** Values per row: the last axis. */
    int cols() {
        return cols;
    }

    /** The NumPy dtype string, e.g. {@code <f4}. */
    String descr() {
        return descr;
    }

    boolean isFloat() {
        return kind == 'f';
    }

    /** The shape as NumPy prints it, e.g. {@code (60000, 10)}. */
    String shapeText() {
        return "(" + join(shape) + ")";
    }

    /** Bytes of one row. */
    long rowBytes() {
        return (long) cols * itemBytes;
    }

    /**
     * Rows {@code [from, from + n)} as floats (integers converted exactly up to 2^24).
     *
     * @throws StoreFormatException naming the row and position of a finite float64 beyond the float32 range
     */
    float[] floats(long from, int n) throws IOException {
        return floats(from, n, null);
    }

    /** As {@link #floats(long, int)}, also adding the rows' raw bytes to {@code crc} (when not null). */
    float[] floats(long from, int n, java.util.zip.CRC32C crc) throws IOException {
        ByteBuffer b = rowBytesAt(from, n);
        if (crc != null) {
            crc.update(b.duplicate());
        }
        float[] out = new float[Math.multiplyExact(n, cols)];
        for (int i = 0; i < out.length; i++) {
            int at = i * itemBytes;
            out[i] = switch (kind) {
                case 'f' -> switch (itemBytes) {
                    case 2 -> ValueCodec.fromHalf(b.getShort(at));
                    case 4 -> b.getFloat(at);
                    default -> {
                        double d = b.getDouble(at);
                        float f = (float) d;
                        if (Float.isInfinite(f) && !Double.isInfinite(d)) {
                            throw new StoreFormatException(path + ": row " + (from + i / cols) + ", position " + (i % cols) + " holds "
                                    + d + ", beyond the float32 range (+-3.4e38)");
                        }
                        yield f;
                    }
                };
                default -> kind == 'u' && itemBytes == 8 ? unsignedFloat(b.getLong(at)) : (float) integer(b, at);
            };
        }
        return out;
    }

    /**
     * Rows {@code [from, from + n)} as ints: integer arrays only, each value checked to fit.
     *
     * @throws StoreFormatException naming the row and position of a value outside the int range
     */
    int[] ints(long from, int n) throws IOException {
        return ints(from, n, null);
    }

    /** As {@link #ints(long, int)}, also adding the rows' raw bytes to {@code crc} (when not null). */
    int[] ints(long from, int n, java.util.zip.CRC32C crc) throws IOException {
        if (kind == 'f') {
            throw new StoreFormatException(path + ": dtype '" + descr + "' holds floats; expected integer class ids");
        }
        ByteBuffer b = rowBytesAt(from, n);
        if (crc != null) {
            crc.update(b.duplicate());
        }
        int[] out = new int[Math.multiplyExact(n, cols)];
        for (int i = 0; i < out.length; i++) {
            long v = integer(b, i * itemBytes);
            if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
                String shown = kind == 'u' && itemBytes == 8 ? Long.toUnsignedString(b.getLong(i * itemBytes)) : Long.toString(v);
                throw new StoreFormatException(path + ": row " + (from + i / cols) + ", position " + (i % cols) + " holds " + shown
                        + ", outside the int range");
            }
            out[i] = (int) v;
        }
        return out;
    }

    /**
     * The float nearest the uint64 {@code bits}: integer() caps values from 2^63 on at Long.MAX_VALUE, right for ints()
     * (which refuses them), not for a float. Halved with the lost bit kept as a sticky bit, so the one rounding is correct.
     */
    private static float unsignedFloat(long bits) {
        return bits >= 0 ? (float) bits : (float) ((bits >>> 1) | (bits & 1)) * 2f;
    }

    private long integer(ByteBuffer b, int at) {
        boolean unsigned = kind == 'u';
        return switch (itemBytes) {
            case 1 -> unsigned ? b.get(at) & 0xffL : b.get(at);
            case 2 -> unsigned ? b.getShort(at) & 0xffffL : b.getShort(at);
            case 4 -> unsigned ? b.getInt(at) & 0xffffffffL : b.getInt(at);
            default -> {
                long v = b.getLong(at);
                yield unsigned && v < 0 ? Long.MAX_VALUE : v; // above 2^63: out of any range we accept
            }
        };
    }

    private ByteBuffer rowBytesAt(long from, int n) throws IOException {
        if (from < 0 || n < 0 || from + n > rows) {
            throw new IndexOutOfBoundsException("rows [" + from + ", " + (from + n) + ") of " + rows + " in " + path);
        }
        long bytes = n * rowBytes();
        if (bytes > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(n + " rows of " + rowBytes() + " bytes exceed 2 GB; read fewer at a time");
        }
        return readAt(channel, dataOffset + from * rowBytes(), (int) bytes).order(order);
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
