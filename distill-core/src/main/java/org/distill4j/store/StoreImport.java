package org.distill4j.store;

import org.distill4j.data.Dataset;
import org.distill4j.loss.LossMath;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.function.LongConsumer;
import java.util.zip.CRC32C;

/**
 * Imports teacher outputs computed elsewhere (a PyTorch model, an LLM server's logprobs) into a
 * soft-target store, so that students train from them exactly as from a store written by
 * {@link Labeler}. Row {@code i} of the source is the teacher's output for sample {@code i} of the
 * dataset given, which the store then serves (its fingerprints are recorded: the same samples unlabeled or relabeled are
 * served too, as by a labeled store, {@link StoredTeacher#serves}).
 *
 * <p>Sources:
 * <ul>
 *   <li>{@link #dense}: a NumPy {@code .npy} array {@code [rows, V]} (or {@code [batch, seq, V]}) of
 *       float16/32/64 logits, log-probabilities or probabilities, as {@code numpy.save} writes it;</li>
 *   <li>{@link #topK(Path, Dataset, Path, Options, LongConsumer)}: JSON Lines, one object per row, either
 *       {@code {"ids": [3, 17, ...], "logprobs": [-0.1, -2.5, ...]}} or
 *       {@code {"top_logprobs": [{"id": 3, "logprob": -0.1}, ...]}} (an entry may name its id as
 *       {@code "token": "token_id:3"}, as vLLM writes it); other keys are ignored; a record of both shapes is refused
 *       (which entries it means cannot be told);</li>
 *   <li>{@link #topK(Path, Path, Dataset, Path, Options, LongConsumer)}: two {@code .npy} arrays of the
 *       same shape {@code [rows, K]}: integer class ids and their log-probabilities
 *       ({@code torch.topk(log_softmax(z), K)} saved as NumPy).</li>
 * </ul>
 * Every value is checked before anything is written (so a refused source leaves nothing behind), and an
 * error names the file, the row (and line) and what was expected: logits finite or -inf (zero probability), one finite per row; log-probabilities at most 0 and probabilities in [0, 1], each row
 * (dense) or its entries (top-k) summing to at most 1 (dense: to 1, within {@value #SUM_TOLERANCE});
 * class ids in {@code [0, V)} and distinct; without a top-k, every row has as many entries as the first. A
 * probability of 0 (a log-probability or logit of {@code -inf}) is stored in dense rows as {@code -inf}, zero mass,
 * and in top-k rows as the log of the smallest float (top-k values are finite), as {@link Labeler} does. Values are
 * taken to be at temperature 1.
 *
 * <p>An import is resumable like a labeling run: rerunning the same call after an interruption
 * continues from the last complete chunk, and the finished store equals an uninterrupted import byte
 * for byte. The store's provenance records the source's CRC32C and size (with a teacher id or without one, when the
 * CRC32C is the teacher id too), so a changed source is never resumed into (or reused as) a store of the old one: that
 * is a {@link StoreMismatchException} naming both versions, and the store is left as it is. A store imported before the
 * source was recorded is reused and resumed by its settings and teacher id alone, with a warning. The source must not
 * change while it is imported (its size and modification time are compared before the store is finished). The same
 * source imported for the same samples with other labels (changed, removed or some ignored: the same feature
 * fingerprint) reuses the complete store and resumes a {@code .partial} as it is, its header as it was first written
 * (it records the dataset name and {@code datasetFingerprint} of the import that started it), as {@link Labeler} does.
 *
 * <p>Cancellable: interrupting the importing thread stops it before its next group of rows (while the source is checked
 * or while rows are written) with a {@link CancellationException}, the thread's interrupt status kept; a read or write
 * the interrupt cuts short ends the same way. The {@code .partial} is kept, and the same call resumes it later.
 */
public final class StoreImport {
    private static final Logger LOG = LoggerFactory.getLogger(StoreImport.class);

    /** How far a dense row's probabilities may sum from 1, and top-k entries' above 1 (the store's rule: {@link RowCheck}). */
    static final double SUM_TOLERANCE = RowCheck.SUM_TOLERANCE;
    /** The most bytes an automatic chunk holds. */
    static final long AUTO_CHUNK_BYTES = 64L << 20;
    /**
     * The longest JSON Lines line read (64 MiB, ten times a top_logprobs line of all 152,064 entries): a longer one is
     * refused when it reaches this, so a file that is not JSON Lines is never read whole into memory.
     */
    static final int MAX_LINE_BYTES = 64 << 20;
    /** Values per read: rows are read and written in groups of about this many values. */
    static int valuesPerRead = 1 << 22; // a knob for tests: several reads in a small source

    private StoreImport() {
    }

    /** What a dense source's values are. */
    public enum Values {
        /** Logits: finite, or {@code -Infinity} for a class of zero probability; stored as they are. */
        LOGITS,
        /**
         * Natural-log probabilities, each {@code <= 0} (up to 1e-4 of rounding) or {@code -Infinity}, each row's
         * probabilities summing to 1 within the store's tolerance; stored as they are (one below -65504 becomes
         * {@code -Infinity} in f16 and bf16).
         */
        LOG_PROBS,
        /**
         * Probabilities in [0, 1], each row summing to 1 within the store's tolerance; stored as their logs (0 as
         * {@code -Infinity}).
         */
        PROBABILITIES;

        /** {@code logits}, {@code log-probs} or {@code probs}, as the CLI spells them. */
        public static Values parse(String s) {
            return switch (s.trim().toLowerCase(Locale.ROOT)) {
                case "logits" -> LOGITS;
                case "log-probs", "logprobs", "log-probabilities" -> LOG_PROBS;
                case "probs", "probabilities" -> PROBABILITIES;
                default -> throw new IllegalArgumentException("values '" + s + "': expected logits, log-probs or probs");
            };
        }
    }

    /**
     * How to import.
     *
     * @param codec     the store's value encoding
     * @param chunkRows rows per checksummed chunk (the unit of resumption); 0 for 1024 rows or 64 MiB, whichever
     *                  is less (a chunk is buffered in memory: 1024 dense f16 rows at V = 152064 would take 311 MB)
     * @param teacherId the teacher's id in the store's provenance, or null for a CRC32C of the source's
     *                  content (the source's CRC32C and size are recorded either way)
     * @param topK      top-k sources: entries kept per row, the most probable first (0: every entry of
     *                  the source's rows, which must then all have the same count); 0 for dense sources
     * @param vocab     classes per row: 0 for the dataset's classes (top-k) or the array's last axis (dense)
     */
    public record Options(ValueCodec codec, int chunkRows, String teacherId, int topK, int vocab) {
        /**
         * Checks the options.
         *
         * @throws NullPointerException     if {@code codec} is null
         * @throws IllegalArgumentException if {@code chunkRows}, {@code topK} or {@code vocab} is negative
         */
        public Options {
            Objects.requireNonNull(codec, "codec");
            if (chunkRows < 0 || topK < 0 || vocab < 0) {
                throw new IllegalArgumentException("import options need chunkRows >= 0, topK >= 0 and vocab >= 0; got " + chunkRows
                        + ", " + topK + ", " + vocab);
            }
        }

