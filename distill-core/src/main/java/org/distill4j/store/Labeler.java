package org.distill4j.store;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.TeacherValues;
import org.distill4j.teacher.SparseTeacher;
import org.distill4j.teacher.Teacher;
import org.distill4j.teacher.TopKTeacher;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.function.LongConsumer;

/**
 * The labeling job: runs a teacher once over a dataset and writes its outputs to a soft-target store,
 * dense or top-k. Resumable: after an interruption (even {@code kill -9}) the same call continues from
 * the last complete chunk, and the finished store equals an uninterrupted run's byte for byte: teacher batches never
 * cross a chunk boundary ({@link Options#batchSize()}), so the rows after a resume reach the teacher in the very batches
 * of an uninterrupted run. The
 * provenance records the teacher id and description, a content hash of the teacher's weights or model
 * ({@link Teacher#identity()}), and the dataset's name, size and fingerprints ({@link Dataset#fingerprint()}, of features
 * and labels, and {@link Dataset#featureFingerprint()}, of the features alone), so a stored teacher serves only the
 * samples that were labeled, in that order, with their labels or without (see {@link StoredTeacher#serves}), and a resume (or the reuse of a complete store) with another teacher is refused, also one retrained under the
 * same id. A complete store from before the weights were recorded is reused by its id alone, with a warning.
 *
 * <p>Labeling the same samples again with other labels (changed, removed as for unlabeled transfer data, or some
 * {@link Dataset#IGNORE_INDEX}) into a store of the same teacher and settings reuses the complete store and resumes a
 * {@code .partial}, since the teacher's outputs depend on the features alone (by the feature fingerprint:
 * {@link #asLabeledBefore}); its header stays as it was first written, so the dataset name and {@code datasetFingerprint}
 * it records (and {@code store info} shows) are those of the labeling that started it. Other features (another sample,
 * value or order), another teacher or weights, and other settings are refused as ever; a store from before the feature
 * fingerprint was recorded is reused or resumed only for the labels it was started with ({@link #asStarted}).
 *
 * <p>Classes a teacher gives no mass ({@code -Infinity} logits, e.g. of a {@code VocabularyAlignment} PAD teacher,
 * and zero probabilities) are stored in dense rows as {@code -Infinity}, exactly, in every dtype: training from the
 * store gives the loss and gradient that training from the live teacher gives. Top-k rows store them as
 * {@link #LOG_MIN_FLOAT}. A teacher value the losses would refuse (NaN, {@code +Infinity}, a row without a finite
 * value) stops labeling with an error naming the store row ({@link StoreWriter#writeDense}).
 *
 * <p>Cancellable: interrupting the labeling thread stops it before its next teacher call with a
 * {@link CancellationException}, the thread's interrupt status kept; the {@code .partial} is kept, and the same call
 * resumes it later.
 */
public final class Labeler {
    private static final Logger LOG = LoggerFactory.getLogger(Labeler.class);

    /**
     * log(Float.MIN_VALUE) = -103.28: what a top-k row stores for a zero probability (top-k values are finite in the
     * format). Dense rows store it as -Infinity, exactly zero mass, as the live teacher gives it.
     */
    static final double LOG_MIN_FLOAT = Math.log(Float.MIN_VALUE);

    private Labeler() {
    }

    /**
     * What to write.
     *
     * @param topK       0 for dense rows, else the entries kept per row
     * @param codec      value encoding
     * @param chunkRows  rows per checksummed chunk (the unit of resumption)
     * @param batchSize  rows per teacher call, at most: the teacher is called in batches of {@code batchSize} from each
     *                   chunk's first row, never across a chunk boundary, so the last batch of a chunk is shorter unless
     *                   {@code batchSize} divides {@code chunkRows} (give a divisor, e.g. 512 or 1024 for chunks of 1024,
     *                   for full batches); this is what makes a resumed store equal an uninterrupted run's byte for byte
     * @param teacherId  the teacher's id for provenance (what recipes name)
     */
    public record Options(int topK, ValueCodec codec, int chunkRows, int batchSize, String teacherId) {
        /**
         * Checks the options.
         *
         * @throws NullPointerException     if {@code codec} or {@code teacherId} is null
         * @throws IllegalArgumentException if {@code topK} is negative, or {@code chunkRows} or {@code batchSize} is not
         *                                  {@code > 0}
         */
        public Options {
            Objects.requireNonNull(codec, "codec");
            Objects.requireNonNull(teacherId, "teacherId");
            if (topK < 0 || chunkRows <= 0 || batchSize <= 0) {
                throw new IllegalArgumentException("label options need topK >= 0, chunkRows > 0, batchSize > 0; got " + topK + ", "
                        + chunkRows + ", " + batchSize);
            }
        }
    }

