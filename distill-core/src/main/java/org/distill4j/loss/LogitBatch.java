package org.distill4j.loss;

import java.util.Arrays;
import java.util.Objects;

/**
 * The inputs of a logit loss for one batch, as plain row-major float buffers.
 *
 * <ul>
 *   <li>{@code student}: student logits, {@code rows x classes}, element {@code (r, c)} at
 *       {@code r * classes + c};</li>
 *   <li>{@code teacher}: dense teacher logits or probabilities (see {@link TeacherValues}) in the same
 *       layout, or {@code null};</li>
 *   <li>a sparse top-k teacher instead ({@link #ofTopK}): per row {@code k} class ids and their
 *       log-probabilities, as API logprobs and compressed logit stores come;</li>
 *   <li>{@code labels}: hard labels, one class index in {@code [0, classes)} per row,
 *       {@link #UNLABELED} for a row without a hard label (unlabeled transfer data), or
 *       {@link #IGNORE_INDEX} for a row that counts for nothing (padding); or {@code null}.</li>
 * </ul>
 *
 * <p><b>Counted rows.</b> A row counts unless its label is {@link #IGNORE_INDEX} or the row mask
 * ({@link #withRowMask}) says false. Uncounted rows add nothing to any loss and get a zero gradient.
 * With {@link Reduction#MEAN} the sum over counted rows is divided by their number, or by the
 * {@linkplain #withNormalizer normalizer} when one is set: give every micro-batch of an accumulated
 * step the total count of counted rows of the whole step and the summed gradients equal those of one
 * big batch.
 *
 * <p><b>Unlabeled rows.</b> A row labeled {@link #UNLABELED} counts: it takes part in every teacher term and in the
 * mean's count, but a hard-label term (the {@code ce} loss, {@code kd}'s {@code alpha * CE}) is 0 on it, with a zero
 * gradient. Its loss is the one of a labeled row without that term, so a batch's value is the mean over its rows of
 * what each row has. A loss that needs the label for its teacher term ({@code dkd}) refuses such a row.
 *
 * <p>The buffers are referenced, not copied; a batch is a view for one call. Every length, label and
 * top-k id is checked here and errors name the buffer, row and sizes, so a wrong shape never turns
 * into a silently wrong loss.
 */
public final class LogitBatch {
    /** A label that marks a row as padding (PyTorch's convention). */
    public static final int IGNORE_INDEX = -100;

    /**
     * A label that marks a row without a hard label: it counts and takes part in every teacher term, while hard-label
     * terms are 0 on it (see the class comment).
     */
    public static final int UNLABELED = -1;

    /** The id of a top-k slot that holds no class ({@link #ofTopK}). */
    public static final int ABSENT = -1;

    private final int rows;
    private final int classes;
    private final float[] student;
    private final float[] teacher;
    private final TeacherValues teacherValues;
    private final int[] topkIds;
    private final float[] topkLogProbs;
    private final int k;
    private final int[] labels;
    private final boolean[] rowMask;
    private final int normalizer;
    private final int countedRows;

    private LogitBatch(int rows, int classes, float[] student, float[] teacher, TeacherValues teacherValues,
                       int[] topkIds, float[] topkLogProbs, int k, int[] labels, boolean[] rowMask, int normalizer) {
        this.rows = rows;
        this.classes = classes;
        this.student = student;
        this.teacher = teacher;
        this.teacherValues = teacherValues;
        this.topkIds = topkIds;
        this.topkLogProbs = topkLogProbs;
        this.k = k;
        this.labels = labels;
        this.rowMask = rowMask;
        this.normalizer = normalizer;
        int counted = 0;
        for (int r = 0; r < rows; r++) {
            if (counts(r)) {
                counted++;
            }
        }
        this.countedRows = counted;
        if (normalizer > 0 && normalizer < counted) {
            throw new IllegalArgumentException("normalizer " + normalizer + " is below the " + counted + " counted rows of this batch "
                    + "(MEAN would weigh each row 1/" + normalizer + " and no longer average); expected 0 (divide by the batch's own "
                    + "counted rows) or the counted rows of the whole accumulated step, at least " + counted);
        }
    }