        /** f16 values, chunks of 1024 rows or 64 MiB, a content id, every entry, the source's vocabulary. */
        public static Options defaults() {
            return new Options(ValueCodec.F16, 0, null, 0, 0);
        }

        /** The rows per chunk for rows of {@code rowBytes}: as given, or (0) 1024 rows or 64 MiB, whichever is less. */
        int chunkRows(long rowBytes) {
            return chunkRows > 0 ? chunkRows : (int) Math.max(1, Math.min(1024, AUTO_CHUNK_BYTES / rowBytes));
        }

        /**
         * These options with the value encoding {@code c}; the others are kept.
         *
         * @throws NullPointerException if {@code c} is null
         */
        public Options withCodec(ValueCodec c) {
            return new Options(c, chunkRows, teacherId, topK, vocab);
        }

        /**
         * These options with {@code n} rows per chunk (0 for 1024 rows or 64 MiB, whichever is less); the others are kept.
         *
         * @throws IllegalArgumentException if {@code n} is negative
         */
        public Options withChunkRows(int n) {
            return new Options(codec, n, teacherId, topK, vocab);
        }

        /** These options with the teacher id {@code id} (null for a CRC32C of the source's content); the others are kept. */
        public Options withTeacherId(String id) {
            return new Options(codec, chunkRows, id, topK, vocab);
        }

        /**
         * These options with {@code k} entries kept per top-k row (0 for every entry of the source's rows); the others are kept.
         *
         * @throws IllegalArgumentException if {@code k} is negative
         */
        public Options withTopK(int k) {
            return new Options(codec, chunkRows, teacherId, k, vocab);
        }

        /**
         * These options with {@code v} classes per row (0 for the dataset's classes or the array's last axis); the others are
         * kept.
         *
         * @throws IllegalArgumentException if {@code v} is negative
         */
        public Options withVocab(int v) {
            return new Options(codec, chunkRows, teacherId, topK, v);
        }
    }

    /**
     * Imports a dense {@code .npy} array of {@code values} for every sample of {@code data} into {@code out}.
     * Every value is checked before anything is written.
     *
     * @param progress told the rows on disk after each group of rows (may be null)
     * @throws StoreFormatException     the file is not a plain C-order float array, or is truncated
     * @throws IllegalArgumentException naming the file, row and class, when the shape does not match the
     *                                  dataset or a value is not what {@code values} says
     * @throws CancellationException    when the thread is interrupted (its interrupt status stays set; the partial store is kept
     *                                  for a resume)
     */
    public static Labeler.Result dense(Path npy, Values values, Dataset data, Path out, Options o, LongConsumer progress)
            throws IOException {
        StoreCancellation.check("importing", out);
        long started = System.nanoTime();
        Objects.requireNonNull(values, "values");
        if (o.topK() != 0) {
            throw new IllegalArgumentException("a dense import keeps every class; topK must be 0, got " + o.topK());
        }
        Source source = Source.of(npy);
        try (NpyArray a = open(npy, out)) {
            if (!a.isFloat()) {
                throw new StoreFormatException(npy + ": dtype '" + a.descr() + "' holds integers; expected float16/32/64 "
                        + values.name().toLowerCase(Locale.ROOT).replace('_', '-'));
            }
            checkRows(npy, a.shapeText() + " gives " + a.rows() + " rows", a.rows(), data);
            if (o.vocab() != 0 && o.vocab() != a.cols()) {
                throw new IllegalArgumentException(npy + ": shape " + a.shapeText() + " has " + a.cols() + " values per row, expected "
                        + o.vocab() + " (the vocabulary asked for)");
            }
            warnIfOtherClasses(npy, a.cols(), data);
            int group = Math.max(1, valuesPerRead / a.cols());
            // every value checked (and the content hashed) before anything is written: a bad row found halfway would
            // leave a .partial that the fixed source or settings could not resume
            Pass check = (from, crc) -> {
                if (crc != null) {
                    a.crcHeader(crc);
                }
                for (long r = 0; r < a.rows(); r += group) {
                    StoreCancellation.check("importing", out);
                    int n = (int) Math.min(group, a.rows() - r);
                    checkDense(npy, r, a.floats(r, n, crc), a.cols(), values, o.codec());
                }
            };
            long crc = source.check(check, out); // the source's identity is recorded whatever the teacher id
            String id = o.teacherId() != null ? o.teacherId() : "npy-" + Long.toHexString(crc);
            String description = String.format(Locale.ROOT, "imported: npy %s %s, %s", a.descr(), a.shapeText(),
                    values.name().toLowerCase(Locale.ROOT).replace('_', '-'));
            StoreHeader header = new StoreHeader(StoreHeader.Layout.DENSE, o.codec(),
                    values == Values.LOGITS ? StoreHeader.ValueKind.LOGITS : StoreHeader.ValueKind.LOG_PROBS, a.cols(), 0,
                    data.size(), o.chunkRows(StoreHeader.rowBytes(StoreHeader.Layout.DENSE, o.codec(), a.cols(), 0)), 1.0,
                    Labeler.provenance(id, description, null, source.identity(crc), data));
            return write(header, out, progress, started, source, o.teacherId() != null, (w, from, tick) -> {
                for (long r = from; r < a.rows(); r += group) {
                    StoreCancellation.check("importing", out);
                    int n = (int) Math.min(group, a.rows() - r);
                    float[] v = a.floats(r, n);
                    checkDense(npy, r, v, a.cols(), values, o.codec());
                    w.writeDense(v, n);
                    tick.run();
                }
            });
        }
    }