    /**
     * The end (exclusive) of the teacher batch that starts at row {@code from} of {@code rows}: {@code batchSize} rows on,
     * cut at the end of {@code from}'s chunk. Batches never cross a chunk boundary, and a resume starts at one, so a resumed
     * run gives the teacher exactly the batches an uninterrupted run gives it from there (a batch of another shape can
     * change the last bits of a teacher's outputs, and so the store's bytes).
     */
    static int batchEnd(long from, long rows, Options o) {
        long chunkEnd = (from / o.chunkRows() + 1) * o.chunkRows();
        return (int) Math.min(Math.min(rows, chunkEnd), from + o.batchSize());
    }

    /** What a labeling run did. */
    public record Result(Path path, long rows, long resumedFrom, boolean alreadyComplete, double seconds, double rowsPerSecond) {
    }

    /**
     * The header a labeling run of {@code teacher} over {@code data} writes.
     *
     * @throws IllegalArgumentException naming the dataset, when it has no samples (a store holds at least one row)
     */
    public static StoreHeader header(Teacher teacher, Dataset data, Options o) {
        if (data.size() == 0) {
            throw new IllegalArgumentException("the dataset " + data.name() + " has no samples: there is nothing to label, and a store "
                    + "holds at least one row");
        }
        if (o.topK() > teacher.classes()) {
            throw new IllegalArgumentException("top-" + o.topK() + " rows of a teacher with " + teacher.classes() + " classes: k must be 1 to "
                    + teacher.classes() + " (0 for dense rows)");
        }
        String provenance = provenance(o.teacherId(), teacher.describe(), weights(teacher), data);
        boolean sparse = o.topK() > 0;
        StoreHeader.ValueKind kind = sparse || teacher.values() == TeacherValues.PROBABILITIES
                ? StoreHeader.ValueKind.LOG_PROBS : StoreHeader.ValueKind.LOGITS;
        return new StoreHeader(sparse ? StoreHeader.Layout.TOP_K : StoreHeader.Layout.DENSE, o.codec(), kind, teacher.classes(),
                o.topK(), data.size(), o.chunkRows(), 1.0, provenance);
    }

    /**
     * The provenance every store records: the teacher's id and description and the dataset's name, size,
     * fingerprint and feature fingerprint ({@link StoredTeacher} reads the id and the fingerprints back).
     */
    static String provenance(String teacherId, String description, Dataset data) {
        return provenance(teacherId, description, null, data);
    }

    /** With {@code weights} (null: none, as for imported outputs) the content hash of the teacher's weights or model. */
    static String provenance(String teacherId, String description, String weights, Dataset data) {
        return provenance(teacherId, description, weights, null, data);
    }

    /**
     * With {@code source} (null: none, as for labeled stores) what identifies an imported source's content: its CRC32C
     * and size ({@link StoreImport}).
     */
    static String provenance(String teacherId, String description, String weights, String source, Dataset data) {
        return "{\"teacher\":\"" + json(teacherId) + "\",\"description\":\"" + json(description)
                + (weights == null ? "" : "\",\"" + WEIGHTS + "\":\"" + weights)
                + (source == null ? "" : "\",\"" + SOURCE + "\":\"" + json(source))
                + "\",\"dataset\":\"" + json(data.name()) + "\",\"datasetRows\":" + data.size()
                + ",\"" + FINGERPRINT + "\":" + data.fingerprint() + ",\"" + FEATURE_FINGERPRINT + "\":" + data.featureFingerprint() + "}";
    }