    private static void checkShape(int rows, int classes, float[] student) {
        if (rows <= 0) {
            throw new IllegalArgumentException("rows must be > 0, got " + rows);
        }
        if (classes <= 0) {
            throw new IllegalArgumentException("classes must be > 0, got " + classes);
        }
        Objects.requireNonNull(student, "student logits");
        long expected = (long) rows * classes;
        if (student.length != expected) {
            throw new IllegalArgumentException("student logits have " + student.length
                    + " elements, expected rows x classes = " + rows + " x " + classes + " = " + expected);
        }
    }

    private static void checkLabels(int rows, int classes, int[] labels) {
        if (labels == null) {
            return;
        }
        if (labels.length != rows) {
            throw new IllegalArgumentException("labels have " + labels.length + " entries, expected one per row: " + rows);
        }
        for (int r = 0; r < rows; r++) {
            if ((labels[r] < 0 || labels[r] >= classes) && labels[r] != IGNORE_INDEX && labels[r] != UNLABELED) {
                throw new BadRowException("label of row ", r, " is " + labels[r] + ", expected a class index in [0, " + classes
                        + "), UNLABELED (" + UNLABELED + ") or IGNORE_INDEX (" + IGNORE_INDEX + ")");
            }
        }
    }

    /** Student logits with hard labels only (e.g. for cross-entropy). */
    public static LogitBatch ofLabels(int rows, int classes, float[] student, int[] labels) {
        checkShape(rows, classes, student);
        checkLabels(rows, classes, Objects.requireNonNull(labels, "labels"));
        return new LogitBatch(rows, classes, student, null, TeacherValues.LOGITS, null, null, 0, labels, null, 0);
    }

    /**
     * Student and dense teacher rows, with optional hard labels.
     *
     * @param labels may be null when no loss term uses hard labels
     * @throws IllegalArgumentException when the teacher values are not {@code rows x classes}; the message
     *                                  gives the expected shape and names each mismatch the length allows:
     *                                  another vocabulary (see {@code VocabularyAlignment}) or another row count
     */
    public static LogitBatch of(int rows, int classes, float[] student, float[] teacher,
                                TeacherValues teacherValues, int[] labels) {
        checkShape(rows, classes, student);
        Objects.requireNonNull(teacher, "teacher values");
        Objects.requireNonNull(teacherValues, "teacherValues");
        long expected = (long) rows * classes;
        if (teacher.length != expected) {
            throw new IllegalArgumentException(teacherShapeMismatch(rows, classes, teacher.length, teacherValues));
        }
        checkLabels(rows, classes, labels);
        return new LogitBatch(rows, classes, student, teacher, teacherValues, null, null, 0, labels, null, 0);
    }

    /**
     * The error for dense teacher values of the wrong length: always the expected {@code rows x classes}, and each
     * reading the length allows, since either size can be the one that differs: as the student's rows, another
     * vocabulary (aligned with {@code VocabularyAlignment}); as rows of the student's classes, another row count
     * (e.g. batch and sequence positions flattened differently on the two sides).
     */
    private static String teacherShapeMismatch(int rows, int classes, int length, TeacherValues values) {
        StringBuilder m = new StringBuilder("teacher " + values.name().toLowerCase(java.util.Locale.ROOT) + " have " + length
                + " elements, expected rows x classes = " + rows + " x " + classes + " = " + (long) rows * classes);
        boolean otherVocabulary = length % rows == 0 && length > 0;
        boolean otherRows = length % classes == 0 && length > 0;
        if (otherVocabulary) {
            m.append(otherRows ? "; either" : ";").append(" as ").append(rows).append(" rows they have ").append(length / rows)
                    .append(" classes per row but the student has ").append(classes)
                    .append(": the vocabularies must match, or align them explicitly with VocabularyAlignment (TRUNCATE or PAD)");
        }
        if (otherRows) {
            m.append(otherVocabulary ? ", or" : ";").append(" as rows of ").append(classes).append(" classes they are ")
                    .append(length / classes).append(" rows but the student has ").append(rows)
                    .append(": teacher and student must see the same rows (check how batch and sequence positions are flattened)");
        }
        return m.toString();
    }