    /**
     * Imports top-k rows from JSON Lines (one object per sample of {@code data}, in order; blank lines
     * are skipped; UTF-8, a byte-order mark is allowed; a line holds at most {@value #MAX_LINE_BYTES} bytes). See the class comment for the two object
     * shapes; an object may also hold {@code "row": i}, which must then be its row number. Every line
     * is checked before anything is written.
     *
     * @throws IllegalArgumentException naming the file, line and column of a malformed or wrong line
     * @throws CancellationException    when the thread is interrupted (its interrupt status stays set; the partial store is kept
     *                                  for a resume)
     */
    public static Labeler.Result topK(Path jsonl, Dataset data, Path out, Options o, LongConsumer progress) throws IOException {
        StoreCancellation.check("importing", out);
        long started = System.nanoTime();
        int vocab = o.vocab() != 0 ? o.vocab() : data.classes();
        Source source = Source.of(jsonl);
        // the first line sets k when none is given; every other line must then have as many entries
        int k = o.topK();
        JsonLine.TopKRecord fast = new JsonLine.TopKRecord(); // the lines are read one after another
        if (k == 0) {
            int[] first = {0};
            try {
                Lines.read(jsonl, null, (lineNo, row, line) -> {
                    first[0] = Entries.parse(jsonl, lineNo, line, row, fast).ids.length;
                    if (first[0] == 0) { // k would be 0, refused later as "top-0 rows" without the line or the field
                        throw new IllegalArgumentException(jsonl + " line " + lineNo + ": the first row has no entries ("
                                + Entries.emptyField(line) + "); expected at least 1: without a top-k the first row sets how many "
                                + "entries every row holds");
                    }
                    return false;
                });
            } catch (IOException e) {
                throw StoreCancellation.orCancelled("importing", out, e);
            }
            k = first[0];
        }
        int topK = k;
        boolean exact = o.topK() == 0;
        long[] rows = {0};
        Selection selection = new Selection();
        Pass check = (from, crc) -> {
            rows[0] = 0;
            Lines.read(jsonl, crc, (lineNo, row, line) -> {
                StoreCancellation.check("importing", out);
                if (topK > 0) {
                    Entries.parse(jsonl, lineNo, line, row, fast).select(jsonl, "line " + lineNo, topK, exact, vocab, o.codec(), null,
                            null, 0, selection); // checked only: the rows are ordered when they are written
                }
                rows[0] = row + 1;
                return true;
            });
        };
        long crc = source.check(check, out);
        checkRows(jsonl, "has " + rows[0] + " non-blank lines", rows[0], data);
        checkK(jsonl, topK, vocab);
        String id = o.teacherId() != null ? o.teacherId() : "jsonl-" + Long.toHexString(crc);
        StoreHeader header = topKHeader(o, vocab, topK, data, id, String.format(Locale.ROOT, "imported: jsonl top-%d", topK),
                source.identity(crc));
        int group = Math.max(1, valuesPerRead / topK);
        return write(header, out, progress, started, source, o.teacherId() != null, (w, from, tick) -> { // every line was checked above
            int[] ids = new int[group * topK];
            float[] lps = new float[group * topK];
            int[] inGroup = {0};
            Lines.read(jsonl, null, (lineNo, row, line) -> {
                StoreCancellation.check("importing", out);
                if (row < from) {
                    return true; // on disk already
                }
                Entries.parse(jsonl, lineNo, line, row, fast).select(jsonl, "line " + lineNo, topK, exact, vocab, o.codec(), ids, lps,
                        inGroup[0] * topK, selection);
                if (++inGroup[0] == group) {
                    w.writeTopK(ids, lps, group);
                    inGroup[0] = 0;
                    tick.run();
                }
                return true;
            });
            if (inGroup[0] > 0) {
                w.writeTopK(Arrays.copyOf(ids, inGroup[0] * topK), Arrays.copyOf(lps, inGroup[0] * topK), inGroup[0]);
            }
        });
    }

    /**
     * Imports top-k rows from two {@code .npy} arrays of one shape {@code [rows, K]}: integer ids and
     * float log-probabilities. Every row is checked before anything is written.
     *
     * @throws CancellationException when the thread is interrupted (its interrupt status stays set; the partial store is kept
     *                               for a resume)
     */
    public static Labeler.Result topK(Path idsNpy, Path logProbsNpy, Dataset data, Path out, Options o, LongConsumer progress)
            throws IOException {
        StoreCancellation.check("importing", out);
        long started = System.nanoTime();
        int vocab = o.vocab() != 0 ? o.vocab() : data.classes();
        Source source = Source.both(Source.of(idsNpy), Source.of(logProbsNpy));
        try (NpyArray ids = open(idsNpy, out); NpyArray lps = open(logProbsNpy, out)) {
            if (ids.isFloat()) {
                throw new StoreFormatException(idsNpy + ": dtype '" + ids.descr() + "' holds floats; expected integer class ids");
            }
            if (!lps.isFloat()) {
                throw new StoreFormatException(logProbsNpy + ": dtype '" + lps.descr() + "' holds integers; expected float log-probabilities");
            }
            if (ids.rows() != lps.rows() || ids.cols() != lps.cols()) {
                throw new IllegalArgumentException("ids " + idsNpy + " has shape " + ids.shapeText() + " but log-probabilities "
                        + logProbsNpy + " has shape " + lps.shapeText() + "; expected the same shape");
            }
            checkRows(idsNpy, ids.shapeText() + " gives " + ids.rows() + " rows", ids.rows(), data);
            int k = o.topK() != 0 ? o.topK() : ids.cols();
            if (k > ids.cols()) {
                throw new IllegalArgumentException(idsNpy + ": " + ids.cols() + " entries per row, fewer than the " + k + " asked for");
            }
            checkK(idsNpy, k, vocab);
            int cols = ids.cols();
            int group = Math.max(1, valuesPerRead / cols);
            int[] outIds = new int[group * k];
            float[] outLps = new float[group * k];
            Selection selection = new Selection();
            // rows [from, rows) of both arrays, checked and reduced to their k best entries, to `sink` in groups
            interface Sink {
                void accept(int n) throws IOException;
            }
            interface Rows {
                void read(long from, java.util.zip.CRC32C idCrc, java.util.zip.CRC32C lpCrc, Sink sink) throws IOException;
            }
            Rows rows = (from, idCrc, lpCrc, sink) -> {
                for (long r = from; r < ids.rows(); r += group) {
                    StoreCancellation.check("importing", out);
                    int n = (int) Math.min(group, ids.rows() - r);
                    int[] rowIds = ids.ints(r, n, idCrc);
                    float[] rowLps = lps.floats(r, n, lpCrc);
                    for (int i = 0; i < n; i++) {
                        Entries e = new Entries(Arrays.copyOfRange(rowIds, i * cols, (i + 1) * cols), toDoubles(rowLps, i * cols, cols));
                        e.select(idsNpy, "row " + (r + i), k, false, vocab, o.codec(), outIds, outLps, i * k, selection);
                    }
                    sink.accept(n);
                }
            };
            java.util.zip.CRC32C lpCrc = new java.util.zip.CRC32C();
            Pass check = (from, idCrc) -> {
                if (idCrc != null) {
                    ids.crcHeader(idCrc);
                    lps.crcHeader(lpCrc);
                }
                rows.read(0, idCrc, idCrc == null ? null : lpCrc, n -> { });
            };
            long idCrc = source.check(check, out); // the source's identity is recorded whatever the teacher id
            String id = o.teacherId() != null ? o.teacherId()
                    : "npy-" + Long.toHexString(idCrc) + "-" + Long.toHexString(lpCrc.getValue());
            StoreHeader header = topKHeader(o, vocab, k, data, id, String.format(Locale.ROOT, "imported: npy top-%d of %d", k, cols),
                    source.identity(idCrc, lpCrc.getValue()));
            return write(header, out, progress, started, source, o.teacherId() != null,
                    (w, from, tick) -> rows.read(from, null, null, n -> {
                        w.writeTopK(n == group ? outIds : Arrays.copyOf(outIds, n * k), n == group ? outLps : Arrays.copyOf(outLps, n * k), n);
                        tick.run();
                    }));
        }
    }

