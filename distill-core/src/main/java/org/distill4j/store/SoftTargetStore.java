package org.distill4j.store;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * A complete soft-target store, memory-mapped read-only: rows by sample index, dense or top-k.
 *
 * <p>Opening checks the magic, version, header checksum, the exact file size and the footer (so a
 * truncated or unfinished file is refused with what is wrong). Each chunk is checked the first time one
 * of its rows is read: that the file still holds it, its CRC32C, and its rows (dense values finite or
 * {@code -Infinity}, the zero mass of a masked or padded class, with one finite value a row; see
 * {@link RowCheck}); {@link #verify()} checks them all and reports instead of throwing. Many threads (and
 * processes) may read one store at once, and interrupting a reading thread (to cancel its job) neither fails its read
 * nor closes the store under the others: after {@link #open}, no file operation runs on a caller's thread where an
 * interrupt would close the file (a {@code FileChannel} closes itself when an interrupted thread uses it).
 *
 * <p>The file is mapped in windows of up to {@value #WINDOW_BYTES} bytes, each holding as many whole
 * chunks as fit (one, when a chunk is larger), mapped the first time one of their rows is read. So a
 * store of many small chunks takes few mappings: one per chunk would run into the kernel's limit
 * ({@code vm.max_map_count}, 65,530 by default on Linux) at 65,530 chunks.
 */
public final class SoftTargetStore implements AutoCloseable {
    /** The largest window mapped at once (a mapping holds at most 2 GiB). */
    static final long WINDOW_BYTES = 1L << 30;

    private final Path path;
    private final RandomAccessFile file;   // its length() is not interruptible, unlike the channel's size()
    private final FileChannel channel;     // the file's: mapped (and read by verify) on a thread of its own
    private final StoreHeader header;
    private final long chunkStride;        // bytes from one chunk to the next: its rows and its CRC
    private final long chunksPerWindow;
    private final AtomicReferenceArray<MappedByteBuffer> windows;
    private final AtomicLongArray verified; // one bit per chunk

    private SoftTargetStore(Path path, RandomAccessFile file, StoreHeader header, long windowBytes) {
        this.path = path;
        this.file = file;
        this.channel = file.getChannel();
        this.header = header;
        this.chunkStride = (long) header.chunkRows() * header.rowBytes() + 4;
        this.chunksPerWindow = Math.max(1, windowBytes / chunkStride);
        this.windows = new AtomicReferenceArray<>(Math.toIntExact((header.chunks() + chunksPerWindow - 1) / chunksPerWindow));
        this.verified = new AtomicLongArray(Math.toIntExact((header.chunks() + 63) / 64));
    }

    /** Opens a complete store. */
    public static SoftTargetStore open(Path path) throws IOException {
        return open(path, WINDOW_BYTES);
    }

    /** Opens a complete store, mapping it in windows of at most {@code windowBytes} (tests use small windows). */
    static SoftTargetStore open(Path path, long windowBytes) throws IOException {
        if (windowBytes <= 0 || windowBytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("window bytes must be in [1, " + Integer.MAX_VALUE + "], got " + windowBytes);
        }
        if (!Files.exists(path)) {
            Path partial = StoreWriter.partialPath(path);
            if (Files.exists(partial)) {
                throw new StoreFormatException(path + " is not complete: labeling stopped before the end (" + partial
                        + " exists); run the labeling job again to resume it");
            }
            throw new NoSuchFileException(path.toString(), null, "no soft-target store there");
        }
        RandomAccessFile file = new RandomAccessFile(path.toFile(), "r");
        FileChannel ch = file.getChannel();
        try {
            // off this thread, as every read of the store: an interrupt (a job being cancelled) would close the channel
            // and fail the open with a bare ClosedByInterruptException; the caller's own check decides what it means
            StoreHeader h = offThread(path, () -> {
                long size = ch.size();
                StoreHeader header = StoreHeader.read(ch, size, path.toString()); // the fixed part, then the length it declares
                long expected = header.completeSize();
                if (size < expected) {
                    throw new StoreFormatException(path + ": truncated: " + size + " bytes, a complete store of " + header.rows()
                            + " rows has " + expected);
                }
                if (size > expected) {
                    throw new StoreFormatException(path + ": " + (size - expected) + " unexpected bytes after the footer");
                }
                ByteBuffer footer = StoreHeader.readAt(ch, expected - StoreFooter.BYTES, StoreFooter.BYTES);
                if (!StoreFooter.valid(footer, header.rows())) {
                    throw new StoreFormatException(path + ": the footer is missing or corrupt: the store is incomplete");
                }
                return header;
            });
            return new SoftTargetStore(path, file, h, windowBytes);
        } catch (Throwable e) { // an Error too (no thread for the read, out of memory): the file must not stay open
            try {
                file.close();
            } catch (IOException closing) {
                e.addSuppressed(closing); // the open's own failure says what went wrong
            }
            throw e;
        }
    }

    /** The store's header, as read and checked when it was opened: layout, codec, sizes and the teacher's provenance. */
    public StoreHeader header() {
        return header;
    }

    /** The number of rows (samples) in the store, {@code > 0}: the header's {@link StoreHeader#rows()}. */
    public long rows() {
        return header.rows();
    }

    /** The store's file, as given to {@link #open}. */
    public Path path() {
        return path;
    }

    /** How many windows the file is mapped in, when all are mapped. */
    int windows() {
        return windows.length();
    }

    /** How many windows are mapped now. */
    int mappedWindows() {
        int n = 0;
        for (int w = 0; w < windows.length(); w++) {
            n += windows.get(w) == null ? 0 : 1;
        }
        return n;
    }

    /** Window {@code w}, mapped on first use: chunks {@code [w * chunksPerWindow, ...)}, whole. */
    private MappedByteBuffer window(int w) {
        MappedByteBuffer m = windows.get(w);
        if (m == null) {
            long first = w * chunksPerWindow;
            long last = Math.min(header.chunks(), first + chunksPerWindow) - 1;
            long from = header.chunkOffset(first);
            long to = header.chunkOffset(last) + header.rowsInChunk(last) * header.rowBytes() + 4;
            try {
                m = offThread(() -> channel.map(FileChannel.MapMode.READ_ONLY, from, to - from));
            } catch (IOException e) {
                requireOpen(); // closed by another thread since this read began: not a fault of the file
                throw new java.io.UncheckedIOException(path + ": cannot map chunks " + first + " to " + last + " (bytes " + from
                        + " to " + to + ")", e);
            }
            windows.compareAndSet(w, null, m);
            m = windows.get(w);
        }
        return m;
    }

    /** Chunk {@code c}'s rows and CRC as mapped, little-endian, starting at 0 (not verified). */
    private ByteBuffer slice(long c) {
        int w = (int) (c / chunksPerWindow);
        int at = (int) ((c - w * chunksPerWindow) * chunkStride);
        int n = (int) (header.rowsInChunk(c) * header.rowBytes());
        return window(w).slice(at, n + 4).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Chunk {@code c}'s rows and CRC, verified on first use, little-endian, starting at 0. */
    private ByteBuffer chunk(long c) {
        int word = (int) (c >>> 6);
        long bit = 1L << (c & 63);
        if ((verified.get(word) & bit) != 0) {
            return slice(c);
        }
        String problem = check(c);
        if (problem != null) {
            throw new StoreFormatException(problem);
        }
        verified.getAndUpdate(word, v -> v | bit);
        return slice(c);
    }

    /**
     * What is wrong with chunk {@code c}, or null: the file no longer holds it (truncated or replaced since it was
     * opened: mapping past the end of the file fails, and reading a mapping past it kills the JVM in the CRC32C
     * intrinsic, so this is checked first), its checksum, or its rows ({@link RowCheck}).
     */
    private String check(long c) {
        int n = (int) (header.rowsInChunk(c) * header.rowBytes());
        long end = header.chunkOffset(c) + n + 4;
        long size;
        try {
            size = file.length();
        } catch (IOException e) {
            requireOpen(); // closed by another thread since this read began: not a fault of the file
            return chunkName(c) + ": cannot read the file's size: " + e;
        }
        if (size < end) {
            return chunkName(c) + ": the file is now " + size + " bytes, it ends before this chunk does (byte " + end
                    + "): it was truncated or replaced after it was opened (a complete store has " + header.completeSize() + ")";
        }
        ByteBuffer b = slice(c);
        if (b.getInt(n) != Crc32c.of(b, 0, n)) {
            long first = c * header.chunkRows();
            return path + ": checksum mismatch in chunk " + c + " (rows " + first + " to " + (first + header.rowsInChunk(c) - 1)
                    + "): the file is corrupt";
        }
        String rows = RowCheck.check(header, b, header.rowsInChunk(c), c * header.chunkRows());
        return rows == null ? null : chunkName(c) + ": " + rows + " (the chunk's checksum holds: it was written so)";
    }

    /** "path: chunk c (rows a to b)", for messages. */
    private String chunkName(long c) {
        long first = c * header.chunkRows();
        return path + ": chunk " + c + " (rows " + first + " to " + (first + header.rowsInChunk(c) - 1) + ")";
    }

    private long chunkOf(long row) {
        if (row < 0 || row >= header.rows()) {
            throw new IllegalArgumentException(path + ": row " + row + " is out of range; the store has " + header.rows() + " rows");
        }
        return row / header.chunkRows();
    }

    /** @throws IllegalStateException when the store is closed */
    private void requireOpen() {
        if (!channel.isOpen()) {
            throw new IllegalStateException(path + " is closed");
        }
    }

    /** The (verified) chunk holding {@code row}, positioned at the row's first byte. */
    private ByteBuffer rowChunk(long row) {
        requireOpen(); // else a chunk read before is served from its mapping, one not read yet looks corrupt
        long c = chunkOf(row);
        ByteBuffer b = chunk(c);
        b.position((int) ((row - c * header.chunkRows()) * header.rowBytes()));
        return b;
    }

    /** The length of an array of {@code rows x per} values, or an error naming the store and the shape when one cannot hold them. */
    private int arrayLength(int rows, int per, String what) {
        long n = (long) rows * per;
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(path + ": " + rows + " rows of " + per + " " + what + " are " + n + " values, more than "
                    + "one array holds (" + (Integer.MAX_VALUE - 8) + "); read fewer rows at a time");
        }
        return (int) n;
    }

    /**
     * Dense rows for the given sample indices, {@code n x vocab}, row-major.
     *
     * @throws IllegalArgumentException naming the store when an index is out of range, or {@code n x vocab} is more
     *                                  values than one array holds
     * @throws IllegalStateException    when the store is closed
     */
    public float[] dense(int[] indices) {
        if (header.layout() != StoreHeader.Layout.DENSE) {
            throw new IllegalStateException(path + " holds top-k rows (k = " + header.k() + "); read them with topK");
        }
        int v = header.vocab();
        ValueCodec codec = header.codec();
        float[] out = new float[arrayLength(indices.length, v, "classes")];
        for (int i = 0; i < indices.length; i++) {
            ByteBuffer b = rowChunk(indices[i]);
            int base = b.position();
            for (int j = 0; j < v; j++) {
                out[i * v + j] = codec.get(b, base + j * codec.bytes());
            }
        }
        return out;
    }

    /**
     * Top-k rows for the given sample indices: ids and log-probabilities, {@code n x k} each.
     *
     * @throws IllegalArgumentException naming the store when an index is out of range, or {@code n x k} is more values
     *                                  than one array holds
     * @throws IllegalStateException    when the store is closed
     */
    public TopKRows topK(int[] indices) {
        if (header.layout() != StoreHeader.Layout.TOP_K) {
            throw new IllegalStateException(path + " holds dense rows; read them with dense");
        }
        int k = header.k();
        int idBytes = header.idBytes();
        ValueCodec codec = header.codec();
        int[] ids = new int[arrayLength(indices.length, k, "entries")];
        float[] lps = new float[ids.length];
        for (int i = 0; i < indices.length; i++) {
            ByteBuffer b = rowChunk(indices[i]);
            int base = b.position();
            for (int j = 0; j < k; j++) {
                int id = 0;
                int at = base + j * idBytes;
                for (int byteIndex = 0; byteIndex < idBytes; byteIndex++) {
                    id |= (b.get(at + byteIndex) & 0xff) << (8 * byteIndex);
                }
                ids[i * k + j] = id;
                lps[i * k + j] = codec.get(b, base + k * idBytes + j * codec.bytes());
            }
        }
        return new TopKRows(ids, lps, k);
    }

    /**
     * Copies the stored bytes of the given rows, as they are on disk ({@link StoreHeader#rowBytes()} each,
     * little-endian, checksums verified), one after the other into {@code dst} from its position, which
     * advances. This is what a GPU stages: top-k rows stay compact ({@code k x (idBytes + value bytes)})
     * until a kernel unpacks them on the device.
     *
     * @return the bytes copied
     * @throws IllegalArgumentException when {@code dst} has too little room (naming how much is needed) or
     *                                  an index is out of range
     * @throws IllegalStateException    when the store is closed
     */
    public long copyRows(int[] indices, ByteBuffer dst) {
        long rowBytes = header.rowBytes();
        long need = rowBytes * indices.length;
        if (dst.remaining() < need) {
            throw new IllegalArgumentException(path + ": " + indices.length + " rows need " + need + " bytes, the buffer has "
                    + dst.remaining() + " left");
        }
        for (int index : indices) {
            ByteBuffer b = rowChunk(index);
            dst.put(b.slice(b.position(), (int) rowBytes));
        }
        return need;
    }

    /** Top-k rows: {@code n x k} ids and log-probabilities. */
    public record TopKRows(int[] ids, float[] logProbs, int k) {
    }

    /**
     * Checks every chunk: that the file still holds it, its checksum and its rows (dense values finite or -Infinity,
     * at least one finite per row; top-k ids in range and distinct, log-probabilities finite and at most 0, their
     * probabilities summing to at most 1 within 0.01); then that
     * the file still ends with the footer at the size it was opened with. Chunks read before are checked again (the
     * file may have changed since). Nothing about the file escapes as an exception (an I/O error or a fault in the
     * mapping included): each problem is a message naming the file and the chunk (its rows, and the row and class of a
     * bad value) or the footer, one per bad chunk.
     *
     * @return the problems, empty when the store is good
     * @throws IllegalStateException when the store is closed
     */
    public List<String> verify() {
        requireOpen();
        List<String> problems = new ArrayList<>();
        for (long c = 0; c < header.chunks(); c++) {
            try {
                String problem = check(c); // again, if read before: the file may have changed since
                if (problem != null) {
                    problems.add(problem);
                } else {
                    long bit = 1L << (c & 63);
                    verified.getAndUpdate((int) (c >>> 6), v -> v | bit);
                }
            } catch (java.io.UncheckedIOException e) { // mapping the chunk's window failed
                problems.add(chunkName(c) + ": cannot be read: " + e.getMessage() + ": " + e.getCause());
            } catch (InternalError e) {
                // HotSpot's report of a fault in mapped memory (SIGBUS): an I/O error, or the file shrank meanwhile
                problems.add(chunkName(c) + ": cannot be read: " + e.getMessage());
            }
        }
        try {
            long size = file.length();
            long expected = header.completeSize();
            long footerAt = expected - StoreFooter.BYTES;
            if (size > expected) {
                problems.add(path + ": " + (size - expected) + " unexpected bytes after the footer (the file is now " + size
                        + " bytes, a complete store has " + expected + ")");
            } else if (size < expected) {
                // at footerAt every chunk is whole and the footer is all gone; shorter still, the chunks it cuts are named above
                if (size >= footerAt) {
                    problems.add(path + ": truncated in the footer: the file is now " + size + " bytes, a complete store has "
                            + expected);
                }
            } else {
                ByteBuffer footer = offThread(() -> StoreHeader.readAt(channel, footerAt, StoreFooter.BYTES));
                if (!StoreFooter.valid(footer, header.rows())) {
                    problems.add(path + ": the footer (bytes " + footerAt + " to " + expected + ") is corrupt: expected "
                            + "'D4JEND', the row count " + header.rows() + " and their CRC32C");
                }
            }
        } catch (IOException e) {
            requireOpen();
            problems.add(path + ": cannot read the footer: " + e);
        }
        return problems;
    }

    /**
     * Opens and verifies the store at {@code path} ({@link #verify()}), reporting instead of throwing: a file that cannot
     * be opened (missing, unfinished, not a store, another version, a corrupt header, truncated, no footer) or read
     * gives one message naming the file and what is wrong; otherwise the messages of {@link #verify()}.
     *
     * @return the problems, empty when the store is good
     */
    public static List<String> verify(Path path) {
        try (SoftTargetStore s = open(path)) {
            return s.verify();
        } catch (StoreFormatException e) {
            return List.of(e.getMessage());
        } catch (NoSuchFileException e) {
            return List.of(path + ": no soft-target store there");
        } catch (IOException | java.io.UncheckedIOException e) {
            return List.of(path + ": cannot be read: " + e);
        }
    }

    /** A file operation that may throw. */
    private interface FileCall<T> {
        T run() throws IOException;
    }

    /**
     * Runs {@code call} on a thread of its own and waits for it, so that an interrupt of the calling thread (a job being
     * cancelled) cannot close the channel that every reader of this store shares. The caller's interrupt status is kept.
     * For the rare operations (opening, mapping a window, verify's footer); a chunk's first read asks only the file's length.
     */
    private <T> T offThread(FileCall<T> call) throws IOException {
        return offThread(path, call);
    }

    /** {@link #offThread(FileCall)} for the store at {@code path}, before it is open. */
    private static <T> T offThread(Path path, FileCall<T> call) throws IOException {
        FutureTask<T> task = new FutureTask<>(call::run);
        Thread t = new Thread(task, "distill-store-io");
        t.setDaemon(true);
        t.start();
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return task.get();
                } catch (InterruptedException e) {
                    interrupted = true; // the operation is short: wait for it
                }
            }
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof IOException io) {
                throw io;
            }
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            if (cause instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException(path + ": " + cause, cause); // not reached: a FileCall throws nothing else
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