    /**
     * Student rows and a sparse top-k teacher: for row {@code r}, {@code ids[r*k + j]} is a class and
     * {@code logProbs[r*k + j]} its teacher log-probability (natural log, temperature 1). Ids must be
     * distinct within a row; log-probabilities at most 0 (up to 1e-4 of rounding above), finite or
     * {@code -Infinity} (probability 0, as some servers return), and at least one finite per row. A slot of id
     * {@link #ABSENT} and log-probability {@code -Infinity} holds no class: a row of fewer than {@code k} entries (e.g. one
     * whose entries a vocabulary alignment dropped) fills its free slots so. Such a row is the top-k of its other entries:
     * under {@code topk-kd}'s {@code rest} tail every class outside them is part of the rest.
     */
    public static LogitBatch ofTopK(int rows, int classes, float[] student, int[] ids, float[] logProbs, int k, int[] labels) {
        checkShape(rows, classes, student);
        Objects.requireNonNull(ids, "top-k ids");
        Objects.requireNonNull(logProbs, "top-k log-probabilities");
        if (k <= 0 || k > classes) {
            throw new IllegalArgumentException("top-k k is " + k + ", expected 1 <= k <= classes (" + classes + ")");
        }
        long expected = (long) rows * k;
        if (ids.length != expected || logProbs.length != expected) {
            throw new IllegalArgumentException("top-k teacher has " + ids.length + " ids and " + logProbs.length
                    + " log-probabilities, expected rows x k = " + rows + " x " + k + " = " + expected + " of each");
        }
        boolean[] seen = new boolean[classes];
        for (int r = 0; r < rows; r++) {
            boolean mass = false;
            for (int j = 0; j < k; j++) {
                int id = ids[r * k + j];
                float lp = logProbs[r * k + j];
                if (id == ABSENT) {
                    if (lp != Float.NEGATIVE_INFINITY) {
                        throw new BadRowException("top-k entry at row ", r, ", entry " + j + " is absent (id " + ABSENT
                                + ") but has log-probability " + lp + "; an absent slot has -Infinity");
                    }
                    continue;
                }
                if (id < 0 || id >= classes) {
                    throw new BadRowException("top-k id at row ", r, ", entry " + j + " is " + id
                            + ", expected a class in [0, " + classes + ") or " + ABSENT + " for an absent slot");
                }
                if (seen[id]) {
                    throw new BadRowException("top-k ids of row ", r, " repeat class " + id);
                }
                seen[id] = true;
                if (!(lp <= 1e-4f)) { // NaN, +Infinity, or above 0 by more than rounding
                    throw new BadRowException("top-k log-probability at row ", r, ", entry " + j + " is " + lp
                            + ", expected a finite value <= 0 (up to 1e-4 of rounding above 0 is accepted), or -Infinity "
                            + "for probability 0");
                }
                mass |= lp != Float.NEGATIVE_INFINITY;
            }
            if (!mass) {
                throw new BadRowException("top-k log-probabilities of row ", r, " are all -Infinity (no entry has "
                        + "probability); expected at least one finite value");
            }
            for (int j = 0; j < k; j++) {
                if (ids[r * k + j] != ABSENT) {
                    seen[ids[r * k + j]] = false;
                }
            }
        }
        checkLabels(rows, classes, labels);
        return new LogitBatch(rows, classes, student, null, TeacherValues.LOGITS, ids, logProbs, k, labels, null, 0);
    }

    /**
     * A batch with other student logits and dense teacher logits of the same shape, keeping this one's
     * labels, row mask and normalizer (for wrappers that transform logits, e.g. logit standardization).
     */
    public LogitBatch derive(float[] newStudent, float[] newTeacherLogits) {
        LogitBatch b = of(rows, classes, newStudent, newTeacherLogits, TeacherValues.LOGITS, labels);
        return new LogitBatch(rows, classes, b.student, b.teacher, TeacherValues.LOGITS, null, null, 0, labels, rowMask, normalizer);
    }

