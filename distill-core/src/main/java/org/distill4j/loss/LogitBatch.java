package org.distill4j.loss;

import java.util.Objects;

/**
 * The inputs of a logit loss for one batch, as plain row-major float buffers.
 *
 * <ul>
 *   <li>{@code student}: student logits, {@code rows x classes}, element {@code (r, c)} at
 *       {@code r * classes + c};</li>
 *   <li>{@code teacher}: teacher logits or probabilities (see {@link TeacherValues}) in the same
 *       layout, or {@code null} for losses that need none;</li>
 *   <li>{@code labels}: hard labels, one class index in {@code [0, classes)} per row, or
 *       {@code null} for losses that need none.</li>
 * </ul>
 *
 * <p>The buffers are referenced, not copied; a batch is a view for one call. The constructor checks
 * every length and every label and names the offending buffer, so a wrong shape never turns into a
 * silently wrong loss.
 */
public final class LogitBatch {
    private final int rows;
    private final int classes;
    private final float[] student;
    private final float[] teacher;
    private final TeacherValues teacherValues;
    private final int[] labels;

    private LogitBatch(int rows, int classes, float[] student, float[] teacher,
                       TeacherValues teacherValues, int[] labels) {
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
        if (teacher != null && teacher.length != expected) {
            throw new IllegalArgumentException("teacher " + teacherValues.name().toLowerCase() + " have "
                    + teacher.length + " elements, expected rows x classes = " + rows + " x " + classes
                    + " = " + expected + " (teacher and student must share the class count)");
        }
        if (labels != null) {
            if (labels.length != rows) {
                throw new IllegalArgumentException("labels have " + labels.length + " entries, expected one per row: " + rows);
            }
            for (int r = 0; r < rows; r++) {
                if (labels[r] < 0 || labels[r] >= classes) {
                    throw new IllegalArgumentException("label of row " + r + " is " + labels[r]
                            + ", expected a class index in [0, " + classes + ")");
                }
            }
        }
        this.rows = rows;
        this.classes = classes;
        this.student = student;
        this.teacher = teacher;
        this.teacherValues = teacherValues;
        this.labels = labels;
    }

    /** Student logits with hard labels only (e.g. for cross-entropy). */
    public static LogitBatch ofLabels(int rows, int classes, float[] student, int[] labels) {
        return new LogitBatch(rows, classes, student, null, TeacherValues.LOGITS, Objects.requireNonNull(labels, "labels"));
    }

    /**
     * Student and teacher rows, with optional hard labels.
     *
     * @param labels may be null when the loss does not use hard labels
     */
    public static LogitBatch of(int rows, int classes, float[] student, float[] teacher,
                                TeacherValues teacherValues, int[] labels) {
        return new LogitBatch(rows, classes, student, Objects.requireNonNull(teacher, "teacher values"),
                Objects.requireNonNull(teacherValues, "teacherValues"), labels);
    }

    public int rows() {
        return rows;
    }

    public int classes() {
        return classes;
    }

    public float[] student() {
        return student;
    }

    /** Teacher values, or null when the batch carries none. */
    public float[] teacher() {
        return teacher;
    }

    public TeacherValues teacherValues() {
        return teacherValues;
    }

    /** Hard labels, or null when the batch carries none. */
    public int[] labels() {
        return labels;
    }

    /** Throws a clear error when a loss needs teacher values this batch does not carry. */
    public float[] requireTeacher(String lossName) {
        if (teacher == null) {
            throw new IllegalArgumentException("loss '" + lossName + "' needs teacher outputs, but the batch has none");
        }
        return teacher;
    }

    /** Throws a clear error when a loss needs hard labels this batch does not carry. */
    public int[] requireLabels(String lossName) {
        if (labels == null) {
            throw new IllegalArgumentException("loss '" + lossName + "' needs hard labels, but the batch has none");
        }
        return labels;
    }
}