    /** One pass over a whole source that checks every row; hashes the source's bytes into {@code crc} when not null. */
    private interface Pass {
        void run(long from, java.util.zip.CRC32C crc) throws IOException;
    }

    /**
     * The files an import reads, with their sizes and modification times when it began: a source that
     * changes during the import is refused before the store is finished, since its rows would not match
     * the content id taken at the start.
     */
    private record Source(List<Path> files, List<Long> sizes, List<java.nio.file.attribute.FileTime> times) {
        static Source of(Path p) throws IOException {
            return new Source(List.of(p), List.of(Files.size(p)), List.of(Files.getLastModifiedTime(p)));
        }

        static Source both(Source a, Source b) {
            List<Path> f = new java.util.ArrayList<>(a.files);
            f.addAll(b.files);
            List<Long> s = new java.util.ArrayList<>(a.sizes);
            s.addAll(b.sizes);
            List<java.nio.file.attribute.FileTime> t = new java.util.ArrayList<>(a.times);
            t.addAll(b.times);
            return new Source(f, s, t);
        }

        /**
         * What a store records of the source's content: each file's CRC32C ({@code crcs}, in the order of the files) and
         * size, e.g. {@code CRC32C 0a1b2c3d, 5600 bytes}, for two files {@code ids CRC32C ..., log-probabilities CRC32C ...};
         * a file's name is not part of it (a moved source is the same).
         */
        String identity(long... crcs) {
            if (files.size() == 1) {
                return String.format(Locale.ROOT, "CRC32C %08x, %d bytes", crcs[0], sizes.get(0));
            }
            return String.format(Locale.ROOT, "ids CRC32C %08x, %d bytes and log-probabilities CRC32C %08x, %d bytes", crcs[0],
                    sizes.get(0), crcs[1], sizes.get(1));
        }

        /** The files, for messages. */
        String names() {
            return files.stream().map(Path::toString).collect(java.util.stream.Collectors.joining(" and "));
        }

        /** Runs {@code pass} over the whole source, hashing it; returns the CRC32C. A read cut short by an interrupt cancels {@code out}'s import. */
        long check(Pass pass, Path out) throws IOException {
            CRC32C crc = new CRC32C();
            try {
                pass.run(0, crc);
            } catch (IOException e) {
                throw StoreCancellation.orCancelled("importing", out, e);
            }
            unchanged();
            return crc.getValue();
        }

        void unchanged() throws IOException {
            for (int i = 0; i < files.size(); i++) {
                Path p = files.get(i);
                if (Files.size(p) != sizes.get(i) || !Files.getLastModifiedTime(p).equals(times.get(i))) {
                    throw new IllegalStateException(p + " changed while it was being imported; import it again once it is complete");
                }
            }
        }
    }

    /**
     * JSON Lines read one non-blank line at a time, strictly as UTF-8, with their 1-based line and 0-based row numbers.
     * The file is read in blocks and split at {@code '\n'} bytes (a {@code '\r'} before it stays on the line, where JSON
     * reads it as white space); a line's bytes are decoded on their own, so a bad byte is reported on its own line.
     */
    static final class Lines {
        /** Bytes read at a time. */
        static final int BLOCK_BYTES = 1 << 16;

        interface Visitor {
            /** @return false to stop reading */
            boolean line(long lineNo, long row, String line) throws IOException;
        }

        private final Path file;
        private final int maxLineBytes;
        private final Visitor visitor;
        private final java.nio.charset.CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT);
        /** The start of a line that runs past the block it began in. */
        private byte[] pending = new byte[256];
        private int pendingBytes;
        private long lineNo;
        private long row;

        private Lines(Path file, int maxLineBytes, Visitor visitor) {
            this.file = file;
            this.maxLineBytes = maxLineBytes;
            this.visitor = visitor;
        }

        /** Every line of {@code file} to {@code v}, each at most {@link #MAX_LINE_BYTES}; the file's bytes into {@code crc}. */
        static void read(Path file, CRC32C crc, Visitor v) throws IOException {
            read(file, crc, v, MAX_LINE_BYTES, BLOCK_BYTES);
        }

        /** As {@link #read(Path, CRC32C, Visitor)}, with lines of at most {@code maxLineBytes}, read in blocks of {@code blockBytes}. */
        static void read(Path file, CRC32C crc, Visitor v, int maxLineBytes, int blockBytes) throws IOException {
            Lines lines = new Lines(file, maxLineBytes, v);
            try (InputStream raw = Files.newInputStream(file)) {
                InputStream in = crc == null ? raw : new java.util.zip.CheckedInputStream(raw, crc);
                byte[] block = new byte[blockBytes];
                int n;
                while ((n = in.read(block, 0, blockBytes)) >= 0) {
                    if (!lines.block(block, n)) {
                        return;
                    }
                }
                if (lines.pendingBytes > 0) { // a last line without a newline
                    lines.emit(lines.pending, 0, lines.pendingBytes);
                }
            }
        }