    /**
     * The provenance field with the dataset's {@link Dataset#fingerprint()} (features and labels): what {@code store info}
     * shows and what a store from before {@link #FEATURE_FINGERPRINT} serves by.
     */
    static final String FINGERPRINT = "datasetFingerprint";

    /**
     * The provenance field with the dataset's {@link Dataset#featureFingerprint()} (features only): what a
     * {@link StoredTeacher} serves by, so the same samples unlabeled, relabeled or partly ignored are served too.
     */
    static final String FEATURE_FINGERPRINT = "datasetFeatureFingerprint";

    /** {@code provenance} without the feature fingerprint (what a store recorded before it had one). */
    static String withoutFeatureFingerprint(String provenance) {
        return provenance.replaceFirst(",\"" + FEATURE_FINGERPRINT + "\":\\d+", "");
    }

    /**
     * {@code header} as a store started by an older Distill4J would have it, when {@code found} (the header of the store or
     * {@code .partial} already there, or null) records no feature fingerprint: such a store is reused or resumed as it
     * was started (and is then compared as before: teacher, settings and the dataset's full fingerprint), so it is
     * finished the way it began, and serves, as before, only the dataset it was labeled on, labels included. Otherwise
     * {@code header} as it is.
     */
    static StoreHeader asStarted(StoreHeader found, StoreHeader header, Path at) {
        if (found == null || StoredTeacher.recorded(found.provenance(), FINGERPRINT) == null
                || StoredTeacher.recorded(found.provenance(), FEATURE_FINGERPRINT) != null
                || StoredTeacher.recorded(header.provenance(), FEATURE_FINGERPRINT) == null) {
            return header;
        }
        LOG.info("{} records no feature fingerprint (a store started by an older Distill4J): it is continued as it was started, and "
                + "serves only the dataset it was labeled on, labels included; delete it and label again for it to serve these "
                + "samples unlabeled or relabeled too", at);
        return withProvenance(header, withoutFeatureFingerprint(header.provenance()));
    }

    /**
     * {@code found} (the header of the store or {@code .partial} already at {@code at}, or null) in place of {@code header}
     * when the two differ only in the dataset's labels: both record the same feature fingerprint (the same samples'
     * features in the same order, {@link Dataset#featureFingerprint()}), and their provenance differs in nothing but the
     * dataset's name and its full {@link #FINGERPRINT} (of the labels too); the settings, the teacher's id, description
     * and weights (an import's source) are the same. The teacher's outputs depend on the features alone, so the rows there
     * are exactly those this labeling (or import) writes: the complete store is reused and the {@code .partial} resumed as
     * it was started, its header as it was first written (its provenance keeps the first labeling's dataset name and
     * full fingerprint, which {@code store info} shows). Otherwise {@code header}: any other difference is compared, and
     * refused, as before; a store without a feature fingerprint is left to {@link #asStarted} (it serves only the labels
     * it was labeled with, so it is not reused for others).
     *
     * @param complete whether {@code at} is the complete store (else its {@code .partial}), for the log
     * @param made     how the complete store was made, for the log: "labeled on" or "imported for"
     */
    static StoreHeader asLabeledBefore(StoreHeader found, StoreHeader header, Path at, boolean complete, String made) {
        if (found == null || found.equals(header) || !otherLabelsAlone(found, header)) {
            return header;
        }
        LOG.info("{} was {} the same samples with other labels (dataset '{}', now '{}'; the same features by their fingerprint): "
                        + "a teacher's outputs depend on the features alone, so its rows serve these samples as they are; {}, its "
                        + "header as it was first written (its datasetFingerprint stays that of the labels it was started with)",
                at, complete ? made : "started on", datasetName(found.provenance()), datasetName(header.provenance()),
                complete ? "it is reused" : "it is resumed");
        return found;
    }