    /**
     * Rows {@code [from, to)} as a batch of their own with other student logits and dense teacher logits of
     * {@code (to - from) x classes}, keeping those rows' labels and row mask and weighing them as this batch does (as
     * {@link #slice} does); for the whole batch, {@link #derive}. For wrappers that transform a slice's logits.
     */
    LogitBatch deriveRows(int from, int to, float[] newStudent, float[] newTeacherLogits) {
        if (from == 0 && to == rows) {
            return derive(newStudent, newTeacherLogits);
        }
        checkRange(from, to);
        int n = to - from;
        int[] y = labels == null ? null : Arrays.copyOfRange(labels, from, to);
        LogitBatch b = of(n, classes, newStudent, newTeacherLogits, TeacherValues.LOGITS, y);
        boolean[] mask = rowMask == null ? null : Arrays.copyOfRange(rowMask, from, to);
        int norm = normalizer > 0 ? normalizer : countedRows; // as slice's
        return new LogitBatch(n, classes, b.student, b.teacher, TeacherValues.LOGITS, null, null, 0, y, mask, norm);
    }

    /** The same batch where only rows with {@code mask[r]} count (in addition to IGNORE_INDEX labels). */
    public LogitBatch withRowMask(boolean[] mask) {
        if (mask != null && mask.length != rows) {
            throw new IllegalArgumentException("row mask has " + mask.length + " entries, expected one per row: " + rows);
        }
        return new LogitBatch(rows, classes, student, teacher, teacherValues, topkIds, topkLogProbs, k, labels, mask, normalizer);
    }