        /** The lines ending in {@code b[0, n)} to the visitor, the start of the next one kept; false to stop. */
        private boolean block(byte[] b, int n) throws IOException {
            int from = 0;
            while (from < n) {
                int nl = from;
                while (nl < n && b[nl] != '\n') {
                    nl++;
                }
                int len = nl - from;
                if ((long) pendingBytes + len > maxLineBytes) {
                    throw new IllegalArgumentException(file + " line " + (lineNo + 1) + ": longer than " + maxLineBytes + " bytes"
                            + (maxLineBytes == MAX_LINE_BYTES ? " (64 MiB)" : "") + "; expected JSON Lines, one JSON object per "
                            + "row on a line of its own (is it one JSON array of all rows, or not a JSON file?)");
                }
                if (nl == n) { // the line goes on in the next block
                    keep(b, from, len);
                    return true;
                }
                boolean more;
                if (pendingBytes == 0) {
                    more = emit(b, from, len);
                } else {
                    keep(b, from, len);
                    more = emit(pending, 0, pendingBytes);
                    pendingBytes = 0;
                }
                if (!more) {
                    return false;
                }
                from = nl + 1;
            }
            return true;
        }

        private void keep(byte[] b, int from, int len) {
            if (pendingBytes + len > pending.length) {
                pending = Arrays.copyOf(pending, (int) Math.min(maxLineBytes, Math.max(pendingBytes + len, 2L * pending.length)));
            }
            System.arraycopy(b, from, pending, pendingBytes, len);
            pendingBytes += len;
        }

        /** Line {@code ++lineNo}, the bytes {@code b[from, from + len)} without their newline; false to stop. */
        private boolean emit(byte[] b, int from, int len) throws IOException {
            lineNo++;
            String line;
            if (ascii(b, from, len)) { // the common case, without the decoder's char buffer
                line = new String(b, from, len, StandardCharsets.ISO_8859_1);
            } else {
                try {
                    line = utf8.decode(java.nio.ByteBuffer.wrap(b, from, len)).toString();
                } catch (java.nio.charset.CharacterCodingException e) {
                    throw new IllegalArgumentException(file + " line " + lineNo + ": not UTF-8 text (JSON Lines are UTF-8)");
                }
                if (lineNo == 1 && line.startsWith("\uFEFF")) {
                    line = line.substring(1); // a byte-order mark, as some editors write
                }
            }
            if (blank(line)) {
                return true;
            }
            return visitor.line(lineNo, row++, line);
        }

        /**
         * Only JSON's whitespace (space, tab, CR): String.isBlank also skips form feeds and other control characters,
         * which would drop a malformed line silently and shift every later row.
         */
        private static boolean blank(String line) {
            for (int i = 0; i < line.length(); i++) {
                char c = line.charAt(i);
                if (c != ' ' && c != '\t' && c != '\r') {
                    return false;
                }
            }
            return true;
        }

