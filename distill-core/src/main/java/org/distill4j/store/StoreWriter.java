package org.distill4j.store;

import org.distill4j.loss.LossMath;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * Writes a soft-target store, crash-safe and resumable.
 *
 * <p>The store is built in {@code <path>.partial}: the header, then one chunk at a time (rows and
 * their CRC32C, synced to disk). {@link #finish()} appends the footer, syncs, and renames the file to
 * {@code <path>} atomically, so no half-written file ever carries the final name. Opening a writer
 * where a {@code .partial} file exists resumes it: the header must match exactly (same layout, sizes
 * and teacher provenance), every complete chunk is verified (its CRC and its rows, as the reader checks
 * them), anything after the last good chunk is cut, and {@link #rowsWritten()} says where to continue.
 * The finished file is byte-for-byte the one an uninterrupted run writes. Rows are appended in order; a
 * partly filled chunk is written only when it is full (or the last one). Rows are checked before they
 * are written ({@link #writeDense}, {@link #writeTopK}), so every store this writer finishes can be read. A writer
 * whose write failed (a full disk) refuses every further call, naming the file and the failure: the store on disk
 * resumes from its last complete chunk when it is opened again. Every failed write, sync or rename is an IOException
 * naming the {@code .partial} and saying so.
 *
 * <p>A writer holds an exclusive lock on its {@code .partial} until it is closed (an fcntl lock on Linux, which the
 * kernel drops when the process dies, even by {@code kill -9}): a second writer of the same store, in this process or
 * another, is refused and leaves the file as it is. {@link #finish()} renames the file before it lets go of the lock.
 */
public final class StoreWriter implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StoreWriter.class);
    private final Path path;
    private final Path partial;
    private final StoreHeader header;
    private final FileChannel channel;
    /** The rows of the chunk being filled, then its CRC32C: written to the file as it is. */
    private final ByteBuffer chunk;
    private final long rowBytes;
    private long rowsWritten;     // rows in complete chunks on disk
    private int rowsInBuffer;     // rows of the current chunk held in memory
    private boolean closed;
    private boolean finished;
    /** The failure of a chunk or footer write (a full disk): the writer takes nothing more after it. */
    private Throwable failed;

    private StoreWriter(Path path, Path partial, StoreHeader header, FileChannel channel, long rowsWritten) {
        this.path = path;
        this.partial = partial;
        this.header = header;
        this.channel = channel;
        this.rowBytes = header.rowBytes();
        this.chunk = ByteBuffer.allocate(chunkBytes(header)).order(ByteOrder.LITTLE_ENDIAN);
        this.rowsWritten = rowsWritten;
    }

    /**
     * Bytes of the largest chunk plus its CRC: {@code min(rows, chunkRows)} rows, so a chunk size far above the
     * store's rows costs nothing (the header keeps a chunk under 2 GB).
     */
    static int chunkBytes(StoreHeader header) {
        return Math.toIntExact(Math.min(header.rows(), header.chunkRows()) * header.rowBytes() + 4);
    }

    /** The chunk buffer's capacity in bytes (for tests). */
    int bufferBytes() {
        return chunk.capacity();
    }

    /** The file a store is built in before it is complete. */
    public static Path partialPath(Path path) {
        return path.resolveSibling(path.getFileName() + ".partial");
    }

    /**
     * Starts a new store at {@code path}, or resumes the interrupted one.
     *
     * @throws IllegalStateException    when {@code path} already holds a complete store (also one another writer finished
     *                                  while this one was opening: the {@code .partial} this one created is removed), or
     *                                  ({@link StoreBusyException})
     *                                  another writer (another labeling or import of this store, in this process or
     *                                  another) is writing {@code <path>.partial}; the file is left as it is
     * @throws IOException              naming the folder or file, when the folder cannot be created (a part of the path
     *                                  is a file), or the file cannot be created, opened or written (a full disk: the
     *                                  {@code .partial} is kept and opening the store again resumes it)
     * @throws IllegalArgumentException when the interrupted store was started with another header
     *                                  (e.g. by a different teacher), naming the differences
     * @throws StoreFormatException     when {@code <path>.partial} is not an interrupted store this code
     *                                  can resume (another file, a newer format version, a corrupt
     *                                  header), naming the file and the problem; it is left as it is. Only
     *                                  a partial shorter than its own complete header is started over.
     */
    public static StoreWriter open(Path path, StoreHeader header) throws IOException {
        return open(path, header, openHook);
    }

    /**
     * For tests only: what {@link #open(Path, StoreHeader)} wraps the file's channel in, for every writer (a labeling or an
     * import included) opened in this JVM; the identity otherwise. A test that sets it resets it when it is done.
     */
    static volatile UnaryOperator<FileChannel> openHook = UnaryOperator.identity();

    /** As {@link #open(Path, StoreHeader)}, writing through {@code wrap} of the file's channel (for tests: a failing disk). */
    static StoreWriter open(Path path, StoreHeader header, UnaryOperator<FileChannel> wrap) throws IOException {
        if (Files.exists(path)) {
            throw alreadyComplete(path);
        }
        Path partial = partialPath(path);
        if (Files.exists(partial)) {
            return resume(path, partial, header, wrap);
        }
        createFolder(path);
        FileChannel ch;
        try {
            ch = wrap.apply(FileChannel.open(partial, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, StandardOpenOption.READ));
        } catch (FileAlreadyExistsException e) { // another writer created it since: resume it, or be refused while it writes
            return resume(path, partial, header, wrap);
        } catch (IOException e) {
            throw new IOException(partial + ": cannot create the store's file (" + reason(e) + ")", e);
        }
        try {
            lock(ch, partial);
            if (Files.exists(path)) {
                // another writer finished (renamed its .partial to path) after the check above and before this .partial was
                // created: finishing this one would rename it over that complete store
                IllegalStateException refused = alreadyComplete(path);
                try {
                    Files.deleteIfExists(partial); // ours, created above and locked: no other writer has written to it
                } catch (IOException e) {
                    refused.addSuppressed(e);
                }
                throw refused;
            }
            writeHeader(ch, header, partial);
            return new StoreWriter(path, partial, header, ch, 0);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** The refusal of a writer at a path that holds a complete store (found before, or after, taking the lock). */
    private static IllegalStateException alreadyComplete(Path path) {
        return new IllegalStateException(path + " already holds a complete store; delete it to write a new one");
    }

    /**
     * Creates the folder {@code path} goes in, or says why it cannot: a part of it that is a file, not a folder (the
     * system's own error named that part alone), or the system's reason.
     */
    private static void createFolder(Path path) throws IOException {
        Path dir = path.toAbsolutePath().getParent();
        if (dir == null) {
            return;
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            for (Path p = dir; p != null; p = p.getParent()) {
                if (Files.exists(p) && !Files.isDirectory(p)) {
                    throw new IOException("cannot create folder " + dir + " for store " + path + ": " + p + " is a file, not a folder;"
                            + " give the store a path in a folder (or move " + p + " away)", e);
                }
            }
            throw new IOException("cannot create folder " + dir + " for store " + path + " (" + reason(e) + ")", e);
        }
    }

    /** What went wrong, without the file name a {@link java.nio.file.FileSystemException} repeats. */
    static String reason(IOException e) {
        if (e instanceof java.nio.file.FileSystemException fs && fs.getReason() != null) {
            return fs.getReason();
        }
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }

    /**
     * A failed write, sync or rename of {@code partial} (a full disk, a file size limit), naming the file and what to do:
     * the file is kept, and opening the store again resumes it from its last complete chunk.
     */
    static IOException writeFailed(Path partial, String what, IOException e) {
        return new IOException(partial + ": cannot " + what + " (" + reason(e) + "); it is kept: open the store again with the same "
                + "settings (rerun the same labeling or import) to resume from its last complete chunk, once there is room (free "
                + "disk space, or raise the file size limit)", e);
    }

    /**
     * Takes an exclusive lock on {@code partial} for as long as {@code ch} is open, or refuses: another writer holds it.
     * Where the file system cannot lock (some network mounts), it warns and goes on without the guard.
     */
    private static void lock(FileChannel ch, Path partial) throws IOException {
        FileLock lock;
        try {
            lock = ch.tryLock();
        } catch (OverlappingFileLockException e) { // a writer in this process holds it
            lock = null;
        } catch (IOException e) {
            LOG.warn("cannot lock {} ({}); a second writer of this store at the same time would not be noticed", partial, e.toString());
            return;
        }
        if (lock == null) {
            throw new StoreBusyException(partial + " is being written by another writer (another labeling or import of this "
                    + "store, in this process or another); wait for it to finish, or stop it and run again to resume");
        }
    }

    private static StoreWriter resume(Path path, Path partial, StoreHeader header, UnaryOperator<FileChannel> wrap) throws IOException {
        FileChannel ch;
        try {
            ch = wrap.apply(FileChannel.open(partial, StandardOpenOption.WRITE, StandardOpenOption.READ));
        } catch (IOException e) {
            throw new IOException(partial + ": cannot open the interrupted store to resume it (" + reason(e) + ")", e);
        }
        try {
            lock(ch, partial);
            if (Files.exists(path)) { // the writer that held the lock finished: ch is the complete store, renamed
                throw alreadyComplete(path);
            }
            long size = ch.size();
            ByteBuffer fixed = StoreHeader.readAt(ch, (int) Math.min(size, StoreHeader.FIXED));
            checkStart(fixed, partial);
            if (size < StoreHeader.FIXED) {
                return restart(path, partial, header, ch);
            }
            // the header's own length, not the new header's: a partial started with a longer provenance must decode
            // (and be refused as another teacher's), not look torn and be wiped
            // (at most what any header may hold, as SoftTargetStore.open reads it)
            int provLength = fixed.getInt(StoreHeader.PROVENANCE_LENGTH_AT);
            if (provLength < 0 || provLength > StoreHeader.MAX_PROVENANCE_BYTES) {
                throw new StoreFormatException(partial + ": corrupt header: it declares a provenance of " + provLength
                        + " bytes, expected 0 to " + StoreHeader.MAX_PROVENANCE_BYTES + cannotResume());
            }
            long headerBytes = StoreHeader.headerBytes(provLength);
            if (size < headerBytes) {
                // the header itself never reached the disk whole (it is written, then synced, before any row): start again
                return restart(path, partial, header, ch);
            }
            StoreHeader found;
            try {
                found = StoreHeader.decode(StoreHeader.readAt(ch, (int) headerBytes), partial.toString());
            } catch (StoreFormatException e) {
                throw new StoreFormatException(e.getMessage() + cannotResume());
            }
            if (!found.equals(header)) {
                throw new StoreMismatchException(partial + " was started with different settings; " + differences(found, header)
                        + ". Delete it to start over, or label with the settings it was started with");
            }
            long good = goodChunks(ch, header, size);
            long end = good == 0 ? header.dataOffset() : header.chunkOffset(good - 1) + header.rowsInChunk(good - 1) * header.rowBytes() + 4;
            try {
                ch.truncate(end);
                ch.force(true);
            } catch (IOException e) {
                throw writeFailed(partial, "cut the torn chunk after row " + Math.min(header.rows(), good * header.chunkRows()), e);
            }
            long rows = Math.min(header.rows(), good * header.chunkRows());
            return new StoreWriter(path, partial, header, ch, rows);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /**
     * How many chunks from the first on a {@code .partial} of {@code size} bytes holds whole and good: each there in
     * full, its CRC32C right and its rows ones the reader accepts ({@link RowCheck}). The first that is not ends them.
     */
    static long goodChunks(FileChannel ch, StoreHeader header, long size) throws IOException {
        long good = 0;
        ByteBuffer buf = ByteBuffer.allocate(chunkBytes(header)).order(ByteOrder.LITTLE_ENDIAN);
        for (long c = 0; c < header.chunks(); c++) {
            long off = header.chunkOffset(c);
            int n = (int) (header.rowsInChunk(c) * header.rowBytes());
            if (off + n + 4 > size) {
                break;
            }
            buf.clear().limit(n + 4);
            if (!readFully(ch, buf, off)) {
                break; // the file ended early after all (it is locked: nothing else should shorten it)
            }
            if (buf.getInt(n) != Crc32c.of(buf, 0, n)) {
                break;
            }
            // rows the reader would refuse (written by an older, unchecking writer) are written again, and checked
            if (RowCheck.check(header, buf, header.rowsInChunk(c), c * header.chunkRows()) != null) {
                break;
            }
            good = c + 1;
        }
        return good;
    }

    /**
     * Reads {@code buf}'s remaining bytes from {@code off} on, in as many reads as it takes (one read may return fewer
     * bytes than asked, as for a chunk near 2 GB); false when the file ends first.
     */
    private static boolean readFully(FileChannel ch, ByteBuffer buf, long off) throws IOException {
        long at = off;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, at);
            if (n < 0) {
                return false;
            }
            at += n;
        }
        return true;
    }

    private static String cannotResume() {
        return "; it cannot be resumed: delete it (or move it away) to start over";
    }

    /**
     * Refuses a {@code .partial} that does not start like a store this code writes (another file that
     * happens to have the name, or a newer format), however short: only a torn header of our own is
     * ever overwritten.
     */
    private static void checkStart(ByteBuffer start, Path partial) {
        byte[] magic = StoreHeader.magic();
        int n = Math.min(start.limit(), magic.length);
        for (int i = 0; i < n; i++) {
            if (start.get(i) != magic[i]) {
                byte[] found = new byte[n];
                start.get(0, found);
                throw new StoreFormatException(partial + ": not a Distill4J soft-target store (it starts with '"
                        + new String(found, java.nio.charset.StandardCharsets.ISO_8859_1).replaceAll("[^\\x20-\\x7e]", "?")
                        + "', expected 'D4JSTORE')" + cannotResume());
            }
        }
        if (start.limit() >= magic.length + 2) {
            int version = start.getShort(magic.length) & 0xffff;
            if (version != StoreHeader.VERSION) {
                throw new StoreFormatException(partial + ": store format version " + version + ", but this Distill4J writes version "
                        + StoreHeader.VERSION + cannotResume());
            }
        }
    }

    /** Writes {@code header} at the start of {@code partial}'s (empty) file and syncs it. */
    private static void writeHeader(FileChannel ch, StoreHeader header, Path partial) throws IOException {
        ByteBuffer h = header.encode();
        try {
            while (h.hasRemaining()) {
                ch.write(h, h.position());
            }
            ch.force(true);
        } catch (IOException e) {
            throw writeFailed(partial, "write the header", e);
        }
    }

    /** Starts {@code partial} over with {@code header}: what was there is less than a header of our own. */
    private static StoreWriter restart(Path path, Path partial, StoreHeader header, FileChannel ch) throws IOException {
        try {
            ch.truncate(0);
        } catch (IOException e) {
            throw writeFailed(partial, "write the header", e);
        }
        writeHeader(ch, header, partial);
        return new StoreWriter(path, partial, header, ch, 0);
    }

    /** What differs between two headers, for errors: {@code a} is the one found, {@code b} the one wanted. */
    static String differences(StoreHeader a, StoreHeader b) {
        List<String> d = new ArrayList<>();
        if (!a.provenance().equals(b.provenance())) {
            String teacher = StoredTeacher.teacherId(a.provenance());
            boolean sameTeacher = !teacher.equals("unknown") && teacher.equals(StoredTeacher.teacherId(b.provenance()));
            String wa = field(a.provenance(), Labeler.WEIGHTS);
            String wb = field(b.provenance(), Labeler.WEIGHTS);
            // the weights' hash covers the description too: only with the same description does it say the weights differ
            boolean otherWeights = sameTeacher && wa != null && wb != null && !wa.equals(wb)
                    && Labeler.withoutWeights(a.provenance()).equals(Labeler.withoutWeights(b.provenance()));
            boolean older = (wa == null) != (wb == null)
                    && Labeler.withoutWeights(a.provenance()).equals(Labeler.withoutWeights(b.provenance()));
            d.add((otherWeights ? "it was made by a teacher with the same id ('" + teacher + "') but other weights or another model"
                    + " (content " + wa + ", now " + wb + "): give a retrained teacher its own id or store"
                    : older ? "it was started by an older Distill4J, which recorded no hash of the teacher's weights, so it cannot"
                    + " tell whether this is the same teacher"
                    : sameTeacher ? "it was made by the same teacher from other data (or with another description)"
                    : "it was made by a different teacher") + " (provenance " + a.provenance() + ", now " + b.provenance() + ")");
        }
        if (a.layout() != b.layout()) {
            d.add("layout " + a.layout() + " vs " + b.layout());
        }
        if (a.codec() != b.codec()) {
            d.add("dtype " + a.codec() + " vs " + b.codec());
        }
        if (a.values() != b.values()) {
            d.add("values " + a.values() + " vs " + b.values());
        }
        if (a.vocab() != b.vocab()) {
            d.add("vocab " + a.vocab() + " vs " + b.vocab());
        }
        if (a.k() != b.k()) {
            d.add("k " + a.k() + " vs " + b.k());
        }
        if (a.rows() != b.rows()) {
            d.add("rows " + a.rows() + " vs " + b.rows());
        }
        if (a.chunkRows() != b.chunkRows()) {
            d.add("chunk rows " + a.chunkRows() + " vs " + b.chunkRows());
        }
        if (a.temperature() != b.temperature()) {
            d.add("temperature " + a.temperature() + " vs " + b.temperature());
        }
        return String.join("; ", d);
    }

    /** A text field of a provenance record, or null. */
    private static String field(String provenance, String key) {
        try {
            if (JsonLine.parse(provenance) instanceof java.util.Map<?, ?> record && record.get(key) instanceof String v) {
                return v;
            }
        } catch (RuntimeException e) {
            // not one JSON object (a store from elsewhere)
        }
        return null;
    }

    /**
     * The header of the store being written: the one given to {@link #open}, which an existing {@code .partial} must equal
     * to be resumed.
     */
    public StoreHeader header() {
        return header;
    }

    /** Rows safely on disk (a multiple of the chunk rows until the end): where labeling continues. */
    public long rowsWritten() {
        return rowsWritten;
    }

    /**
     * Appends {@code n} dense rows ({@code n x vocab} values, row-major). Every row is checked before any is
     * written, so a refused call leaves the writer as it was.
     *
     * <p>A value is finite, or {@code -Infinity} for a class of zero probability (a masked class, a class
     * {@code VocabularyAlignment} PAD added, the log of a zero probability): every dtype holds {@code -Infinity}
     * exactly, and every distribution loss reads it as zero mass, so training from the store gives what training
     * from the live teacher gives.
     *
     * @throws IllegalArgumentException naming the store file, row and class, when a value is NaN or {@code +Infinity},
     *                                  a finite value overflows the store's dtype (beyond 65504 in f16), or a row has
     *                                  no finite value (no class with probability): the losses refuse such rows, and
     *                                  refusing them here stops labeling at the row instead of training at its batch
     * @throws IllegalStateException    when the writer is closed, an earlier write of it failed (naming the failure: close
     *                                  it and open the store again to resume), or the {@code n} rows are more than the
     *                                  store has left
     */
    public void writeDense(float[] values, int n) throws IOException {
        if (header.layout() != StoreHeader.Layout.DENSE) {
            throw new IllegalStateException("this store holds top-k rows; use writeTopK");
        }
        int v = header.vocab();
        if (values.length != (long) n * v) {
            throw new IllegalArgumentException("dense rows have " + values.length + " values, expected " + n + " x " + v);
        }
        checkRoom(n);
        checkDense(values, n);
        for (int r = 0; r < n; r++) {
            ensureRoom();
            int base = (int) (rowsInBuffer * rowBytes);
            for (int i = 0; i < v; i++) {
                header.codec().put(chunk, base + i * header.codec().bytes(), values[r * v + i]);
            }
            rowAdded();
        }
    }

    /**
     * Appends {@code n} top-k rows: {@code n x k} class ids and their log-probabilities, best first.
     * Every row is checked before any is written, so a refused call leaves the writer as it was.
     *
     * <p>Top-k log-probabilities are finite in this format: a zero probability ({@code -Infinity}, which the
     * losses read as zero mass) is stored as {@code log(Float.MIN_VALUE)} = -103.28, as {@link Labeler} and
     * {@link StoreImport} do before they write (a tempered mass of {@code 1.4e-45^(1/T)}, below 1e-11 up to
     * T = 4; reverse KL floors at that value anyway).
     *
     * @throws IllegalArgumentException naming the store file, row and entry, when an id is outside
     *                                  {@code [0, vocab)}, a row repeats an id, a log-probability is
     *                                  NaN or infinite (floor {@code -Infinity} first), is above 0 (beyond
     *                                  {@value #MAX_LOG_PROB} for rounding, as stored in the dtype), or overflows
     *                                  the store's dtype, or a row's entries' probabilities (as stored) sum to more
     *                                  than 1 + 0.01 (rounding), so that the reader accepts every row written
     * @throws IllegalStateException    when the writer is closed, an earlier write of it failed (naming the failure: close
     *                                  it and open the store again to resume), or the {@code n} rows are more than the
     *                                  store has left
     */
    public void writeTopK(int[] ids, float[] logProbs, int n) throws IOException {
        if (header.layout() != StoreHeader.Layout.TOP_K) {
            throw new IllegalStateException("this store holds dense rows; use writeDense");
        }
        int k = header.k();
        if (ids.length != (long) n * k || logProbs.length != (long) n * k) {
            throw new IllegalArgumentException("top-k rows have " + ids.length + " ids and " + logProbs.length
                    + " log-probabilities, expected " + n + " x " + k + " of each");
        }
        checkRoom(n);
        checkTopK(ids, logProbs, n);
        int idBytes = header.idBytes();
        for (int r = 0; r < n; r++) {
            ensureRoom();
            int base = (int) (rowsInBuffer * rowBytes);
            for (int j = 0; j < k; j++) {
                int id = ids[r * k + j];
                int at = base + j * idBytes;
                for (int byteIndex = 0; byteIndex < idBytes; byteIndex++) {
                    chunk.put(at + byteIndex, (byte) (id >>> (8 * byteIndex)));
                }
                header.codec().put(chunk, base + k * idBytes + j * header.codec().bytes(), logProbs[r * k + j]);
            }
            rowAdded();
        }
    }

    /** The largest log-probability a top-k row may hold: 0, plus the tolerance training allows for rounding. */
    static final float MAX_LOG_PROB = 1e-4f;

    /**
     * What the reader requires of dense rows ({@link RowCheck}), on the values before they are encoded: each finite or
     * -Infinity, at least one finite per row, and no finite value that the dtype turns into an infinity.
     */
    private void checkDense(float[] values, int n) {
        int v = header.vocab();
        ValueCodec codec = header.codec();
        // up to this magnitude every value fits the dtype (f16's largest is 65504, bf16's 3.3895e38); beyond it, the exact check
        float safe = codec == ValueCodec.F16 ? 65504f : codec == ValueCodec.BF16 ? 3.38e38f : Float.MAX_VALUE;
        ByteBuffer encoded = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < n; r++) {
            long row = rowsWritten + rowsInBuffer + r;
            boolean finite = false;
            for (int i = r * v, end = i + v; i < end; i++) {
                float x = values[i];
                if (Math.abs(x) <= safe) {
                    finite = true;
                    continue;
                }
                if (x == Float.NEGATIVE_INFINITY) {
                    continue;
                }
                if (!Float.isFinite(x)) {
                    throw new IllegalArgumentException(path + ": dense value of row " + row + ", class " + (i - r * v) + " is " + x
                            + ", expected a finite value, or -Infinity for a class of zero probability");
                }
                codec.put(encoded, 0, x);
                float stored = codec.get(encoded, 0);
                if (Float.isInfinite(stored)) {
                    throw new IllegalArgumentException(path + ": dense value of row " + row + ", class " + (i - r * v) + " is " + x
                            + ", which overflows " + codec.name().toLowerCase(java.util.Locale.ROOT) + " to " + stored
                            + "; store " + (codec == ValueCodec.F16 ? "f32 or bf16" : "f32"));
                }
                finite = true;
            }
            if (!finite) {
                throw new IllegalArgumentException(path + ": dense values of row " + row + " are all -Infinity (no class has "
                        + "probability); expected at least one finite value");
            }
        }
    }

    /**
     * What the reader requires of top-k rows ({@link RowCheck}): ids in range and distinct per row, values finite and at most
     * 0, and the entries' probabilities (as stored) summing to at most 1 within {@link RowCheck#SUM_TOLERANCE}.
     */
    private void checkTopK(int[] ids, float[] logProbs, int n) {
        int k = header.k();
        int[] sorted = new int[k];
        ByteBuffer encoded = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < n; r++) {
            long row = rowsWritten + rowsInBuffer + r;
            double mass = 0; // of the values as stored, in the row's order: what RowCheck sums when the row is read
            for (int j = 0; j < k; j++) {
                int id = ids[r * k + j];
                if (id < 0 || id >= header.vocab()) {
                    throw new IllegalArgumentException(path + ": top-k id " + id + " of row " + row + " (entry " + j + ") is outside [0, "
                            + header.vocab() + ")" + (id == org.distill4j.loss.LogitBatch.ABSENT
                            ? ": an absent slot (a row that lost entries to a vocabulary alignment); a store holds k entries in "
                            + "every row: store the teacher before aligning it, and align the stored teacher" : ""));
                }
                float lp = logProbs[r * k + j];
                if (!(lp <= MAX_LOG_PROB) || Float.isInfinite(lp)) {
                    throw new IllegalArgumentException(path + ": top-k log-probability of row " + row + ", entry " + j + " (class " + id
                            + ") is " + lp + ", expected a finite value <= 0 (store a zero probability as log(Float.MIN_VALUE), "
                            + "as Labeler does)");
                }
                header.codec().put(encoded, 0, lp);
                float stored = header.codec().get(encoded, 0);
                if (Float.isInfinite(stored)) {
                    throw new IllegalArgumentException(path + ": top-k log-probability of row " + row + ", entry " + j + " (class " + id
                            + ") is " + lp + ", which overflows " + header.codec().name().toLowerCase(java.util.Locale.ROOT) + " to " + stored);
                }
                if (stored > MAX_LOG_PROB) { // e.g. 1e-4, which f16 rounds up: the reader and training would refuse what is stored
                    throw new IllegalArgumentException(path + ": top-k log-probability of row " + row + ", entry " + j + " (class " + id
                            + ") is " + lp + ", which " + header.codec().name().toLowerCase(java.util.Locale.ROOT) + " rounds to "
                            + stored + ", above the " + MAX_LOG_PROB + " allowed for rounding; expected a value <= 0");
                }
                mass += LossMath.exp(stored);
                sorted[j] = id;
            }
            java.util.Arrays.sort(sorted);
            for (int j = 1; j < k; j++) {
                if (sorted[j] == sorted[j - 1]) {
                    throw new IllegalArgumentException(path + ": top-k ids of row " + row + " repeat class " + sorted[j]
                            + "; the ids of a row must be distinct");
                }
            }
            String tooMuch = RowCheck.topKMass(mass);
            if (tooMuch != null) {
                throw new IllegalArgumentException(path + ": top-k log-probabilities of row " + row + ": " + tooMuch
                        + " (within " + RowCheck.SUM_TOLERANCE + " for rounding); these are not log-probabilities of one distribution");
            }
        }
    }

    /**
     * Refuses any call once a write failed: its chunk buffer holds rows that never reached the disk, and what did reach it
     * is unknown (a torn chunk, or a sync that failed), so only a resume, which checks each chunk on disk, may go on.
     */
    private void checkNotFailed() {
        if (failed != null) {
            // the system's error, not the wrapping that named the file (the message names it)
            Throwable cause = failed instanceof IOException && failed.getCause() != null ? failed.getCause() : failed;
            throw new IllegalStateException(partial + ": an earlier write failed (" + cause + "); this writer takes nothing more: "
                    + "close this writer and open the store again to resume from its last complete chunk", failed);
        }
    }

    /** Refuses a call of {@code n} rows before any is taken: the writer is closed, or they are more than the store has left. */
    private void checkRoom(int n) {
        checkNotFailed();
        checkOpen();
        long have = rowsWritten + rowsInBuffer;
        if (n > header.rows() - have) {
            throw new IllegalStateException(have == header.rows() ? "store already has all " + header.rows() + " rows"
                    : path + ": " + n + " rows do not fit: the store has " + have + " of its " + header.rows() + " rows, room for "
                    + (header.rows() - have) + " more");
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException(path + ": store writer is closed" + (finished ? " (the store is finished)" : ""));
        }
    }

    private void ensureRoom() {
        checkNotFailed();
        checkOpen();
        if (rowsWritten + rowsInBuffer >= header.rows()) {
            throw new IllegalStateException("store already has all " + header.rows() + " rows");
        }
    }

    private void rowAdded() throws IOException {
        rowsInBuffer++;
        long chunkIndex = rowsWritten / header.chunkRows();
        if (rowsInBuffer == header.rowsInChunk(chunkIndex)) {
            int n = (int) (rowsInBuffer * rowBytes);
            // the CRC goes right after the rows, in the same buffer: one write, no copy of the chunk
            chunk.putInt(n, Crc32c.of(chunk.array(), 0, n));
            ByteBuffer out = chunk.duplicate().limit(n + 4).position(0);
            long off = header.chunkOffset(chunkIndex);
            try {
                while (out.hasRemaining()) {
                    off += channel.write(out, off);
                }
                channel.force(false);
            } catch (IOException e) {
                IOException named = writeFailed(partial, "write chunk " + chunkIndex, e);
                failed = named;
                throw named;
            } catch (RuntimeException e) {
                failed = e;
                throw e;
            }
            rowsWritten += rowsInBuffer;
            rowsInBuffer = 0;
        }
    }

    /** Writes the footer, syncs and gives the store its final name; then closes the file (and lets go of its lock). */
    public void finish() throws IOException {
        checkNotFailed();
        checkOpen();
        if (rowsWritten != header.rows()) {
            throw new IllegalStateException("store has " + rowsWritten + " of " + header.rows() + " rows; write them all before finish()");
        }
        ByteBuffer f = StoreFooter.encode(header.rows());
        long off = header.completeSize() - StoreFooter.BYTES;
        try {
            while (f.hasRemaining()) {
                off += channel.write(f, off);
            }
            channel.force(true); // after a failed sync, what is on disk is unknown: never retried on this writer
        } catch (IOException e) {
            IOException named = writeFailed(partial, "write the footer", e);
            failed = named;
            throw named;
        } catch (RuntimeException e) {
            failed = e;
            throw e;
        }
        // renamed while still locked: a writer that gets the lock afterwards finds the complete store, not a .partial to resume
        try {
            org.distill4j.internal.AtomicFiles.move(partial, path);
        } catch (IOException e) {
            IOException named = writeFailed(partial, "rename the complete store to " + path, e);
            failed = named;
            throw named;
        }
        // the rename itself survives a power loss (else the store could come back as a complete .partial to resume)
        org.distill4j.internal.AtomicFiles.forceFolder(path.toAbsolutePath().getParent());
        finished = true;
        close();
    }

    /** Closes the file; rows of an unfinished chunk are dropped (a resumed run writes them again). */
    @Override
    public void close() throws IOException {
        if (!closed) {
            closed = true;
            channel.close();
        }
    }
}
