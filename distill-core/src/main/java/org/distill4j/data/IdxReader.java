package org.distill4j.data;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PushbackInputStream;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * Reads IDX files, the format of MNIST and Fashion-MNIST, gzip-compressed or raw (detected from the
 * content, not the file name).
 *
 * <p>Format: a 4-byte magic {@code 0x00 0x00 type dims} with type {@code 0x08} (unsigned byte; the
 * only type these datasets use), then {@code dims} big-endian int32 sizes, then the data. Images
 * ({@code dims = 3}: count, rows, cols) become floats in {@code [0, 1]} (byte / 255); labels
 * ({@code dims = 1}) become ints. The data must end where the header's sizes say (more bytes are an error, not
 * ignored), and a gzip file is read to its end so its CRC32 is checked. Every error names the source and what was
 * expected.
 */
public final class IdxReader {
    private IdxReader() {
    }

    /** Images: {@code [count, rows * cols]} row-major floats scaled to [0, 1]. */
    public record Images(float[] pixels, int count, int rows, int cols) {
        /** The number of pixels per image, {@code rows * cols}: the features per sample of a {@link Dataset} made from them. */
        public int featureCount() {
            return rows * cols;
        }
    }

    /** Reads an idx3 image file. */
    public static Images readImages(InputStream in, String source) throws IOException {
        try (DataInputStream d = open(in, source)) {
            int[] dims = header(d, source, 3, "images (idx3)");
            // each product of two sizes (< 2^31 each) fits a long; the three at once could wrap around (to a negative count,
            // or to the body's real length), and one image's size is an int (featureCount) even when there are no images
            long perImage = (long) dims[1] * dims[2];
            long n = perImage * dims[0];
            if (perImage > Integer.MAX_VALUE - 8 || n > Integer.MAX_VALUE - 8) {
                throw new IOException(source + ": " + dims[0] + " images of " + dims[1] + "x" + dims[2] + " is too large");
            }
            String what = "pixel bytes (" + dims[0] + " images of " + dims[1] + "x" + dims[2] + ")";
            byte[] raw = readBody(d, (int) n, source, what);
            expectEnd(d, source, what);
            float[] px = new float[raw.length];
            for (int i = 0; i < raw.length; i++) {
                px[i] = (raw[i] & 0xff) / 255f;
            }
            return new Images(px, dims[0], dims[1], dims[2]);
        } catch (ZipException e) {
            throw corrupt(source, e);
        }
    }

    /** Reads an idx1 label file. */
    public static int[] readLabels(InputStream in, String source) throws IOException {
        try (DataInputStream d = open(in, source)) {
            int[] dims = header(d, source, 1, "labels (idx1)");
            String what = "label bytes (" + dims[0] + " labels)";
            byte[] raw = readBody(d, dims[0], source, what);
            expectEnd(d, source, what);
            int[] out = new int[raw.length];
            for (int i = 0; i < raw.length; i++) {
                out[i] = raw[i] & 0xff;
            }
            return out;
        } catch (ZipException e) {
            throw corrupt(source, e);
        }
    }

    /** A gzip stream that does not inflate or fails its CRC32 / length check, named. */
    private static IOException corrupt(String source, ZipException e) {
        return new IOException(source + ": corrupt gzip data (" + e.getMessage() + ")", e);
    }

    /**
     * Checks that the data ends where the header says. For gzip this also reads the trailer, so its CRC32 and length
     * are verified: a changed byte in the compressed data fails here instead of becoming a wrong pixel or label.
     */
    private static void expectEnd(DataInputStream d, String source, String what) throws IOException {
        long extra;
        try {
            extra = d.transferTo(OutputStream.nullOutputStream());
        } catch (EOFException e) {
            throw new IOException(source + ": truncated: the stream ended early after the " + what, e);
        }
        if (extra > 0) {
            throw new IOException(source + ": " + extra + " more bytes after the " + what
                    + " the header declares: the header and the data disagree");
        }
    }

    private static DataInputStream open(InputStream in, String source) throws IOException {
        PushbackInputStream pb = new PushbackInputStream(new BufferedInputStream(in, 1 << 16), 2);
        int b0 = pb.read();
        int b1 = pb.read();
        if (b1 >= 0) {
            pb.unread(b1);
        }
        if (b0 >= 0) {
            pb.unread(b0);
        }
        InputStream body;
        try {
            body = (b0 == 0x1f && b1 == 0x8b) ? new GZIPInputStream(pb, 1 << 16) : pb;
        } catch (EOFException e) {
            throw new IOException(source + ": truncated in the gzip header", e);
        }
        return new DataInputStream(new BufferedInputStream(body, 1 << 16));
    }

    private static int[] header(DataInputStream d, String source, int expectedDims, String what) throws IOException {
        byte[] magic = new byte[4];
        readFully(d, magic, source, "the 4-byte magic number");
        if (magic[0] != 0 || magic[1] != 0) {
            throw new IOException(source + ": not an IDX file (magic " + hex(magic) + ", expected 00 00 08 0"
                    + expectedDims + " for " + what + ")");
        }
        if (magic[2] != 0x08) {
            throw new IOException(source + ": IDX data type 0x" + String.format("%02x", magic[2])
                    + " is not supported, expected 0x08 (unsigned byte)");
        }
        if (magic[3] != expectedDims) {
            throw new IOException(source + ": IDX file has " + magic[3] + " dimensions (magic " + hex(magic)
                    + "), expected " + expectedDims + " for " + what);
        }
        int[] dims = new int[expectedDims];
        for (int i = 0; i < expectedDims; i++) {
            try {
                dims[i] = d.readInt();
            } catch (EOFException e) {
                throw new IOException(source + ": truncated in the header (dimension " + (i + 1) + " of " + expectedDims + ")", e);
            }
            if (dims[i] < 0) {
                throw new IOException(source + ": dimension " + (i + 1) + " is negative (" + dims[i] + ")");
            }
        }
        return dims;
    }

    /**
     * Reads the data body. The header's sizes are not trusted for allocation: the bytes are read as they
     * come (readNBytes grows its buffer), so a corrupt header declaring billions of values gives a
     * "truncated" error instead of an OutOfMemoryError.
     */
    private static byte[] readBody(DataInputStream d, int n, String source, String what) throws IOException {
        byte[] body;
        try {
            body = d.readNBytes(n);
        } catch (EOFException e) {
            throw new IOException(source + ": truncated: expected " + n + " " + what + ", the stream ended early", e);
        }
        if (body.length < n) {
            throw new IOException(source + ": truncated: expected " + n + " " + what + ", found " + body.length);
        }
        return body;
    }

    private static void readFully(DataInputStream d, byte[] buf, String source, String what) throws IOException {
        int off = 0;
        while (off < buf.length) {
            int n;
            try {
                n = d.read(buf, off, buf.length - off);
            } catch (EOFException e) {
                n = -1; // gzip streams cut short report EOF this way
            }
            if (n < 0) {
                throw new IOException(source + ": truncated: expected " + buf.length + " " + what + ", found " + off);
            }
            off += n;
        }
    }

    private static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < b.length; i++) {
            if (i > 0) {
                sb.append(' ');
            }
            sb.append(String.format("%02x", b[i] & 0xff));
        }
        return sb.toString();
    }
}