    /**
     * Whether {@code a} and {@code b} differ at most in the labels of the same samples: both record the same feature
     * fingerprint, and nothing else differs but the dataset's name and full fingerprint.
     */
    static boolean otherLabelsAlone(StoreHeader a, StoreHeader b) {
        Long features = StoredTeacher.recorded(a.provenance(), FEATURE_FINGERPRINT);
        return features != null && features.equals(StoredTeacher.recorded(b.provenance(), FEATURE_FINGERPRINT))
                && withProvenance(a, withoutLabels(a.provenance())).equals(withProvenance(b, withoutLabels(b.provenance())));
    }

    /**
     * {@code provenance} without the dataset's name and full {@link #FINGERPRINT}: what stays the same when the same samples
     * are labeled with other labels. The name is matched as the JSON string {@link #provenance} writes (every quote in it
     * escaped), so no part of another field is taken for it.
     */
    static String withoutLabels(String provenance) {
        return provenance.replaceFirst(",\"dataset\":\"(?:[^\"\\\\]|\\\\.)*\"", "")
                .replaceFirst(",\"" + FINGERPRINT + "\":\\d+", "");
    }

    /** The dataset's name a provenance records, or "unknown". */
    private static String datasetName(String provenance) {
        try {
            if (JsonLine.parse(provenance) instanceof java.util.Map<?, ?> record && record.get("dataset") instanceof String name) {
                return name;
            }
        } catch (RuntimeException e) {
            // not one JSON object (a store from elsewhere)
        }
        return "unknown";
    }

    static StoreHeader withProvenance(StoreHeader h, String provenance) {
        return new StoreHeader(h.layout(), h.codec(), h.values(), h.vocab(), h.k(), h.rows(), h.chunkRows(), h.temperature(), provenance);
    }

    /** The provenance field with the content hash of the teacher's weights or model. */
    static final String WEIGHTS = "teacherWeights";

    /** The provenance field of an imported store with its source's CRC32C and size. */
    static final String SOURCE = "source";

    /** {@code provenance} without the source's record (what an import recorded before it had one). */
    static String withoutSource(String provenance) {
        return provenance.replaceFirst(",\"" + SOURCE + "\":\"[^\"\\\\]*\"", "");
    }