    /**
     * The same batch with MEAN reduction dividing by {@code n} instead of this batch's counted rows
     * (for gradient accumulation: pass the counted rows of the whole accumulated step); 0 restores the
     * default.
     *
     * @throws IllegalArgumentException when {@code n < 0}, or {@code 0 < n <} {@link #countedRows()}: a whole step
     *                                  has at least the counted rows of each of its micro-batches (a row mask set
     *                                  later is checked the same way)
     */
    public LogitBatch withNormalizer(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("normalizer must be >= 0, got " + n);
        }
        return new LogitBatch(rows, classes, student, teacher, teacherValues, topkIds, topkLogProbs, k, labels, rowMask, n);
    }

    /**
     * Rows {@code [from, to)} of this batch as a batch of their own, its buffers copied, that weighs each of its
     * counted rows as this batch does ({@link #rowWeight}: the normalizer is this batch's, or its counted rows).
     * For a {@linkplain LogitLoss#rowSeparable row-separable} loss the values over the slices of a split sum to
     * the value over the batch, and each row's gradient is the same. Row {@code r} of the slice is row
     * {@code from + r} of this batch (errors that a loss raises on a slice name the slice's rows). To compute a loss on
     * rows of a batch without copying them, see {@link LogitLoss#computeRows}.
     *
     * @throws IllegalArgumentException unless {@code 0 <= from < to <= rows()}
     */
    public LogitBatch slice(int from, int to) {
        checkRange(from, to);
        int n = to - from;
        float[] s = Arrays.copyOfRange(student, from * classes, to * classes);
        float[] t = teacher == null ? null : Arrays.copyOfRange(teacher, from * classes, to * classes);
        int[] ids = topkIds == null ? null : Arrays.copyOfRange(topkIds, from * k, to * k);
        float[] lps = topkLogProbs == null ? null : Arrays.copyOfRange(topkLogProbs, from * k, to * k);
        int[] y = labels == null ? null : Arrays.copyOfRange(labels, from, to);
        boolean[] mask = rowMask == null ? null : Arrays.copyOfRange(rowMask, from, to);
        int norm = normalizer > 0 ? normalizer : countedRows;  // 0: none counts here, nor in any slice
        return new LogitBatch(n, classes, s, t, teacherValues, ids, lps, k, y, mask, norm);
    }

    /**
     * Checks a range of rows for {@link #slice} and {@link LogitLoss#computeRows}.
     *
     * @throws IllegalArgumentException unless {@code 0 <= from < to <= rows()}
     */
    void checkRange(int from, int to) {
        if (from < 0 || to > rows || from >= to) {
            throw new IllegalArgumentException("slice [" + from + ", " + to + ") of a batch of " + rows + " rows: expected 0 <= from < to <= "
                    + rows);
        }
    }

    /** The number of rows (samples) in the batch, {@code > 0}; counted or not. */
    public int rows() {
        return rows;
    }

    /** The number of classes per row, {@code > 0}: the width of the student logits and of a dense teacher. */
    public int classes() {
        return classes;
    }

    /**
     * The student logits, {@code rows x classes} row-major (element {@code (r, c)} at {@code r * classes + c}). The buffer
     * the batch was made with, not a copy: do not modify it.
     */
    public float[] student() {
        return student;
    }

    /** Dense teacher values, or null. */
    public float[] teacher() {
        return teacher;
    }

    /**
     * What the dense {@link #teacher()} holds, logits or probabilities; never null. {@link TeacherValues#LOGITS} for a
     * batch without a dense teacher (labels only, or a top-k teacher).
     */
    public TeacherValues teacherValues() {
        return teacherValues;
    }

    /** Top-k teacher ids ({@code rows x k}), or null. */
    public int[] topkIds() {
        return topkIds;
    }

    /** Top-k teacher log-probabilities ({@code rows x k}), or null. */
    public float[] topkLogProbs() {
        return topkLogProbs;
    }

    /** Entries per row of the top-k teacher (0 without one). */
    public int k() {
        return k;
    }

    /** Hard labels, or null. */
    public int[] labels() {
        return labels;
    }

    /** Whether row {@code r} has a hard label: labels are given and its label is a class (not UNLABELED nor IGNORE_INDEX). */
    public boolean hasLabel(int r) {
        return labels != null && labels[r] >= 0;
    }

    /** Whether row {@code r} counts (not masked out, label not IGNORE_INDEX). */
    public boolean counts(int r) {
        return (rowMask == null || rowMask[r]) && (labels == null || labels[r] != IGNORE_INDEX);
    }

    /** The number of counted rows. */
    public int countedRows() {
        return countedRows;
    }

    /** The number of counted rows among rows {@code [from, to)} (of the whole batch: {@link #countedRows()}). */
    public int countedRows(int from, int to) {
        checkRange(from, to);
        if (from == 0 && to == rows) {
            return countedRows;
        }
        int counted = 0;
        for (int r = from; r < to; r++) {
            if (counts(r)) {
                counted++;
            }
        }
        return counted;
    }

    /**
     * The factor each counted row's loss and gradient are multiplied by: for MEAN, one over the
     * normalizer if set, else over the counted rows (0 when none count); 1 for SUM.
     */
    public double rowWeight(Reduction reduction) {
        if (reduction == Reduction.SUM) {
            return 1.0;
        }
        int n = normalizer > 0 ? normalizer : countedRows;
        return n == 0 ? 0.0 : 1.0 / n;
    }

    /** Zeroes the gradient of row {@code r} (for rows that do not count). */
    public static void zeroRow(float[] grad, int r, int classes) {
        Arrays.fill(grad, r * classes, (r + 1) * classes, 0f);
    }

    /** Throws a clear error when a loss needs dense teacher values this batch does not carry. */
    public float[] requireTeacher(String lossName) {
        if (teacher == null) {
            throw new IllegalArgumentException("loss '" + lossName + "' needs dense teacher outputs, but the batch has "
                    + (topkIds != null ? "a top-k teacher (use topk-kd)" : "none"));
        }
        return teacher;
    }

    /** Throws a clear error when a loss needs a top-k teacher this batch does not carry. */
    public void requireTopK(String lossName) {
        if (topkIds == null) {
            throw new IllegalArgumentException("loss '" + lossName + "' needs a top-k teacher (ids + log-probabilities), "
                    + "but the batch has " + (teacher != null ? "dense teacher outputs" : "none"));
        }
    }

    /** Throws a clear error when a loss needs hard labels this batch does not carry. */
    public int[] requireLabels(String lossName) {
        if (labels == null) {
            throw new IllegalArgumentException("loss '" + lossName + "' needs hard labels, but the batch has none");
        }
        return labels;
    }
}
