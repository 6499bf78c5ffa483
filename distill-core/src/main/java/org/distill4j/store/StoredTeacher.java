package org.distill4j.store;

import org.distill4j.data.Batch;
import org.distill4j.data.Dataset;
import org.distill4j.loss.TeacherValues;
import org.distill4j.teacher.SparseTeacher;
import org.distill4j.teacher.Teacher;

import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A teacher served from a soft-target store: the rows of a batch's sample indices. Rows are addressed
 * by the sample's index in the dataset that was labeled, so it serves only the samples that were labeled, in that order
 * (checked by the feature fingerprint recorded at labeling time), whatever their labels: also with their labels removed,
 * changed or some of them ignored, since a teacher's outputs depend on the features alone ({@link #serves}). A dense store gives logits (stored log-probabilities
 * work as logits too: softmax(log p / T) is exactly the tempered distribution); a top-k store is a
 * {@link SparseTeacher} for {@code topk-kd}.
 */
public class StoredTeacher implements Teacher {
    private static final Pattern TEACHER = Pattern.compile("\"teacher\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"");
    // each key whole, quotes included, so neither pattern matches the other's key
    private static final Pattern FINGERPRINT = Pattern.compile("\"" + Labeler.FINGERPRINT + "\"\\s*:\\s*(\\d+)");
    private static final Pattern FEATURE_FINGERPRINT = Pattern.compile("\"" + Labeler.FEATURE_FINGERPRINT + "\"\\s*:\\s*(\\d+)");

    final SoftTargetStore store;

    StoredTeacher(SoftTargetStore store) {
        this.store = store;
    }

    /**
     * A teacher over {@code store}.
     *
     * <p>Only a store of values at temperature 1 (its header's {@code temperature}, as every labeling and import writes
     * it) is served: a teacher's rows are its T = 1 values, which the losses soften at their own temperature. Values
     * computed at T are not turned back: a dense row would be (multiplied by T, up to a constant per row), but a top-k row
     * would not, since its log-probabilities at T = 1 need the whole row's normalizer, which k entries do not hold (the
     * {@code rest} tail's mass would be wrong).
     *
     * @param expectedTeacher the teacher id a recipe names, or null to accept any; a store made by
     *                        another teacher is refused with both ids
     * @throws IllegalArgumentException naming the file and the header's {@code temperature}, when it is not 1
     */
    public static StoredTeacher of(SoftTargetStore store, String expectedTeacher) {
        Objects.requireNonNull(store, "store");
        double t = store.header().temperature();
        if (t != 1.0) {
            throw new IllegalArgumentException(store.path() + ": the header's temperature is " + t + ": its values were computed at "
                    + "T = " + t + ", but a stored teacher serves values at T = 1 (the loss softens them at its own temperature); "
                    + "store the teacher's T = 1 outputs (logits or log-probabilities) instead");
        }
        if (expectedTeacher != null) {
            String made = teacherId(store.header().provenance());
            if (!expectedTeacher.equals(made)) {
                throw new IllegalArgumentException(store.path() + " was made by teacher '" + made + "', but '" + expectedTeacher
                        + "' was expected");
            }
        }
        return store.header().layout() == StoreHeader.Layout.TOP_K ? new TopK(store) : new StoredTeacher(store);
    }

    /** The teacher id in a provenance record, as it was given (JSON escapes undone), or "unknown". */
    public static String teacherId(String provenance) {
        try {
            if (JsonLine.parse(provenance) instanceof java.util.Map<?, ?> record && record.get("teacher") instanceof String id) {
                return id;
            }
        } catch (RuntimeException e) {
            // not one JSON object (a store from elsewhere): the id as written, if there is one
        }
        Matcher m = TEACHER.matcher(provenance);
        return m.find() ? m.group(1) : "unknown";
    }

    @Override
    public int classes() {
        return store.header().vocab();
    }

    @Override
    public TeacherValues values() {
        return TeacherValues.LOGITS;
    }

    @Override
    public float[] outputs(Batch batch) {
        return store.dense(batch.indices());
    }

    /** False: its rows are looked up by the samples' indices, so an augmented batch would get its original samples' rows. */
    @Override
    public boolean readsFeatures() {
        return false;
    }

    /**
     * Whether the store's rows are this dataset's teacher outputs: the same number of samples, and the same features in
     * the same order, whatever the labels (removed, changed, some {@link Dataset#IGNORE_INDEX}), by the
     * {@link Dataset#featureFingerprint()} recorded at labeling or import time. A store from before that was recorded
     * (its provenance holds only {@code datasetFingerprint}) serves, as then, only the exact dataset it was labeled on,
     * labels included ({@link Dataset#fingerprint()}). A store that records neither serves nothing.
     */
    @Override
    public boolean serves(Dataset data) {
        if (data.size() != store.rows()) {
            return false;
        }
        String provenance = store.header().provenance();
        Long features = recorded(provenance, Labeler.FEATURE_FINGERPRINT);
        if (features != null) {
            return features == data.featureFingerprint();
        }
        Long full = recorded(provenance, Labeler.FINGERPRINT);
        return full != null && full == data.fingerprint();
    }

    /**
     * The whole number a provenance record holds under {@code key} ({@link Labeler#FINGERPRINT} or
     * {@link Labeler#FEATURE_FINGERPRINT}), or null when it holds none. Read as JSON; a provenance that is not one JSON
     * object (a store from elsewhere) is searched for the key, quoted, and a number.
     */
    static Long recorded(String provenance, String key) {
        try {
            if (JsonLine.parse(provenance) instanceof java.util.Map<?, ?> record) {
                // numbers are read as doubles: exact for the 41-bit fingerprints
                return record.get(key) instanceof Double d && d >= 0 && d < 0x1p53 && d == Math.rint(d) ? (Long) d.longValue() : null;
            }
        } catch (RuntimeException e) {
            // not one JSON object: searched below
        }
        Pattern p = key.equals(Labeler.FEATURE_FINGERPRINT) ? FEATURE_FINGERPRINT : key.equals(Labeler.FINGERPRINT) ? FINGERPRINT
                : Pattern.compile("\"" + Pattern.quote(key) + "\"\\s*:\\s*(\\d+)");
        Matcher m = p.matcher(provenance);
        if (!m.find()) {
            return null;
        }
        try {
            return Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            return null; // more digits than a long holds: no fingerprint of ours
        }
    }

    @Override
    public String identity() {
        StoreHeader h = store.header();
        // the teacher's id and the data's fingerprint; not the file's name, so a moved store is the same teacher
        return describe(false) + ", provenance " + h.provenance();
    }

    @Override
    public String describe() {
        return describe(true);
    }

    private String describe(boolean fileName) {
        StoreHeader h = store.header();
        return "stored teacher '" + teacherId(h.provenance()) + "' (" + (fileName ? store.path().getFileName() + ", " : "") + h.rows() + " rows, "
                + (h.layout() == StoreHeader.Layout.TOP_K ? "top-" + h.k() : "dense") + " " + h.codec().name().toLowerCase() + ")";
    }

    /** The top-k flavour. */
    static final class TopK extends StoredTeacher implements SparseTeacher {
        TopK(SoftTargetStore store) {
            super(store);
        }

        @Override
        public int k() {
            return store.header().k();
        }

        @Override
        public SparseTeacher.TopK topK(Batch batch) {
            SoftTargetStore.TopKRows r = store.topK(batch.indices());
            return new SparseTeacher.TopK(r.ids(), r.logProbs(), r.k());
        }

        @Override
        public boolean hasDenseOutputs() {
            return false;
        }

        @Override
        public float[] outputs(Batch batch) {
            throw new UnsupportedOperationException(describe() + " holds only top-" + k() + " entries per row; use topk-kd");
        }
    }
}