    /** The first 64 bits of the SHA-256 of the teacher's identity, in hex: what changes when its weights or model do. */
    static String weights(Teacher teacher) {
        try {
            byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(teacher.identity().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            return java.util.HexFormat.of().formatHex(d, 0, 8);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    /** {@code provenance} without the weights' hash (what a store recorded before it had one). */
    static String withoutWeights(String provenance) {
        return provenance.replaceFirst(",\"" + WEIGHTS + "\":\"[0-9a-f]*\"", "");
    }

    /**
     * {@code s} as the inside of a JSON string: quotes, backslashes and control characters escaped, and a lone UTF-16
     * surrogate (half of a pair, which has no UTF-8 form and would be stored as '?') as {@code \\uXXXX}.
     */
    private static String json(String s) {
        StringBuilder b = new StringBuilder(s.length() + 8);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean lone = Character.isHighSurrogate(c) ? i + 1 == s.length() || !Character.isLowSurrogate(s.charAt(i + 1))
                    : Character.isLowSurrogate(c) && (i == 0 || !Character.isHighSurrogate(s.charAt(i - 1)));
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || lone) {
                b.append(String.format(java.util.Locale.ROOT, "\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    /**
     * Labels {@code data} into {@code out}, resuming an interrupted run there. A complete store at {@code out} of this
     * teacher and these settings is reused ({@link Result#alreadyComplete()}), also one labeled on the same samples with
     * other labels, as it is (see the class comment).
     *
     * @param progress told the number of rows on disk after each batch (may be null)
     * @throws StoreMismatchException naming the file and the differences, when the store or {@code .partial} at
     *                                {@code out} was made by another teacher (or other weights), with other settings, or
     *                                from other samples; it is left as it is
     * @throws CancellationException when the thread is interrupted (its interrupt status stays set; the partial store is
     *                               kept for a resume)
     */
    public static Result label(Teacher teacher, Dataset data, Path out, Options o, LongConsumer progress) throws IOException {
        StoreCancellation.check("labeling", out);
        StoreHeader header = header(teacher, data, o);
        if (Files.exists(out)) {
            try (SoftTargetStore s = SoftTargetStore.open(out)) {
                StoreHeader h = s.header();
                header = asStarted(h, header, out);
                header = asLabeledBefore(h, header, out, true, "labeled on"); // the same samples with other labels: reused as it is
                if (!h.equals(header) && !h.provenance().contains("\"" + WEIGHTS + "\"")
                        && h.equals(new StoreHeader(header.layout(), header.codec(), header.values(), header.vocab(), header.k(),
                        header.rows(), header.chunkRows(), header.temperature(), withoutWeights(header.provenance())))) {
                    // from before stores recorded the teacher's weights: its id is all there is to go by, as it was then
                    LOG.warn("{} records no hash of its teacher's weights (an older store): reused by its teacher id '{}' alone;"
                            + " delete it to relabel if that teacher was retrained", out, StoredTeacher.teacherId(h.provenance()));
                } else if (!h.equals(header)) {
                    throw new StoreMismatchException(out + " already holds a store with other settings or another teacher: "
                            + StoreWriter.differences(s.header(), header) + ". Delete it to relabel");
                }
            }
            LOG.info("{} is already complete ({} rows)", out, data.size());
            return new Result(out, data.size(), data.size(), true, 0, 0);
        }
        Path partial = StoreWriter.partialPath(out);
        if (Files.exists(partial)) {
            StoreHeader found = StoreImport.existingHeader(partial, false);
            header = asStarted(found, header, partial);
            header = asLabeledBefore(found, header, partial, false, "labeled on"); // other labels, the same samples: resumed
        }
        SparseTeacher sparse = o.topK() > 0 ? TopKTeacher.of(teacher, o.topK()) : null;
        long start = System.nanoTime();
        long resumedFrom;
        try (StoreWriter w = StoreWriter.open(out, header)) {
            resumedFrom = w.rowsWritten();
            if (resumedFrom > 0) {
                LOG.info("resuming {} at row {} of {}", out, resumedFrom, data.size());
            }
            for (long from = resumedFrom; from < data.size(); ) {
                StoreCancellation.check("labeling", out);
                int to = batchEnd(from, data.size(), o);
                Batch b = Batch.range(data, (int) from, to);
                if (sparse != null) {
                    SparseTeacher.TopK top = sparse.topK(b);
                    float[] lps = top.logProbs(); // a fresh array from TopKTeacher
                    for (int i = 0; i < lps.length; i++) {
                        // top-k values are finite: a zero probability (log = -inf) is stored as the log of the smallest float
                        lps[i] = (float) Math.max(lps[i], LOG_MIN_FLOAT);
                    }
                    w.writeTopK(top.ids(), lps, b.size());
                } else {
                    float[] values = teacher.outputs(b);
                    if (teacher.values() == TeacherValues.PROBABILITIES) {
                        for (int i = 0; i < values.length; i++) {
                            if (!(values[i] >= 0) || values[i] == Float.POSITIVE_INFINITY) { // its log would be NaN or +inf
                                throw new IllegalArgumentException(out + ": teacher probability of row " + (from + i / teacher.classes())
                                        + ", class " + (i % teacher.classes()) + " is " + values[i] + ", expected a finite value >= 0");
                            }
                            // a zero probability becomes -inf, zero mass, as the losses read the live teacher's 0 (a finite
                            // floor would give it mass at T > 1 and move logit-std's mean); -inf logits are kept as they are
                            values[i] = (float) Math.log(values[i]);
                        }
                    }
                    w.writeDense(values, b.size());
                }
                if (progress != null) {
                    progress.accept(w.rowsWritten());
                }
                from = to;
            }
            w.finish();
        } catch (IOException e) {
            throw StoreCancellation.orCancelled("labeling", out, e);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return new Result(out, data.size(), resumedFrom, false, seconds, (data.size() - resumedFrom) / Math.max(seconds, 1e-9));
    }
}