        private static boolean ascii(byte[] b, int from, int len) {
            for (int i = from, end = from + len; i < end; i++) {
                if (b[i] < 0) {
                    return false;
                }
            }
            return true;
        }
    }

    /** One top-k source row: ids and log-probabilities as given. */
    record Entries(int[] ids, double[] logProbs) {
        /**
         * Parses one JSON line; {@code row} is its 0-based row, checked against a {@code "row"} key. A record
         * {@code fast} reads is taken from it; any other line is parsed in full, which names what is wrong with it.
         */
        static Entries parse(Path file, long lineNo, String line, long row, JsonLine.TopKRecord fast) {
            if (fast.read(line) && (!fast.hasRow || fast.row == (double) row)) {
                return new Entries(Arrays.copyOf(fast.ids, fast.count), Arrays.copyOf(fast.logProbs, fast.count));
            }
            return parse(file, lineNo, line, row);
        }

        /** Parses one JSON line in full (objects, lists, boxed numbers): the reference, and what names every error. */
        static Entries parse(Path file, long lineNo, String line, long row) {
            Object v;
            try {
                v = JsonLine.parse(line);
            } catch (JsonLine.Malformed e) {
                throw new IllegalArgumentException(file + " line " + lineNo + ", column " + e.column + ": " + e.getMessage());
            }
            String where = file + " line " + lineNo;
            if (!(v instanceof Map<?, ?> m)) {
                throw new IllegalArgumentException(where + ": expected a JSON object, found " + kind(v));
            }
            if (m.containsKey("row")) {
                Object r = m.get("row");
                if (!(r instanceof Double d) || d != (double) row) {
                    Object shown = r instanceof Double d && d == Math.rint(d) && Math.abs(d) < 1e15 ? (Object) (long) (double) d
                            : r instanceof String text ? "\"" + text + "\" (a string)" : r; // "row" is 1, expected 1 would say nothing
                    throw new IllegalArgumentException(where + ": \"row\" is " + shown + ", expected " + row
                            + " (rows must be in dataset order, one line per sample)");
                }
            }
            if ((m.containsKey("ids") || m.containsKey("logprobs")) && m.containsKey("top_logprobs")) {
                // which entries are meant is not for the import to guess (the fast reader declines such a line, for this)
                String keys = m.containsKey("ids") && m.containsKey("logprobs") ? "\"ids\", \"logprobs\""
                        : m.containsKey("ids") ? "\"ids\"" : "\"logprobs\"";
                throw new IllegalArgumentException(where + ": has " + keys + " and \"top_logprobs\", both shapes of a record; expected "
                        + "\"ids\" and \"logprobs\", or \"top_logprobs\", not both");
            }
            if (m.containsKey("ids") || m.containsKey("logprobs")) {
                List<?> ids = list(m.get("ids"), where, "\"ids\"");
                List<?> lps = list(m.get("logprobs"), where, "\"logprobs\"");
                if (ids.size() != lps.size()) {
                    throw new IllegalArgumentException(where + ": " + ids.size() + " ids but " + lps.size() + " logprobs; expected one each");
                }
                int[] outIds = new int[ids.size()];
                double[] outLps = new double[lps.size()];
                for (int j = 0; j < outIds.length; j++) {
                    outIds[j] = id(ids.get(j), where + ", ids[" + j + "]");
                    outLps[j] = number(lps.get(j), where + ", logprobs[" + j + "]");
                }
                return new Entries(outIds, outLps);
            }
            if (m.containsKey("top_logprobs")) {
                List<?> entries = list(m.get("top_logprobs"), where, "\"top_logprobs\"");
                int[] outIds = new int[entries.size()];
                double[] outLps = new double[entries.size()];
                for (int j = 0; j < outIds.length; j++) {
                    String at = where + ", top_logprobs[" + j + "]";
                    if (!(entries.get(j) instanceof Map<?, ?> e)) {
                        throw new IllegalArgumentException(at + ": expected an object {\"id\": ..., \"logprob\": ...}, found "
                                + kind(entries.get(j)));
                    }
                    Object idValue = e.containsKey("id") ? e.get("id") : tokenId(e.get("token"), at);
                    outIds[j] = id(idValue, at + ".id");
                    outLps[j] = number(e.get("logprob"), at + ".logprob");
                }
                return new Entries(outIds, outLps);
            }
            throw new IllegalArgumentException(where + ": expected \"ids\" and \"logprobs\", or \"top_logprobs\"; found keys "
                    + m.keySet());
        }

        /** Which field of {@code line}, a record {@link #parse} read as one of no entries, is empty, as a message names it. */
        static String emptyField(String line) {
            return JsonLine.parse(line) instanceof Map<?, ?> m && m.containsKey("ids") ? "\"ids\" and \"logprobs\" are empty"
                    : "\"top_logprobs\" is empty";
        }

        /**
         * Checks the row and writes its {@code k} most probable entries (ties: the smaller id first) at
         * {@code ids[at]}, {@code lps[at]}, with -inf floored like {@link Labeler}'s; with {@code outIds} null, only checks it.
         *
         * @param exact the row must hold exactly {@code k} entries (k was not given, so every row has the first's count)
         * @param sc    working memory, reused from row to row
         */
        void select(Path file, String where, int k, boolean exact, int vocab, ValueCodec codec, int[] outIds, float[] outLps, int at,
                    Selection sc) {
            int n = ids.length;
            if (exact && n != k) {
                throw new IllegalArgumentException(file + " " + where + ": " + n + " entries, but the first row has " + k
                        + "; every row needs the same count (or give top-k to keep each row's k most probable entries)");
            }
            if (n < k) {
                throw new IllegalArgumentException(file + " " + where + ": " + n + " entries, expected at least " + k
                        + " (every row needs k entries; import with a smaller top-k)");
            }
            double mass = 0;
            long[] seen = sc.seen(vocab);
            int repeated = -1;
            for (int j = 0; j < n; j++) {
                int id = ids[j];
                if (id < 0 || id >= vocab) {
                    sc.forget(ids, j);
                    throw new IllegalArgumentException(file + " " + where + ", entry " + j + ": class id " + id + ", expected 0 to "
                            + (vocab - 1) + " (vocabulary of " + vocab + "; a larger vocabulary is set with vocab / --vocab)");
                }
                double lp = logProbs[j];
                if (Double.isNaN(lp) || (float) lp > StoreWriter.MAX_LOG_PROB) { // as float: the bound StoreWriter checks
                    sc.forget(ids, j);
                    throw new IllegalArgumentException(file + " " + where + ", entry " + j + ": log-probability " + lp
                            + ", expected a finite value <= 0 or -Infinity (are these logits? import log-probabilities)");
                }
                float stored = roundTrip(codec, (float) lp); // what StoreWriter checks: the value as the store's dtype holds it
                if (stored > StoreWriter.MAX_LOG_PROB) {
                    sc.forget(ids, j);
                    throw new IllegalArgumentException(file + " " + where + ", entry " + j + ": log-probability " + lp + ", which "
                            + codec.name().toLowerCase(Locale.ROOT) + " rounds to " + stored + ", above the " + StoreWriter.MAX_LOG_PROB
                            + " allowed for rounding; expected a value <= 0");
                }
                mass += LossMath.exp(stored); // as the store will hold it: what the writer and the reader sum
                long bit = 1L << id; // of word id >>> 6
                if ((seen[id >>> 6] & bit) != 0) {
                    repeated = id; // every entry is still checked first, as before
                }
                seen[id >>> 6] |= bit;
            }
            sc.forget(ids, n);
            if (repeated >= 0) {
                int[] sorted = ids.clone(); // the smallest repeated id is named
                Arrays.sort(sorted);
                for (int j = 1; j < sorted.length; j++) {
                    if (sorted[j] == sorted[j - 1]) {
                        throw new IllegalArgumentException(file + " " + where + ": class id " + sorted[j]
                                + " appears twice; expected distinct ids");
                    }
                }
            }
            String tooMuch = RowCheck.topKMass(mass);
            if (tooMuch != null) {
                throw new IllegalArgumentException(file + " " + where + ": " + tooMuch + ": these are not log-probabilities of one "
                        + "distribution");
            }
            if (outIds == null) {
                return;
            }
            int[] best = sc.order(this);
            for (int j = 0; j < k; j++) {
                outIds[at + j] = ids[best[j]];
                outLps[at + j] = (float) Math.max(logProbs[best[j]], Labeler.LOG_MIN_FLOAT);
            }
        }
    }

    /**
     * Working memory of {@link Entries#select}, reused from row to row of one pass (not thread-safe): a bit per class id
     * to find a repeated one (cleared after each row), and the entries' order, most probable first.
     */
    static final class Selection {
        private long[] seen = new long[0];
        private int[] order = new int[0];
        private int[] merge = new int[0];

        long[] seen(int vocab) {
            int words = (vocab + 63) >>> 6;
            if (seen.length < words) {
                seen = new long[words];
            }
            return seen;
        }

        /** Clears the bits of {@code ids[0, n)}, those a row set (ids checked to be in range). */
        void forget(int[] ids, int n) {
            for (int j = 0; j < n; j++) {
                seen[ids[j] >>> 6] = 0;
            }
        }

        /**
         * The indices of {@code e}'s entries, the most probable first and, among equal log-probabilities
         * ({@code Double.compare}), the smaller id first: a merge sort of int indices (no boxing), in place of
         * {@code Arrays.sort(Integer[], comparator)}. The ids are distinct, so the order is the only one.
         */
        int[] order(Entries e) {
            int n = e.ids.length;
            if (order.length < n) {
                order = new int[n];
                merge = new int[n];
            }
            int[] a = order;
            int[] b = merge;
            for (int j = 0; j < n; j++) {
                a[j] = j;
            }
            final int run = 16;
            for (int from = 0; from < n; from += run) { // insertion sort of short runs
                int to = Math.min(n, from + run);
                for (int j = from + 1; j < to; j++) {
                    int x = a[j];
                    int m = j - 1;
                    while (m >= from && before(e, x, a[m])) {
                        a[m + 1] = a[m];
                        m--;
                    }
                    a[m + 1] = x;
                }
            }
            for (int width = run; width < n; width *= 2) {
                for (int from = 0; from < n; from += 2 * width) {
                    int mid = Math.min(n, from + width);
                    int to = Math.min(n, from + 2 * width);
                    int p = from;
                    int q = mid;
                    int o = from;
                    while (p < mid && q < to) {
                        b[o++] = before(e, a[q], a[p]) ? a[q++] : a[p++];
                    }
                    while (p < mid) {
                        b[o++] = a[p++];
                    }
                    while (q < to) {
                        b[o++] = a[q++];
                    }
                }
                int[] t = a;
                a = b;
                b = t;
            }
            order = a;
            merge = b;
            return a;
        }

        /** Entry {@code x} comes before entry {@code y}: more probable, or as probable with a smaller id. */
        private static boolean before(Entries e, int x, int y) {
            int c = Double.compare(e.logProbs[y], e.logProbs[x]);
            return c < 0 || (c == 0 && e.ids[x] < e.ids[y]);
        }
    }

    private static List<?> list(Object v, String where, String key) {
        if (!(v instanceof List<?> l)) {
            throw new IllegalArgumentException(where + ": " + key + " is " + kind(v) + ", expected an array");
        }
        return l;
    }

    private static int id(Object v, String where) {
        if (!(v instanceof Double d) || d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(where + ": " + kind(v) + " " + v + ", expected an integer class id");
        }
        return (int) (double) d;
    }

    private static Object tokenId(Object token, String where) {
        if (token instanceof String s && s.startsWith("token_id:")) {
            try {
                return (double) Integer.parseInt(s.substring("token_id:".length()));
            } catch (NumberFormatException e) {
                // reported below
            }
        }
        throw new IllegalArgumentException(where + ": no \"id\", and \"token\" is " + (token == null ? "missing" : "'" + token + "'")
                + "; expected a class id (\"id\": 3, or \"token\": \"token_id:3\" as vLLM writes with return_tokens_as_token_ids)");
    }

    private static double number(Object v, String where) {
        if (!(v instanceof Double d)) {
            throw new IllegalArgumentException(where + ": " + kind(v) + ", expected a number");
        }
        return d;
    }

    private static String kind(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof Map) {
            return "an object";
        }
        if (v instanceof List) {
            return "an array";
        }
        if (v instanceof String) {
            return "a string";
        }
        if (v instanceof Boolean) {
            return "a boolean";
        }
        return "a number";
    }

    private static double[] toDoubles(float[] v, int from, int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) {
            d[i] = v[from + i];
        }
        return d;
    }

    /**
     * Checks dense rows starting at source row {@code firstRow} and turns them into what the store
     * holds: logits and log-probabilities as they are, probabilities as their logs; a zero probability is -inf,
     * which every dtype holds exactly and the losses read as zero mass (so is a log-probability below -65504 in
     * f16 or bf16, which would overflow f16: its probability is 0 in every precision).
     */
    static void checkDense(Path file, long firstRow, float[] v, int cols, Values values, ValueCodec codec) {
        int n = v.length / cols;
        // the largest magnitude the store's dtype holds without overflowing; beyond it, the exact check below
        // (as StoreWriter's: f16's largest is 65504, bf16's 3.3895e38, and a value checked here is never refused halfway)
        float safe = codec == ValueCodec.F16 ? 65504f : codec == ValueCodec.BF16 ? 3.38e38f : Float.MAX_VALUE;
        for (int r = 0; r < n; r++) {
            int base = r * cols;
            double mass = 0;
            boolean finite = false;
            for (int c = 0; c < cols; c++) {
                float x = v[base + c];
                switch (values) {
                    case LOGITS -> {
                        // -inf is a class of zero probability (a masked or padded class), as the losses read it
                        if (!(Math.abs(x) <= safe) && x != Float.NEGATIVE_INFINITY
                                && (!Float.isFinite(x) || !Float.isFinite(roundTrip(codec, x)))) {
                            throw new IllegalArgumentException(at(file, firstRow + r, c) + " is " + x + (Float.isFinite(x)
                                    ? ", beyond the range of " + codec.name().toLowerCase(Locale.ROOT) + "; store "
                                    + (codec == ValueCodec.F16 ? "f32 or bf16" : "f32")
                                    : "; logits must be finite, or -inf for a class of zero probability"));
                        }
                        finite |= x != Float.NEGATIVE_INFINITY;
                    }
                    case LOG_PROBS -> {
                        if (Float.isNaN(x) || x > StoreWriter.MAX_LOG_PROB) {
                            throw new IllegalArgumentException(at(file, firstRow + r, c) + " is " + x + "; log-probabilities must be "
                                    + "<= 0 or -inf (are these logits? import them as logits)");
                        }
                        mass += LossMath.exp(x);
                        if (x < -65504f && codec != ValueCodec.F32) { // would overflow f16: a probability of 0 in every precision
                            v[base + c] = Float.NEGATIVE_INFINITY;
                        }
                    }
                    case PROBABILITIES -> {
                        if (!(x >= 0 && x <= 1 + StoreWriter.MAX_LOG_PROB)) {
                            throw new IllegalArgumentException(at(file, firstRow + r, c) + " is " + x + "; probabilities must be in [0, 1]");
                        }
                        mass += x;
                        v[base + c] = (float) Math.log(x); // 0 becomes -inf: zero mass
                    }
                }
            }
            if (values == Values.LOGITS && !finite) {
                throw new IllegalArgumentException(file + ": row " + (firstRow + r) + ": every logit is -inf; a row needs at least "
                        + "one class of non-zero probability");
            }
            if (values != Values.LOGITS && Math.abs(mass - 1) > SUM_TOLERANCE) {
                throw new IllegalArgumentException(String.format(Locale.ROOT, "%s: row %d: the probabilities sum to %.4f, expected 1 "
                        + "(within %s): these are not %s of one distribution (logits? import them as logits)", file, firstRow + r,
                        mass, SUM_TOLERANCE, values == Values.LOG_PROBS ? "log-probabilities" : "probabilities"));
            }
        }
    }

    /** Where a dense value is, for errors (built only when one is thrown). */
    private static String at(Path file, long row, int c) {
        return file + ": row " + row + ", class " + c;
    }

    /** {@code x} as the store's dtype holds it (what {@link ValueCodec#put} then {@link ValueCodec#get} give), without a buffer. */
    private static float roundTrip(ValueCodec codec, float x) {
        return switch (codec) {
            case F32 -> x;
            case F16 -> ValueCodec.fromHalf(ValueCodec.toHalf(x));
            case BF16 -> ValueCodec.fromBfloat16(ValueCodec.toBfloat16(x));
        };
    }

    private static void checkRows(Path file, String found, long rows, Dataset data) {
        if (rows == 0) { // a store holds at least one row: said here, of the source, not by the store's header
            throw new IllegalArgumentException(file + ": " + found + ": the source has no rows (the dataset " + data.name() + " has "
                    + data.size() + " samples); expected one row per sample, and a store holds at least one");
        }
        if (rows != data.size()) {
            throw new IllegalArgumentException(file + ": " + found + ", but the dataset " + data.name() + " has " + data.size()
                    + " samples; expected one row per sample, in dataset order");
        }
    }

    private static void checkK(Path file, int k, int vocab) {
        if (k <= 0 || k > vocab) {
            throw new IllegalArgumentException(file + ": top-" + k + " rows, expected 1 <= k <= " + vocab + " (the vocabulary)");
        }
    }

    private static void warnIfOtherClasses(Path file, int cols, Dataset data) {
        if (cols != data.classes()) {
            LOG.warn("{} has {} values per row but the dataset {} has {} classes; a student of {} classes needs "
                    + "VocabularyAlignment to train from this store", file, cols, data.name(), data.classes(), data.classes());
        }
    }

    private static StoreHeader topKHeader(Options o, int vocab, int k, Dataset data, String id, String description, String source) {
        return new StoreHeader(StoreHeader.Layout.TOP_K, o.codec(), StoreHeader.ValueKind.LOG_PROBS, vocab, k, data.size(),
                o.chunkRows(StoreHeader.rowBytes(StoreHeader.Layout.TOP_K, o.codec(), vocab, k)), 1.0,
                Labeler.provenance(id, description, null, source, data));
    }

    /** Writes rows from {@code from} (the rows on disk) to the end, calling {@code tick} after each group of rows. */
    private interface Rows {
        void write(StoreWriter w, long from, Runnable tick) throws IOException;
    }

    /**
     * Writes {@code header} and the rows into {@code out} (or finds it complete). The source was read whole (checked
     * and hashed) before: a store or {@code .partial} there that was imported from another version of it (another
     * CRC32C or size in its provenance) is refused, naming both; one from before imports recorded their source is
     * reused or resumed by its settings and teacher id alone, as it was then; one of this source for the same samples with
     * other labels is reused or resumed as it is ({@link Labeler#asLabeledBefore}).
     *
     * @param namedTeacher the teacher id was given, not taken from the source's content (which would differ anyway)
     */
    private static Labeler.Result write(StoreHeader header, Path out, LongConsumer progress, long started, Source source, boolean namedTeacher,
                                        Rows rows) throws IOException {
        boolean complete = Files.exists(out);
        Path at = complete ? out : StoreWriter.partialPath(out);
        StoreHeader found = complete || Files.exists(at) ? existingHeader(at, complete) : null;
        header = Labeler.asStarted(found, header, at); // one from before the feature fingerprint: continued as it was started
        // the same source into the same samples with other labels: its rows are the ones this import writes, reused as they are
        header = Labeler.asLabeledBefore(found, header, at, complete, "imported for");
        if (found != null && !found.equals(header)) {
            StoreHeader unrecorded = Labeler.withProvenance(header, Labeler.withoutSource(header.provenance()));
            StoreHeader foundUnrecorded = Labeler.withProvenance(found, Labeler.withoutSource(found.provenance()));
            String then = sourceOf(found.provenance());
            if (then == null && found.equals(unrecorded)) {
                if (namedTeacher) {
                    LOG.warn("{} records no CRC32C of its source (an import by an older Distill4J): {} by its settings and teacher "
                            + "id '{}' alone; delete it to import again if {} changed since", at, complete ? "reused" : "resumed",
                            StoredTeacher.teacherId(found.provenance()), source.names());
                }
                header = unrecorded; // continued as it was started, so a resumed store is the one it would have been then
            } else if (then != null && (foundUnrecorded.equals(unrecorded)
                    || Labeler.otherLabelsAlone(foundUnrecorded, unrecorded))) { // the samples' labels differ too: the source is what to tell
                throw new StoreMismatchException(at + (complete ? " was imported from" : " was started from") + " another version of "
                        + source.names() + ": its content differs (" + (complete ? "when imported: " : "when started: ") + then + "; now: "
                        + sourceOf(header.provenance()) + "); delete " + at + " to import the source as it is now, or import into another store (another --out)");
            }
        }
        if (complete) {
            if (!found.equals(header)) {
                throw new StoreMismatchException(out + " already holds a store with other settings or from another source: "
                        + StoreWriter.differences(found, header) + ". Delete it to import again");
            }
            LOG.info("{} is already complete ({} rows)", out, header.rows());
            return new Labeler.Result(out, header.rows(), header.rows(), true, 0, 0);
        }
        long resumedFrom;
        long[] told = {0};
        StoreCancellation.check("importing", out); // before the header is written
        try (StoreWriter w = StoreWriter.open(out, header)) {
            resumedFrom = w.rowsWritten();
            if (resumedFrom > 0) {
                LOG.info("resuming {} at row {} of {}", out, resumedFrom, header.rows());
            }
            told[0] = resumedFrom;
            rows.write(w, resumedFrom, () -> {
                if (progress != null && w.rowsWritten() != told[0]) {
                    told[0] = w.rowsWritten();
                    progress.accept(told[0]);
                }
            });
            source.unchanged(); // the rows must be those the content id was taken of
            w.finish();
        } catch (IOException e) {
            throw StoreCancellation.orCancelled("importing", out, e); // a write cut short by an interrupt: not a full disk, as the writer's message supposes
        }
        if (progress != null && told[0] != header.rows()) {
            progress.accept(header.rows());
        }
        // from the call: reading the source for its checks and content id is part of an import's time, often most of it
        double seconds = (System.nanoTime() - started) / 1e9;
        return new Labeler.Result(out, header.rows(), resumedFrom, false, seconds, (header.rows() - resumedFrom) / Math.max(seconds, 1e-9));
    }

    /**
     * The header of the complete store at {@code path} (as the reader opens it: a bad store fails here, naming what is
     * wrong), or of the {@code .partial} there, or null when that cannot be read: the writer then says what is wrong with it.
     */
    static StoreHeader existingHeader(Path path, boolean complete) throws IOException {
        if (complete) {
            try (SoftTargetStore s = SoftTargetStore.open(path)) {
                return s.header();
            }
        }
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(path, java.nio.file.StandardOpenOption.READ)) {
            return StoreHeader.read(ch, ch.size(), path.toString());
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** The source's identity recorded in a provenance, or null (a labeled store, or an import from before it was recorded). */
    static String sourceOf(String provenance) {
        try {
            if (JsonLine.parse(provenance) instanceof Map<?, ?> record && record.get(Labeler.SOURCE) instanceof String v) {
                return v;
            }
        } catch (RuntimeException e) {
            // not one JSON object (a store from elsewhere)
        }
        return null;
    }

    /** {@code npy} opened for an import into {@code out}: an open cut short by an interrupt cancels it. */
    private static NpyArray open(Path npy, Path out) throws IOException {
        try {
            return NpyArray.open(npy);
        } catch (IOException e) {
            throw StoreCancellation.orCancelled("importing", out, e);
        }
    }
}
